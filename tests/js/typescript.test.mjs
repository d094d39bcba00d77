// SPDX-License-Identifier: MIT
// A strict TypeScript consumer type-checks against the types shipped in the tarball, as ESM
// (.mts) and CommonJS (.cts), with moduleResolution NodeNext; and misuse is a type error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { consumerProject, root } from '../pack.mjs';

let dir;
before(() => {
  dir = consumerProject('llmds-ts-');
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM', 'ESNext.Disposable'], types: [] },
  }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function typecheck(files) {
  for (const [name, source] of Object.entries(files)) writeFileSync(join(dir, name), source);
  return spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.', '--pretty', 'false'], { cwd: dir, encoding: 'utf8' });
}

const ESM = `
import { init, features, KVCache, LlmdsError, MetricsCollector, type KVCacheStats, type ErrorCode } from 'llmds';
const f: { simd: boolean; version: string } = await init({ simd: 'auto' });
const cache = new KVCache({ pageSize: 16, maxPages: 64, enablePrefixSharing: true });
cache.attach(1, [1, 2, 3], [1]);
cache.attach(2, new Int32Array([1, 2]));
cache.append(2, Uint32Array.of(3));
const tokens: Int32Array | null = cache.get(1);
const table: Int32Array = cache.blockTable(1);
const s: KVCacheStats = cache.stats();
const n: number = s.usedPages + cache.matchPrefix([1]) + features().version.length;
try { cache.fork(9, 10); } catch (e) { if (e instanceof LlmdsError) { const c: ErrorCode = e.code; void c; } }
cache[Symbol.dispose]();
new MetricsCollector().recordLatency(1);
void [f, tokens, table, n];
`;

test('a strict ESM and CJS TypeScript consumer type-checks against the shipped types', () => {
  rmSync(join(dir, 'bad.mts'), { force: true });
  const r = typecheck({
    'consumer.mts': ESM,
    'consumer.cts': `import llmds = require('llmds');\nvoid llmds.init().then(() => new llmds.KVCache().dispose());\n`,
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('misuse is a type error', () => {
  const r = typecheck({ 'bad.mts': `import { KVCache } from 'llmds';\nnew KVCache({ pageSize: '16' });\nnew KVCache().attach(1, 'abc');\n` });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /bad\.mts\(2,/);
  assert.match(r.stdout, /bad\.mts\(3,/);
  rmSync(join(dir, 'bad.mts'));
});
