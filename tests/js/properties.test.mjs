// SPDX-License-Identifier: MIT
// Property tests of the JS boundary with random and hostile values (fast-check, fixed seed).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { llmds } from './llmds.mjs';
import { argOf, checkMethod, hostile } from './hostile.mjs';

const { init, KVCache, PagedAllocator, HNSW, LlmdsError } = llmds;

before(async () => {
  await init();
});

const seqId = fc.integer({ min: 0, max: 5 });
const tokens = fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 30 });

describe('KVCache with hostile inputs', () => {
  const make = () => {
    const c = new KVCache({ pageSize: 4, maxPages: 12 });
    c.attach(1, [1, 2, 3, 4, 5, 6]);
    c.fork(1, 2);
    return c;
  };
  const snapshot = (c) => ({ stats: c.stats(), seqs: [0, 1, 2, 3, 4, 5].map((id) => [c.get(id), c.has(id) ? c.blockTable(id) : null]) });
  for (const [method, args] of Object.entries({
    attach: [argOf(seqId), argOf(tokens), fc.oneof(fc.constant(undefined), argOf(tokens))],
    append: [argOf(seqId), argOf(tokens)],
    fork: [argOf(seqId), argOf(seqId)],
    detach: [argOf(seqId)],
    get: [argOf(seqId)],
    blockTable: [argOf(seqId)],
    matchPrefix: [argOf(tokens)],
  })) {
    test(method, () => checkMethod({ make, method, args, snapshot }));
  }
  test('constructor', () => {
    fc.assert(fc.property(fc.oneof(hostile, fc.record({ pageSize: hostile, maxPages: hostile }, { requiredKeys: [] })), (options) => {
      try {
        new KVCache(options).dispose();
      } catch (e) {
        assert.ok(e instanceof LlmdsError, String(e));
      }
    }), { numRuns: 300, seed: 1 });
  });
});

describe('PagedAllocator with hostile inputs', () => {
  const make = () => {
    const a = new PagedAllocator({ pageSize: 4, maxPages: 8 });
    a.alloc(3);
    return a;
  };
  const snapshot = (a) => a.stats();
  test('alloc', () => checkMethod({ make, method: 'alloc', args: [argOf(fc.integer({ min: 0, max: 10 }))], snapshot }));
  test('free', () => checkMethod({ make, method: 'free', args: [argOf(fc.array(fc.integer({ min: -1, max: 9 }), { maxLength: 5 }))], snapshot }));
});

describe('HNSW with hostile inputs', () => {
  const dim = 4;
  const vector = fc.array(fc.float({ min: -2, max: 2, noNaN: true }), { minLength: dim, maxLength: dim }).map((a) => Float32Array.from(a));
  const id = fc.integer({ min: 0, max: 30 });
  const make = () => {
    const h = new HNSW({ dim, M: 4, efConstruction: 16, seed: 3 });
    for (let i = 0; i < 10; i++) h.add(Float32Array.of(i, 1, 0, -i), i);
    return h;
  };
  const snapshot = (h) => ({ size: h.size, bytes: h.serialize() });
  for (const [method, args] of Object.entries({
    add: [argOf(vector), argOf(id)],
    addBatch: [argOf(fc.array(vector, { maxLength: 3 })), argOf(fc.array(id, { maxLength: 3 }))],
    remove: [argOf(id)],
    has: [argOf(id)],
    search: [argOf(vector), argOf(fc.integer({ min: 1, max: 12 })), fc.oneof(fc.constant(undefined), fc.record({ efSearch: argOf(fc.integer({ min: 1, max: 64 })) }), hostile)],
    searchBatch: [argOf(fc.array(vector, { maxLength: 3 })), argOf(fc.integer({ min: 1, max: 5 }))],
  })) {
    test(method, () => checkMethod({ make, method, args, snapshot, numRuns: 80 }));
  }
  test('deserialize of random and hostile bytes', () => {
    const valid = make().serialize();
    fc.assert(fc.property(fc.oneof(hostile, fc.uint8Array({ maxLength: 200 }), fc.tuple(fc.nat(valid.length - 1), fc.nat(255)).map(([i, b]) => {
      const copy = valid.slice();
      copy[i] ^= b || 1;
      return copy;
    })), (bytes) => {
      try {
        HNSW.deserialize(bytes).dispose();
      } catch (e) {
        assert.ok(e instanceof LlmdsError, String(e));
      }
    }), { numRuns: 400, seed: 2 });
  });
});
