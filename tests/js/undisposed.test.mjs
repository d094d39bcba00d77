// SPDX-License-Identifier: MIT
// Objects collected without dispose() are freed by the FinalizationRegistry and reported.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { distUrl } from './llmds.mjs';

const run = (code, env = {}) =>
  execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

const script = (setup) => `
  const llmds = await import(${JSON.stringify(new URL('index.mjs', distUrl).href)});
  await llmds.init();
  ${setup}
  (() => { const c = new llmds.KVCache(); c.attach(1, [1, 2, 3]); new llmds.HNSW({ dim: 2 }).dispose(); })();
  for (let i = 0; i < 10; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
`;

test('a custom reporter hears about a leaked object (and not about a disposed one)', () => {
  const out = run(script(`const seen = []; llmds.onUndisposed((name) => seen.push(name)); process.on('exit', () => console.log(JSON.stringify(seen)));`));
  assert.deepEqual(JSON.parse(out.trim()), ['KVCache']);
});

test('the default reporter warns only in development', () => {
  const warnOf = (env) => run(script(`console.warn = (m) => console.log('WARN ' + m);`), env);
  assert.match(warnOf({ NODE_ENV: 'development' }), /WARN llmds: a KVCache was garbage collected without dispose\(\)/);
  assert.doesNotMatch(warnOf({ NODE_ENV: 'production' }), /WARN/);
});
