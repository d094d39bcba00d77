// SPDX-License-Identifier: MIT
// Runs tests/edge/deno_test.ts under Deno (from npm) against the built package.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { llmds } from '../js/llmds.mjs';
import { consumerProject, root } from '../pack.mjs';
import { runScenario } from '../scenario.mjs';

test('Deno runs the package: init, the shared scenario, errors', async () => {
  await llmds.init();
  // A Deno project using the installed tarball from its node_modules, type-checked.
  const dir = consumerProject('llmds-deno-');
  try {
    mkdirSync(join(dir, 'edge'));
    copyFileSync(join(root, 'tests/edge/deno_test.ts'), join(dir, 'edge/deno_test.ts'));
    copyFileSync(join(root, 'tests/scenario.mjs'), join(dir, 'scenario.mjs'));
    writeFileSync(join(dir, 'deno.json'), JSON.stringify({ nodeModulesDir: 'manual' }));
    const expected = join(dir, 'expected.json');
    writeFileSync(expected, JSON.stringify(await runScenario(llmds)));
    const r = spawnSync(join(root, 'node_modules/.bin/deno'), ['test', '--allow-read', '--allow-env', 'edge/deno_test.ts'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', LLMDS_EXPECTED: expected, DENO_NO_UPDATE_CHECK: '1' },
      timeout: 120000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /ok \| 3 passed \| 0 failed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
