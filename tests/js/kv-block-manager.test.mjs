// SPDX-License-Identifier: MIT
// KVCache as a runtime's block manager: the plans attach/append return, KV events, and the
// Mooncake trace replayed against an independent LRU reference.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';
import { loadTrace, requestTokens, simulate, LruReference, kvCacheModel } from '../../bench/kv-trace.mjs';

const { init, KVCache } = llmds;
const track = disposeAfterEach();
before(() => init());

const range = (from, n) => Array.from({ length: n }, (_, i) => from + i);

describe('KVCache plans', () => {
  test('a fresh attach computes everything; a second one skips the shared pages', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 64 }));
    const a = cache.attach(1, range(1, 10));
    assert.equal(a.cachedTokens, 0);
    assert.equal(a.computeFrom, 0);
    assert.equal(a.blockTable.length, 3);
    assert.deepEqual(a.newPages, a.blockTable);
    assert.deepEqual(a.copies, new Int32Array(0));
    assert.ok(a.blockTable instanceof Int32Array);

    const b = cache.attach(2, [...range(1, 8), 77, 78]);
    assert.equal(b.cachedTokens, 8);
    assert.equal(b.computeFrom, 8);
    assert.deepEqual(b.blockTable.subarray(0, 2), a.blockTable.subarray(0, 2));
    assert.deepEqual(b.newPages, b.blockTable.subarray(2));
    assert.deepEqual(b.blockTable, cache.blockTable(2));
  });

  test('a cached prefix (detached) is reused by the next attach', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 64 }));
    cache.attach(1, range(1, 12));
    cache.detach(1);
    const plan = cache.attach(2, range(1, 14));
    assert.equal(plan.cachedTokens, 12);
    assert.equal(plan.computeFrom, 12);
    assert.equal(plan.newPages.length, 1);
  });

  test('append: computeFrom is the old length; a shared tail is copied first and listed in copies', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 64 }));
    cache.attach(1, range(1, 6));
    const grow = cache.append(1, range(100, 5));
    assert.equal(grow.computeFrom, 6);
    assert.equal(grow.copies.length, 0);
    assert.deepEqual(grow.blockTable, cache.blockTable(1));
    for (const p of grow.newPages) assert.ok(grow.blockTable.includes(p));

    cache.fork(1, 2); // shares every page, including the partial tail
    const before = cache.blockTable(1);
    const cow = cache.append(2, [555]);
    assert.equal(cow.computeFrom, 11);
    assert.equal(cow.copies.length, 2);
    const [src, dst] = cow.copies;
    assert.equal(src, before.at(-1)); // the shared tail
    assert.equal(dst, cow.blockTable.at(-1));
    assert.ok(cow.newPages.includes(dst));
    assert.deepEqual(cache.blockTable(1), before); // the other sequence keeps its pages
    assert.deepEqual(Array.from(cache.get(1)), [...range(1, 6), ...range(100, 5)]);
  });

  test('a failed call returns no plan, changes nothing and records no event', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 3, events: true }));
    cache.attach(1, range(1, 8));
    cache.drainEvents();
    const stats = cache.stats();
    throwsCode(() => cache.attach(2, range(50, 16)), 'capacity_exceeded');
    throwsCode(() => cache.append(9, [1]), 'not_found');
    throwsCode(() => cache.attach(3, [1, -1]), 'invalid_argument');
    assert.deepEqual(cache.stats(), stats);
    assert.deepEqual(cache.drainEvents(), []);
  });
});

