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
    try { await llmds.init({ wasm: new Uint8Array([1, 2, 3]) }); } catch (e) { codes.push(e.code, e.cause?.name); }
    try { await llmds.init({ wasm: 42 }); } catch (e) { codes.push(e.code); }
    const f = await llmds.init();
    return { codes, simd: f.simd };`);
  assert.deepEqual(r.ok, { codes: ['invalid_argument', 'invalid_argument', 'load_failed', 'CompileError', 'invalid_argument'], simd: true });
});

// A module that compiles but cannot be instantiated (an import llmds does not provide), one that
// instantiates but is not llmds (no exports), a URL nobody answers, and a server that answers
// with an HTML page: each rejects init() with load_failed (the worker would die of an unhandled
// rejection otherwise), and init() then still works.
test('a wasm that fails to load rejects init() with load_failed, and init() can be retried', async () => {
  const { createServer } = await import('node:http');
  const html = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>Not here'));
  const closed = createServer();
  await Promise.all([html, closed].map((s) => new Promise((done) => s.listen(0, '127.0.0.1', done))));
  const htmlUrl = `http://127.0.0.1:${html.address().port}/llmds.wasm`;
  const deadUrl = `http://127.0.0.1:${closed.address().port}/llmds.wasm`;
  await new Promise((done) => closed.close(done));
  try {
    const r = await inFreshEngine(`
      const importsSomethingElse = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0,
        2, 12, 1, 3, 101, 110, 118, 4, 110, 111, 112, 101, 0, 0]); // (import "env" "nope" (func))
      const empty = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
      const out = [];
      for (const wasm of [importsSomethingElse, empty, ${JSON.stringify(deadUrl)}, ${JSON.stringify(htmlUrl)}]) {
        try {
          await llmds.init({ wasm, simd: true });
          out.push('resolved');
        } catch (e) {
          out.push([e instanceof llmds.LlmdsError, e.code, e.message]);
        }
      }
      const f = await llmds.init();
      const cache = new llmds.KVCache({ pageSize: 2 });
      cache.attach(1, [1, 2, 3]);
      return { out, simd: f.simd, tokens: Array.from(cache.get(1)) };`);
    assert.equal(r.error, undefined, r.error?.message);
    const { out, simd, tokens } = r.ok;
    assert.deepEqual(out.map(([isError, code]) => [isError, code]), Array(4).fill([true, 'load_failed']));
    assert.match(out[0][2], /instantiating/);
    assert.match(out[2][2], /fetching http:\/\/127\.0\.0\.1/);
    assert.match(out[3][2], /HTML page/);
    assert.equal(simd, true);
    assert.deepEqual(tokens, [1, 2, 3]);
  } finally {
    html.close();
  }
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
