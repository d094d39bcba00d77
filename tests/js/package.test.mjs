// SPDX-License-Identifier: MIT
// The packed tarball works when installed elsewhere: ESM import, CommonJS require, both builds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { consumerProject, root } from '../pack.mjs';

let dir;

before(() => {
  dir = consumerProject();
});

after(() => rmSync(dir, { recursive: true, force: true }));

const run = (file, source) => {
  writeFileSync(join(dir, file), source);
  return execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8' }).trim();
};

test('the tarball holds the built package and nothing else', () => {
  const files = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: root, encoding: 'utf8' }))[0].files.map((f) => f.path);
  for (const f of ['dist/index.mjs', 'dist/index.cjs', 'dist/index.d.mts', 'dist/workerd.mjs', 'dist/llmds.wasm', 'dist/llmds-nosimd.wasm', 'dist/llmds-noeval.mjs', 'package.json', 'README.md']) {
    assert.ok(files.includes(f), `${f} missing from the tarball`);
  }
  assert.ok(!files.includes('dist/llmds-noeval.wasm'), 'the no-eval build reuses llmds.wasm');
  assert.ok(!files.some((f) => /^(src|wasm|tests|js|build)/.test(f)), `unexpected files: ${files.filter((f) => /^(src|wasm|tests|js|build)/.test(f))}`);
});

test('the no-eval glue (workerd) can share the SIMD build\'s .wasm: the bytes are identical', () => {
  const dist = join(root, 'dist');
  assert.ok(readFileSync(join(dist, 'llmds.wasm')).equals(readFileSync(join(dist, 'llmds-noeval.wasm'))));
});

test('ESM import from an installed tarball, SIMD build', () => {
  const out = run('esm.mjs', `
    import { init, KVCache } from 'llmds';
    const f = await init();
    const c = new KVCache({ pageSize: 2 });
    c.attach(1, [1, 2, 3]);
    console.log(JSON.stringify({ simd: f.simd, tokens: [...c.get(1)] }));`);
  assert.deepEqual(JSON.parse(out), { simd: true, tokens: [1, 2, 3] });
});

test('ESM import from an installed tarball, portable build', () => {
  const out = run('portable.mjs', `
    import { init } from 'llmds';
    console.log((await init({ simd: false })).simd);`);
  assert.equal(out, 'false');
});

test('CommonJS require from an installed tarball', () => {
  const out = run('cjs.cjs', `
    const { init, KVCache } = require('llmds');
    init().then(() => { const c = new KVCache(); c.attach(7, [5]); console.log(c.get(7)[0]); });`);
  assert.equal(out, '5');
});