describe('KV events', () => {
  test('stored events carry Dynamo block hashes, parents and tokens; removed on eviction; cleared', () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 4, events: true }));
    const tokens = range(1, 9); // two full pages and one token
    cache.attach(1, tokens);
    const [stored, ...rest] = cache.drainEvents();
    assert.equal(rest.length, 0);
    assert.equal(stored.type, 'stored');
    assert.deepEqual(stored.blockHashes, KVCache.blockHashes(tokens, 4));
    assert.equal(stored.parentHash, null);
    assert.deepEqual(stored.tokens, new Int32Array(range(1, 8)));
    assert.equal(stored.pageSize, 4);

    cache.append(1, [10, 11, 12]); // completes the third page
    const [third] = cache.drainEvents();
    assert.equal(third.type, 'stored');
    assert.equal(third.parentHash, stored.blockHashes[1]);
    assert.deepEqual(third.blockHashes, KVCache.blockHashes(range(1, 12), 4).subarray(2));

    cache.detach(1);
    cache.attach(2, range(100, 16)); // needs all 4 pages: every cached page goes
    const events = cache.drainEvents();
    const removed = events.filter((e) => e.type === 'removed').flatMap((e) => Array.from(e.blockHashes));
    assert.deepEqual(removed.sort(), Array.from(KVCache.blockHashes(range(1, 12), 4)).sort());
    cache.clear();
    assert.deepEqual(cache.drainEvents(), [{ type: 'cleared' }]);
    assert.equal(cache.findableHashes().length, 0);
    assert.equal(cache.stats().sequences, 0);
  });

  test('events off: nothing recorded', () => {
    const cache = track(new KVCache({ pageSize: 4 }));
    cache.attach(1, range(1, 9));
    assert.equal(cache.pendingEvents, 0);
    assert.deepEqual(cache.drainEvents(), []);
  });

  // The property of issue 12: after any sequence of operations, replaying the drained events
  // into an empty mirror gives exactly the cache's findable pages, and every stored hash is the
  // Dynamo hash of the page's whole history.
  test('replaying the events into a mirror gives exactly the findable pages (random operations)', () => {
    for (const seed of [1, 2, 3]) {
      let s = seed;
      const next = (n) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n);
      const cache = track(new KVCache({ pageSize: 4, maxPages: 24, events: true }));
      const mirror = new Map(); // hash -> whole token history up to the end of that page
      const live = new Set();
      for (let step = 0; step < 600; step++) {
        const op = next(10);
        const seq = next(8);
        const tokens = Array.from({ length: 1 + next(20) }, () => 1 + next(3)); // small alphabet: sharing
        try {
          if (op < 4) cache.attach(seq, tokens, next(3) === 0 ? tokens.slice(0, next(tokens.length + 1)) : undefined);
          else if (op < 6 && live.has(seq)) cache.append(seq, tokens.slice(0, 1 + next(5)));
          else if (op === 6 && live.has(seq)) cache.fork(seq, 8 + next(4));
          else if (op < 9) cache.detach(seq);
          else if (next(20) === 0) cache.clear();
        } catch (e) {
          assert.ok(['capacity_exceeded', 'duplicate_id', 'not_found'].includes(e.code), e.message);
        }
        live.clear();
        for (let id = 0; id < 12; id++) if (cache.has(id)) live.add(id);
        for (const e of cache.drainEvents()) {
          if (e.type === 'cleared') mirror.clear();
          else if (e.type === 'removed') for (const h of e.blockHashes) assert.ok(mirror.delete(h), `removed ${h} was not stored`);
          else {
            let history = e.parentHash === null ? [] : mirror.get(e.parentHash);
            assert.ok(history, `parent ${e.parentHash} of a stored event is not findable`);
            e.blockHashes.forEach((h, i) => {
              history = [...history, ...e.tokens.subarray(i * 4, (i + 1) * 4)];
              assert.equal(KVCache.blockHashes(history, 4).at(-1), h, 'stored hash is not the chained hash of its history');
              mirror.set(h, history);
            });
          }
        }
        const findable = Array.from(cache.findableHashes());
        assert.deepEqual([...mirror.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), findable, `seed ${seed} step ${step}`);
      }
    }
  });
});

describe('Mooncake trace', () => {
  // The first 1,200 requests (the benchmark replays all 3,993): KVCache and the independent LRU
  // reference must cache exactly the same tokens and reject the same requests, with evictions
  // (2,000 pages) and with hardly any (20,000).
  test('KVCache agrees with an independent LRU reference, token for token', () => {
    const trace = loadTrace().slice(0, 1200);
    const tokens = trace.map(requestTokens);
    const rates = [];
    for (const maxPages of [2000, 20000]) {
      const model = kvCacheModel(maxPages, (req) => tokens[req.id]);
      try {
        const got = simulate(trace, model);
        const expected = simulate(trace, new LruReference(maxPages));
        assert.equal(got.cachedTokens, expected.cachedTokens, `budget ${maxPages}`);
        assert.equal(got.rejected, expected.rejected);
        if (maxPages === 2000) assert.ok(model.cache.stats().evictions > 1000, 'the small budget must evict');
        rates.push(got.hitRate);
      } finally {
        model.cache.dispose();
      }
    }
    assert.ok(rates[0] > 0.02 && rates[1] > 0.15 && rates[1] > rates[0], `hit rates ${rates}`);
  });
});
