// SPDX-License-Identifier: MIT
// Create / use / dispose loops of 100,000 iterations per class, failing calls included, must
// keep the engine's heap flat: after a 1,000-iteration warm-up, (1) the wasm memory does not
// grow at all (memoryProfiler().sample().wasmHeapMb) and (2) the bytes malloc has handed out
// do not grow either, to within one probe block, i.e. well under a byte per iteration.
//
// (2) matters because the memory size alone is coarse: it never shrinks and starts with
// megabytes of headroom, so a leak of tens of bytes per iteration would fit without growing
// it. The probe measures the heap in use without any new export: it mallocs 4 KiB blocks until
// the next one would land in the last MiB of the memory (so it never grows the memory itself),
// frees them, and reports memory size - 1 MiB - blocks x 4 KiB. Any live allocation, leaked or
// not, takes space below that line away from the probe. It uses the engine's own _malloc/_free
// through dist/engine.mjs (the module the package's entry imports); where that file is absent
// (an out-of-tree build laid out differently) only check (1) runs.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, distUrl } from './llmds.mjs';

const { init, memoryProfiler, KVCache, PagedAllocator, HNSW, RetrievalPipeline, Scheduler, AdmissionController, IndexedHeap, Tokenizer, InvertedIndex, CountMinSketch, LlmdsError } = llmds;

const ITERATIONS = 100_000;
const WARMUP = 1_000;
const BLOCK = 4096;
const MARGIN = 1 << 20;
const TOLERANCE = 2 * BLOCK; // probe granularity: a leak of 1 byte per iteration is 24x this

let heap; // the engine module: _malloc, _free, HEAPU8

before(async () => {
  await init();
  try {
    const { engine } = await import(new URL('engine.mjs', distUrl).href);
    heap = engine();
  } catch {
    heap = undefined;
  }
});

/** Bytes of the wasm memory below its last MiB that malloc does not offer as free 4 KiB blocks. */
function heapInUse() {
  if (heap === undefined) return undefined;
  const size = heap.HEAPU8.length;
  const blocks = [];
  for (;;) {
    const p = heap._malloc(BLOCK);
    if (p === 0) break;
    if (p + BLOCK > size - MARGIN) {
      heap._free(p);
      break;
    }
    blocks.push(p);
  }
  for (const p of blocks) heap._free(p);
  assert.equal(heap.HEAPU8.length, size, 'the probe itself grew the memory');
  return size - MARGIN - blocks.length * BLOCK;
}

/** Expects an LlmdsError (a failing call belongs in the loop as much as a working one). */
function fails(fn) {
  try {
    fn();
  } catch (e) {
    if (e instanceof LlmdsError) return;
    throw e;
  }
  throw new Error('expected an LlmdsError');
}

/**
 * Runs `body(i)` for `iterations` iterations; after the warm-up the wasm memory must not grow
 * and the heap in use must stay within the probe's granularity.
 */
function flat(name, body, iterations = ITERATIONS) {
  test(`${name}: ${iterations.toLocaleString('en')} create / use / dispose iterations keep the heap flat`, () => {
    for (let i = 0; i < WARMUP; i++) body(i);
    const mem = memoryProfiler();
    const before = heapInUse();
    for (let i = WARMUP; i < iterations; i++) body(i);
    const after = heapInUse();
    const growthMb = mem.sample().wasmHeapMb - mem.baseline.wasmHeapMb;
    assert.equal(growthMb, 0, `${name}: the wasm memory grew by ${growthMb} MB after the warm-up`);
    if (before !== undefined) {
      const leaked = after - before;
      assert.ok(leaked <= TOLERANCE, `${name}: ${leaked} more bytes in use after ${iterations - WARMUP} iterations (${(leaked / (iterations - WARMUP)).toFixed(2)} per iteration)`);
    }
  });
}

