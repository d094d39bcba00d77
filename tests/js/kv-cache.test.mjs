// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { describe, test, before } from 'node:test';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';

const { init, KVCache, PagedAllocator, LlmdsError } = llmds;


// Node 20 has no `using` syntax: what a test tracks is disposed after it.
const track = disposeAfterEach();

const range = (from, n) => Array.from({ length: n }, (_, i) => from + i);
const snapshot = (cache, ids) => ({
  stats: cache.stats(),
  seqs: ids.map((id) => [cache.get(id), cache.has(id) ? cache.blockTable(id) : null]),
});

describe('KVCache', () => {
  before(async () => {
    await init();
  });

  test('seed example: a shared prefix and two suffixes', () => {
    const cache = track(new KVCache({ pageSize: 3, maxPages: 16 }));
    const prefix = [1, 2, 3];
    cache.attach(0, [...prefix, 4, 5], prefix);
    cache.attach(1, [...prefix, 6, 7], prefix);
    assert.deepEqual(cache.get(0), Int32Array.of(1, 2, 3, 4, 5));
    assert.deepEqual(cache.get(1), Int32Array.of(1, 2, 3, 6, 7));
    const s = cache.stats();
    assert.equal(s.usedPages, 3);
    assert.equal(s.sharedPages, 1);
    assert.equal(s.prefixHits, 1);
    assert.equal(s.hitTokens, 3);
    assert.equal(cache.blockTable(0)[0], cache.blockTable(1)[0]);
    assert.equal(cache.matchPrefix(prefix), 3);
  });

  test('defaults follow API.md', () => {
    const cache = track(new KVCache());
    const s = cache.stats();
    assert.equal(s.totalPages, 10000);
    assert.equal(s.usedPages, 0);
    cache.attach(1, range(0, 1000));
    assert.equal(cache.stats().usedPages, 2); // pageSize 512
  });

  test('two sequences sharing 2 x pageSize tokens use exactly 2 pages fewer', () => {
    const common = range(100, 32);
    const a = [...common, ...range(1000, 40)];
    const b = [...common, ...range(2000, 25)];
    const shared = track(new KVCache({ pageSize: 16, maxPages: 64 }));
    const unshared = track(new KVCache({ pageSize: 16, maxPages: 64, enablePrefixSharing: false }));
    for (const c of [shared, unshared]) {
      c.attach(1, a);
      c.attach(2, Int32Array.from(b));
    }
    assert.equal(unshared.stats().usedPages - shared.stats().usedPages, 2);
    assert.equal(shared.stats().sharedPages, 2);
  });

  test('fork then append copies only the shared tail page', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 32 }));
    cache.attach(1, range(1, 10));
    cache.fork(1, 2);
    cache.append(2, [50, 51, 52]);
    assert.deepEqual(cache.get(1), Int32Array.from(range(1, 10)));
    assert.deepEqual(cache.get(2), Int32Array.from([...range(1, 10), 50, 51, 52]));
    assert.equal(cache.stats().cowCopies, 1);
    assert.notEqual(cache.blockTable(1)[2], cache.blockTable(2)[2]);
  });

  test('detach releases everything; cached prefixes are reused; unknown ids', () => {
    const cache = track(new KVCache({ pageSize: 8, maxPages: 64 }));
    const t = range(10, 29);
    cache.attach(1, t);
    assert.equal(cache.detach(1), true);
    assert.equal(cache.detach(1), false);
    assert.equal(cache.get(1), null);
    assert.equal(cache.has(1), false);
    let s = cache.stats();
    assert.equal(s.usedPages, 0);
    assert.equal(s.cachedPages, 3);
    assert.equal(cache.matchPrefix(Uint32Array.from(t)), 24);
    cache.attach(2, t);
    s = cache.stats();
    assert.equal(s.prefixHits, 3);
    assert.equal(s.cachedPages, 0);
  });

  test('LRU eviction of cached pages', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 4 }));
    cache.attach(1, range(100, 8));
    cache.attach(2, range(200, 8));
    cache.detach(1);
    cache.detach(2);
    cache.attach(3, range(300, 4));
    assert.equal(cache.stats().evictions, 1);
    assert.equal(cache.matchPrefix(range(100, 8)), 4); // a's leaf went first
    assert.equal(cache.matchPrefix(range(200, 8)), 8);
  });

  test('capacity_exceeded changes nothing', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 5 }));
    cache.attach(1, range(0, 12));
    cache.fork(1, 2);
    const before = snapshot(cache, [1, 2, 3]);
    throwsCode(() => cache.attach(3, range(100, 12)), 'capacity_exceeded', /seqId 3/);
    throwsCode(() => cache.append(1, range(7, 9)), 'capacity_exceeded');
    throwsCode(() => cache.attach(1, range(500, 20)), 'capacity_exceeded');
    assert.deepEqual(snapshot(cache, [1, 2, 3]), before);
  });

  test('bad inputs throw LlmdsError and change nothing', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 16 }));
    cache.attach(1, [1, 2, 3]);
    const before = snapshot(cache, [1, 2]);
    throwsCode(() => cache.attach(-1, [1]), 'invalid_argument', /seqId.*-1/);
    throwsCode(() => cache.attach(1.5, [1]), 'invalid_argument', /seqId/);
    throwsCode(() => cache.attach(2 ** 32, [1]), 'invalid_argument', /seqId/);
    throwsCode(() => cache.attach(NaN, [1]), 'invalid_argument', /seqId.*NaN/);
    throwsCode(() => cache.attach('1', [1]), 'invalid_argument', /seqId/);
    throwsCode(() => cache.attach(2, [1, -5]), 'invalid_argument', /kvTokens\[1\].*-5/);
    throwsCode(() => cache.attach(2, [1, 2 ** 31]), 'invalid_argument', /kvTokens\[1\]/);
    throwsCode(() => cache.attach(2, [1, 0.5]), 'invalid_argument', /kvTokens\[1\]/);
    throwsCode(() => cache.attach(2, [1, Infinity]), 'invalid_argument', /kvTokens\[1\]/);
    throwsCode(() => cache.attach(2, Int32Array.of(1, -1)), 'invalid_argument', /kvTokens\[1\]/);
    throwsCode(() => cache.attach(2, Uint32Array.of(2 ** 31)), 'invalid_argument', /kvTokens\[0\]/);
    throwsCode(() => cache.attach(2, Float32Array.of(1)), 'invalid_argument', /kvTokens/);
    throwsCode(() => cache.attach(2, 'abc'), 'invalid_argument', /kvTokens/);
    throwsCode(() => cache.attach(2, null), 'invalid_argument', /kvTokens/);
    throwsCode(() => cache.attach(2, [1, 2, 3], [1, 9]), 'invalid_argument', /prefixTokens/);
    throwsCode(() => cache.attach(2, [1, 2], [1, 2, 3]), 'invalid_argument', /prefixTokens/);
    throwsCode(() => cache.append(7, [1]), 'not_found', /seqId 7/);
    throwsCode(() => cache.append(1, [-1]), 'invalid_argument', /tokens\[0\]/);
    throwsCode(() => cache.fork(7, 8), 'not_found', /7/);
    throwsCode(() => cache.fork(1, 1), 'duplicate_id', /1/);
    throwsCode(() => cache.blockTable(7), 'not_found', /seqId 7/);
    throwsCode(() => cache.matchPrefix({}), 'invalid_argument', /tokens/);
    assert.deepEqual(snapshot(cache, [1, 2]), before);

    throwsCode(() => new KVCache({ pageSize: 0 }), 'invalid_argument', /pageSize.*0/);
    throwsCode(() => new KVCache({ pageSize: 2.5 }), 'invalid_argument', /pageSize/);
    throwsCode(() => new KVCache({ maxPages: -1 }), 'invalid_argument', /maxPages/);
    throwsCode(() => new KVCache({ maxPages: 2 ** 31 }), 'invalid_argument', /maxPages/);
    throwsCode(() => new KVCache({ enablePrefixSharing: 1 }), 'invalid_argument', /enablePrefixSharing/);
    throwsCode(() => new KVCache({ pagesize: 4 }), 'invalid_argument', /unknown option "pagesize"/);
    throwsCode(() => new KVCache(42), 'invalid_argument', /options/);
  });

  test('dispose: idempotent, later calls throw disposed, using works', () => {
    const cache = new KVCache({ pageSize: 4 });
    cache.attach(1, [1, 2]);
    assert.equal(cache.disposed, false);
    cache.dispose();
    cache.dispose();
    assert.equal(cache.disposed, true);
    for (const call of [() => cache.get(1), () => cache.attach(1, [1]), () => cache.stats(), () => cache.detach(1)]) {
      throwsCode(call, 'disposed', /KVCache/);
    }
    const scoped = new KVCache();
    scoped[Symbol.dispose](); // what `using` calls at the end of its block
    assert.equal(scoped.disposed, true);
  });

  test('results stay valid after the wasm heap grows', () => {
    const cache = track(new KVCache({ pageSize: 64, maxPages: 200000 }));
    cache.attach(1, range(0, 100));
    const tokens = cache.get(1);
    const table = cache.blockTable(1);
    const stats = cache.stats();
    // ~40 MB of token pages: far past the initial 16 MB heap.
    const big = new Int32Array(10_000_000).map((_, i) => i % 1000);
    cache.attach(2, big);
    assert.equal(tokens.length, 100);
    assert.deepEqual(tokens, Int32Array.from(range(0, 100)));
    assert.equal(table.length, 2);
    assert.equal(stats.tokens, 100);
    assert.equal(cache.get(2).length, big.length);
    assert.equal(cache.get(2)[9_999_999], 9_999_999 % 1000);
    assert.ok(cache.stats().bytes > 40_000_000);
  });

  test('randomized operations agree with a reference model', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 40 }));
    const model = new Map();
    let seed = 12345;
    const rand = (n) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    let failures = 0;
    for (let step = 0; step < 2000; step++) {
      const seq = rand(8);
      const op = rand(10);
      try {
        if (op < 3) {
          const t = Array.from({ length: rand(24) }, () => rand(3));
          cache.attach(seq, t);
          model.set(seq, t);
        } else if (op < 6) {
          const t = Array.from({ length: rand(8) }, () => rand(3));
          cache.append(seq, t);
          model.get(seq).push(...t);
        } else if (op < 8) {
          const dst = rand(8);
          cache.fork(seq, dst);
          model.set(dst, [...model.get(seq)]);
        } else {
          assert.equal(cache.detach(seq), model.delete(seq));
        }
      } catch (e) {
        if (!(e instanceof LlmdsError)) throw e;
        failures++;
      }
      const refs = new Map();
      for (let id = 0; id < 8; id++) {
        const want = model.get(id);
        assert.deepEqual(cache.get(id), want ? Int32Array.from(want) : null);
        if (want) for (const p of cache.blockTable(id)) refs.set(p, (refs.get(p) ?? 0) + 1);
      }
      const s = cache.stats();
      assert.equal(s.sequences, model.size);
      assert.equal(s.usedPages, refs.size);
      assert.equal(s.sharedPages, [...refs.values()].filter((n) => n > 1).length);
    }
    assert.ok(failures > 0);
  });
});

