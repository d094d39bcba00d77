// SPDX-License-Identifier: MIT
// The wasm boundary's single sources of truth: error codes are llmds::Errc's names, and the
// limits JS validates against are the C++ constants (read from the engine, never copied).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, test } from 'node:test';
import { llmds, throwsCode } from './llmds.mjs';

const { init, KVCache, PagedAllocator, HNSW, CountMinSketch, Scheduler, RetrievalPipeline } = llmds;
const source = (path) => readFile(new URL(`../../${path}`, import.meta.url), 'utf8');

/** A `static constexpr uint32_t name = N;` or `= 1u << N;` constant of a public header. */
async function constant(header, name) {
  const text = await source(`src/llmds/${header}`);
  const m = text.match(new RegExp(`\\b${name} = (?:(\\d+)|1u << (\\d+));`));
  assert.ok(m, `${name} is not a plain constant in ${header}`);
  return m[1] !== undefined ? Number(m[1]) : 2 ** Number(m[2]);
}

before(() => init());

test('every engine error code is a documented ErrorCode, in llmds::Errc order', async () => {
  const status = await source('src/llmds/status.hpp');
  const names = [...status.matchAll(/^\s+([a-z_]+) = (\d+),$/gm)].map(([, name, value]) => [name, Number(value)]);
  assert.ok(names.length >= 9);
  names.forEach(([, value], i) => assert.equal(value, i, 'Errc values are dense from 0'));
  const errors = await source('js/src/errors.mts');
  const union = [...errors.matchAll(/\| '([a-z_]+)'/g)].map(([, n]) => n);
  for (const [name] of names.slice(1)) assert.ok(union.includes(name), `ErrorCode lacks ${name}`);
  // And the engine reports them by those names: a not_found from C++ arrives as 'not_found'.
  const cache = new KVCache({ pageSize: 4 });
  try {
    throwsCode(() => cache.fork(1, 2), 'not_found', /fork: unknown source/);
    throwsCode(() => cache.blockTable(3), 'not_found', /blockTable: unknown/);
  } finally {
    cache.dispose();
  }
});

test('JS validates against the C++ limits', async () => {
  const maxPageSize = await constant('paged_allocator.hpp', 'kMaxPageSize');
  const maxPages = await constant('paged_allocator.hpp', 'kMaxPages');
  throwsCode(() => new KVCache({ pageSize: maxPageSize + 1 }), 'invalid_argument', new RegExp(`\\[1, ${maxPageSize}\\]`));
  throwsCode(() => new PagedAllocator({ pageSize: 1, maxPages: maxPages + 1 }), 'invalid_argument', new RegExp(`\\[1, ${maxPages}\\]`));
  new KVCache({ pageSize: maxPageSize, maxPages: 1 }).dispose();

  const maxDim = await constant('hnsw.hpp', 'kMaxDim');
  const minM = await constant('hnsw.hpp', 'kMinM');
  const maxM = await constant('hnsw.hpp', 'kMaxM');
  const maxEf = await constant('hnsw.hpp', 'kMaxEf');
  throwsCode(() => new HNSW({ dim: maxDim + 1 }), 'invalid_argument', new RegExp(`\\[1, ${maxDim}\\]`));
  throwsCode(() => new HNSW({ dim: 2, M: minM - 1 }), 'invalid_argument', new RegExp(`\\[${minM}, ${maxM}\\]`));
  throwsCode(() => new HNSW({ dim: 2, efSearch: maxEf + 1 }), 'invalid_argument', new RegExp(`${maxEf}`));
  throwsCode(() => new RetrievalPipeline({ hnswM: maxM + 1 }), 'invalid_argument', new RegExp(`\\[${minM}, ${maxM}\\]`));
  const maxTopK = await constant('retrieval_pipeline.hpp', 'kMaxTopK');
  const p = new RetrievalPipeline({ embeddingDim: 2 });
  try {
    throwsCode(() => p.search('x', { topK: maxTopK + 1 }), 'invalid_argument', new RegExp(`${maxTopK}`));
  } finally {
    p.dispose();
  }

  const maxWidth = await constant('count_min_sketch.hpp', 'kMaxWidth');
  const maxDepth = await constant('count_min_sketch.hpp', 'kMaxDepth');
  throwsCode(() => new CountMinSketch({ width: maxWidth + 1 }), 'invalid_argument', new RegExp(`${maxWidth}`));
  throwsCode(() => new CountMinSketch({ depth: maxDepth + 1 }), 'invalid_argument', new RegExp(`${maxDepth}`));
  const maxBatch = await constant('scheduler.hpp', 'kMaxBatchSize');
  throwsCode(() => new Scheduler({ maxBatchSize: maxBatch + 1 }), 'invalid_argument', new RegExp(`${maxBatch}`));
});

test('a failed deserialize of every persistent class is the engine code, through one path', () => {
  for (const [Class, options] of [[HNSW, { dim: 2 }], [llmds.InvertedIndex, {}], [RetrievalPipeline, { embeddingDim: 2 }], [llmds.KVRouter, {}]]) {
    const obj = new Class(options);
    try {
      const bytes = obj.serialize();
      throwsCode(() => Class.deserialize(bytes.subarray(0, bytes.length - 1)), 'corrupt_data');
      const copy = Class.deserialize(bytes);
      assert.ok(copy instanceof Class);
      assert.deepEqual(copy.serialize(), bytes);
      copy.dispose();
    } finally {
      obj.dispose();
    }
  }
});

// The convention, checked on the sources so that a new class cannot quietly add a ninth way.
test('bindings and wrapper follow the one boundary convention', async () => {
  const { readdir } = await import('node:fs/promises');
  const files = async (dir, ext) =>
    Promise.all((await readdir(new URL(`../../${dir}/`, import.meta.url))).filter((f) => f.endsWith(ext)).map(async (f) => [f, await source(`${dir}/${f}`)]));
  for (const [file, text] of await files('wasm', '.cpp')) {
    assert.doesNotMatch(text, /text_at\(uintptr_t[^)]*\)\s*\{/, `${file} defines its own text_at (common.hpp has it)`);
    assert.doesNotMatch(text, /-\s*(static_cast<\w+>\()?report\(/, `${file} returns a negated code: return report(...) (kFailed) instead`);
    assert.doesNotMatch(text, /last_create_code|lastCode/, `${file} has a class-specific error channel`);
    assert.doesNotMatch(text, /\bload\(uintptr_t/, `${file} deserializes by create-then-load: use a static deserialize factory`);
  }
  for (const [file, text] of await files('js/src', '.mts')) {
    if (file !== 'engine.mts') assert.doesNotMatch(text, /lastError(Message|Code)\(\)/, `${file} reads the engine's error itself: use check/checked`);
    assert.doesNotMatch(text, /new RangeError|throw new TypeError/, `${file} throws something other than LlmdsError`);
    if (file === 'memory.mts') continue; // the argument arena: its own size and its own malloc failures
    assert.doesNotMatch(text, /\bMAX_(EF|K|ID|DOC_ID|BATCH_RESULTS)\b|\b1 << (16|20|24|30)\b/, `${file} hard-codes an engine limit: read limits()`);
    assert.doesNotMatch(text, /let adopting\b/, `${file} deserializes through a module-global flag: use deserializeRaw`);
    assert.doesNotMatch(text, /new LlmdsError\('(capacity_exceeded|not_found|corrupt_data|version_mismatch|out_of_memory)'/,
      `${file} hard-codes an engine error code`);
  }
});