describe('the wasm heap stays flat', () => {
  test('the probe sees a leak of 8 bytes per call', () => {
    if (heap === undefined) return;
    const before = heapInUse();
    const leaked = [];
    for (let i = 0; i < 1000; i++) leaked.push(heap._malloc(8));
    const grown = heapInUse() - before;
    for (const p of leaked) heap._free(p);
    assert.ok(grown >= 8000 - BLOCK, `probe saw ${grown} bytes`);
    assert.ok(Math.abs(heapInUse() - before) <= BLOCK);
  });

  const tokens = Array.from({ length: 10 }, (_, i) => i + 1);
  flat('KVCache', () => {
    const c = new KVCache({ pageSize: 4, maxPages: 8 });
    c.attach(1, tokens);
    c.attach(2, Int32Array.from(tokens), tokens.slice(0, 8));
    c.fork(1, 3);
    c.append(3, [7, 8, 9]); // copy-on-write
    c.get(3);
    c.blockTable(1);
    c.matchPrefix([1, 2, 3, 4, 5, 9]);
    fails(() => c.attach(4, new Array(40).fill(1))); // capacity_exceeded
    fails(() => c.fork(99, 5));
    c.detach(1);
    c.stats();
    c.dispose();
  });

  flat('PagedAllocator', () => {
    const a = new PagedAllocator({ pageSize: 4, maxPages: 8 });
    const pages = a.alloc(3);
    fails(() => a.alloc(9));
    a.free(pages);
    fails(() => a.free(pages));
    a.stats();
    a.dispose();
  });

  const vectors = Float32Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0.5, 0.5, 0, 0);
  flat('HNSW (dim 4, 3 vectors)', (i) => {
    const h = new HNSW({ dim: 4, M: 4, efConstruction: 8, seed: i, metric: i % 2 ? 'cosine' : 'l2' });
    h.addBatch(vectors, [1, 2, 3]);
    h.add([0, 0, 1, 0], 4);
    h.search([1, 1, 0, 0], 2);
    h.searchBatch(vectors, 2);
    fails(() => h.add([1, 2], 5)); // dimension_mismatch
    h.remove(2);
    const bytes = h.serialize();
    HNSW.deserialize(bytes).dispose();
    bytes[bytes.length - 1] ^= 1;
    fails(() => HNSW.deserialize(bytes)); // corrupt_data
    h.dispose();
  });

  flat('RetrievalPipeline (dim 4, 3 documents)', (i) => {
    const p = new RetrievalPipeline({ embeddingDim: 4, hnswM: 4, hnswEfConstruction: 8, tokenBudget: 50, seed: i });
    p.addDocument(1, 'apple banana apple', [1, 0, 0, 0]);
    p.addDocument(2, 'banana cherry');
    p.addDocument(3, 'cherry durian', Float32Array.of(0, 1, 0, 0));
    p.search('apple cherry', { queryEmbedding: [1, 0.5, 0, 0], topK: 2 });
    p.search('apple cherry', { queryEmbedding: [1, 0.5, 0, 0], topK: 2 }); // cache hit
    p.search('banana', { fusion: 'rrf' });
    fails(() => p.addDocument(4, 'bad', [1, NaN, 0, 0])); // rejected after the copy into the heap
    fails(() => p.search('x', { queryEmbedding: [1, 2] }));
    p.removeDocument(2);
    const bytes = p.serialize();
    RetrievalPipeline.deserialize(bytes).dispose();
    fails(() => RetrievalPipeline.deserialize(bytes.subarray(0, 30)));
    p.dispose();
  });

  flat('Scheduler', () => {
    const s = new Scheduler({ maxBatchSize: 2, maxWaitMs: 5, now: () => 0 });
    s.submit(3);
    s.submit(4, 10);
    s.submit(1);
    const batch = s.getBatch(true);
    s.completeBatch(batch);
    fails(() => s.completeBatch([batch[0]])); // not_found, after the copy into the heap
    s.cancel(2);
    s.readyAt();
    s.stats();
    s.dispose();
  });

  flat('AdmissionController', () => {
    const a = new AdmissionController({ qpsTarget: 100, tokenRateLimit: 1000, now: () => 0 });
    a.shouldAdmit(10);
    a.recordRequest(5);
    a.shouldAdmit(10);
    a.retryAfterMs(10);
    fails(() => a.recordRequest(-1));
    a.stats();
    a.dispose();
  });

  flat('IndexedHeap', () => {
    const h = new IndexedHeap({ maxHeap: true });
    h.push(1, 2);
    h.push(2, 1);
    h.push(3, 1);
    h.update(1, 0);
    fails(() => h.push(2, 5)); // duplicate_id
    h.pop();
    h.delete(3);
    h.dispose();
  });

  flat('Tokenizer', () => {
    const t = new Tokenizer();
    const ids = t.encode('Hello, wörld: ΣΟΦΟΣ 中文 \uD800 ok');
    t.decode(ids);
    t.countTokens('a b c');
    fails(() => t.decode([99]));
    t.dispose();
  });

  flat('InvertedIndex', () => {
    const x = new InvertedIndex();
    x.addDocument(1, 'apple banana apple');
    x.addDocument(2, 'banana cherry');
    x.addDocument(1, 'apple again'); // replaces
    x.search('apple banana', 5);
    x.getTermFrequency('apple', 1);
    fails(() => x.getDocumentFrequency('two words'));
    x.removeDocument(2);
    const bytes = x.serialize();
    InvertedIndex.deserialize(bytes).dispose();
    fails(() => InvertedIndex.deserialize(bytes.subarray(1)));
    x.dispose();
  });

  flat('CountMinSketch', () => {
    const a = new CountMinSketch({ width: 64, depth: 3 });
    const b = new CountMinSketch({ width: 64, depth: 3 });
    const c = new CountMinSketch({ width: 32, depth: 3 });
    a.add('apple', 3);
    b.add('banana');
    a.merge(b);
    fails(() => a.merge(c));
    a.estimate('apple');
    a.isHot('apple', 2);
    a.dispose();
    b.dispose();
    c.dispose();
  });
});