describe('PagedAllocator', () => {
  before(async () => {
    await init();
  });

  test('alloc / free / stats', () => {
    const a = track(new PagedAllocator({ pageSize: 16, maxPages: 8 }));
    const pages = a.alloc(5);
    assert.ok(pages instanceof Int32Array);
    assert.equal(new Set(pages).size, 5);
    throwsCode(() => a.alloc(4), 'capacity_exceeded', /4/);
    throwsCode(() => a.free([pages[0], pages[0]]), 'invalid_argument', /double free|not allocated/);
    throwsCode(() => a.free([99]), 'invalid_argument', /99/);
    assert.equal(a.stats().allocatedPages, 5);
    a.free(pages.subarray(0, 2));
    throwsCode(() => a.free([pages[0]]), 'invalid_argument');
    assert.deepEqual(a.stats(), {
      totalPages: 8,
      allocatedPages: 3,
      freePages: 5,
      utilization: 3 / 8,
      allocationCount: 5,
      freeCount: 2,
    });
    throwsCode(() => a.alloc(-1), 'invalid_argument', /n/);
    throwsCode(() => new PagedAllocator(), 'invalid_argument', /pageSize/);
    throwsCode(() => new PagedAllocator({ pageSize: 4, maxPages: 0 }), 'invalid_argument', /maxPages/);
  });
});

