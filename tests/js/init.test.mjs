// SPDX-License-Identifier: MIT
// init() before and after: memoisation, features(), errors before init, wasm source overrides.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { llmds, distUrl, inFreshEngine } from './llmds.mjs';

const { init, features, KVCache, LlmdsError } = llmds;

test('classes throw not_initialized before init(), and features() too', async () => {
  const r = await inFreshEngine(`
    const codes = [];
    for (const f of [() => new llmds.KVCache(), () => llmds.features()]) {
      try { f(); } catch (e) { codes.push(e.code); }
    }
    return codes;`);
  assert.deepEqual(r.ok, ['not_initialized', 'not_initialized']);
});

test('init() is memoised and concurrent callers share one promise', async () => {
  const [a, b] = await Promise.all([init(), init()]);
  assert.equal(a, b);
  assert.equal(await init(), a);
  assert.equal(features(), a);
  assert.equal(typeof a.simd, 'boolean');
  assert.equal(a.simd, true); // Node 20 validates wasm SIMD
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
  assert.equal(a.version, pkg.version);
});

test('init({ simd: false }) loads the portable build', async () => {
  const r = await inFreshEngine(`
    const f = await llmds.init({ simd: false });
    const c = new llmds.KVCache({ pageSize: 2 });
    c.attach(1, [1, 2, 3]);
    return { simd: f.simd, tokens: Array.from(c.get(1)) };`);
  assert.deepEqual(r.ok, { simd: false, tokens: [1, 2, 3] });
});

test('SIMD detection falls back to the portable build', async () => {
  const r = await inFreshEngine(`
    WebAssembly.validate = () => false;
    return (await llmds.init()).simd;`);
  assert.equal(r.ok, false);
});

for (const kind of ['bytes', 'ArrayBuffer', 'Module', 'URL', 'path string']) {
  test(`init({ wasm }) accepts ${kind}`, async () => {
    const r = await inFreshEngine(`
      const { readFile } = await import('node:fs/promises');
      const { fileURLToPath } = await import('node:url');
      const url = new URL('llmds.wasm', ${JSON.stringify(distUrl.href)});
      const bytes = await readFile(url);
      const wasm = { bytes, ArrayBuffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
        Module: await WebAssembly.compile(bytes), URL: url, 'path string': fileURLToPath(url) }[${JSON.stringify(kind)}];
      const f = await llmds.init({ wasm, simd: true });
      return f.simd;`);
    assert.equal(r.ok, true);
  });
}

test('bad init options are rejected, and a failed init can be retried', async () => {
  const r = await inFreshEngine(`
    const codes = [];
    for (const o of [42, { simd: 'yes' }]) {
      try { await llmds.init(o); } catch (e) { codes.push(e.code); }
    }
    try { await llmds.init({ wasm: new Uint8Array([1, 2, 3]) }); } catch (e) { codes.push(e.name); }
    const f = await llmds.init();
    return { codes, simd: f.simd };`);
  assert.deepEqual(r.ok, { codes: ['invalid_argument', 'invalid_argument', 'CompileError'], simd: true });
});

test('LlmdsError is an Error with a stable code', async () => {
  await init();
  try {
    new KVCache({ pageSize: -1 });
    assert.fail('expected a throw');
  } catch (e) {
    assert.ok(e instanceof Error);
    assert.ok(e instanceof LlmdsError);
    assert.equal(e.name, 'LlmdsError');
    assert.equal(e.code, 'invalid_argument');
  }
});
