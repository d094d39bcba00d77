// SPDX-License-Identifier: MIT
// The package under test: `llmds` as a consumer imports it (the package's own exports), or the
// build in $LLMDS_DIST when a developer tests an out-of-tree build.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach } from 'node:test';
import { Worker } from 'node:worker_threads';

const dist = process.env.LLMDS_DIST;
export const llmds = await import(dist ? pathToFileURL(resolve(dist, 'index.mjs')).href : 'llmds');
export const distUrl = dist ? pathToFileURL(resolve(dist) + '/') : new URL('../../dist/', import.meta.url);

/** Asserts that fn throws an LlmdsError with this code (and a message matching `mentions`). */
export function throwsCode(fn, code, mentions) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof llmds.LlmdsError, `expected LlmdsError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (mentions) assert.match(e.message, mentions);
    return true;
  });
}

/** The same for an async function or promise. */
export async function rejectsCode(fnOrPromise, code, mentions) {
  await assert.rejects(fnOrPromise, (e) => {
    assert.ok(e instanceof llmds.LlmdsError, `expected LlmdsError, got ${e}`);
    assert.equal(e.code, code, e.message);
    if (mentions) assert.match(e.message, mentions);
    return true;
  });
}

/** CRC-32 (IEEE) as source text, evaluated here and inside fresh engines like MULBERRY32_SOURCE below: the C++ tests print their fingerprints with it. */
export const CRC32_SOURCE = `
  function crc32(bytes) {
    let c = ~0;
    for (const b of bytes) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    return ~c >>> 0;
  }
`;

/**
 * Source text of mulberry32 returning raw u32s, as tests/cpp/test_support.hpp's Mulberry32, for
 * the generators the HNSW suites evaluate both here and inside fresh engines (inFreshEngine).
 */
export const MULBERRY32_SOURCE = `
  function mulberry32(a) {
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (t ^ (t >>> 14)) >>> 0;
    };
  }
`;

/**
 * Runs `code` (an async function body with `llmds` in scope) in a fresh worker: a fresh engine.
 * `prelude` (source text: functions the code calls) goes before it.
 */
export function inFreshEngine(code, prelude = '') {
  const source = `
    import { parentPort } from 'node:worker_threads';
    const llmds = await import(${JSON.stringify(new URL('index.mjs', distUrl).href)});
    ${prelude}
    try { parentPort.postMessage({ ok: await (async () => { ${code} })() }); }
    catch (e) { parentPort.postMessage({ error: { code: e.code, message: String(e.message ?? e) } }); }`;
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`));
    w.once('message', (m) => (w.terminate(), resolve(m)));
    w.once('error', reject);
  });
}


/** Returns track(obj): every tracked object is disposed after each test of the calling file. */
export function disposeAfterEach() {
  const live = [];
  afterEach(() => live.splice(0).forEach((o) => o.dispose()));
  return (obj) => (live.push(obj), obj);
}