describe('KVCache.blockHashes (NVIDIA Dynamo KV-router scheme)', () => {
  test('golden values from libxxhash; BigUint64Array; partial page ignored; history matters', () => {
    const tokens = Array.from({ length: 42 }, (_, i) => i);
    const h = KVCache.blockHashes(tokens, 4);
    assert.ok(h instanceof BigUint64Array);
    assert.equal(h.length, 10);
    assert.equal(h[0], 0x7ee2cbedc694ab46n);
    assert.equal(h[1], 0x83fb702f20e2ad65n);
    assert.equal(h[9], 0x5c56151e5fb307ebn);
    assert.deepEqual(KVCache.blockHashes(new Int32Array([1, 2, 3, 4]), 4), new BigUint64Array([0xcb38e4d7fb2dca5cn]));
    assert.deepEqual(KVCache.blockHashes(new Uint32Array(tokens), 4), h);
    assert.equal(KVCache.blockHashes([1, 2, 3], 4).length, 0);
    const other = KVCache.blockHashes([99, ...tokens.slice(1)], 4);
    assert.notEqual(other[1], h[1]); // same page 1 content, different history
  });

  test('bad input is invalid_argument', () => {
    throwsCode(() => KVCache.blockHashes([1, 2], 0), 'invalid_argument', /pageSize/);
    throwsCode(() => KVCache.blockHashes([1, -2], 2), 'invalid_argument', /tokens\[1\]/);
    throwsCode(() => KVCache.blockHashes(new Int32Array([1, -2]), 2), 'invalid_argument', /tokens\[1\]/);
    throwsCode(() => KVCache.blockHashes('abc', 2), 'invalid_argument', /tokens/);
    throwsCode(() => KVCache.blockHashes([1, 2], 1.5), 'invalid_argument', /pageSize/);
  });
});
