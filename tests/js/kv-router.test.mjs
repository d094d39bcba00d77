// SPDX-License-Identifier: MIT
// KVRouter through the published API: routing by tokens, hashes and text; the policies; loads;
// approximate recording; precise mirroring of llmds and vLLM events checked against the
// caches' own findable pages; persistence; and bad input that must change nothing.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { rng } from '../../bench/rng.mjs';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';

const { init, KVRouter, KVCache } = llmds;
const track = disposeAfterEach();
before(() => init());

const range = (from, n) => Array.from({ length: n }, (_, i) => from + i);

/** Leading blocks of `tokens` among a cache's findable pages: the overlap a precise mirror must report. */
function findableOverlap(cache, tokens, pageSize) {
  const held = new Set(cache.findableHashes());
  let n = 0;
  for (const h of KVCache.blockHashes(tokens, pageSize)) {
    if (!held.has(h)) break;
    n++;
  }
  return n;
}

/** llmds events in vLLM's shape, with engine hashes of vLLM's own (decimal strings here). */
function toVllm(events, engineHash) {
  return events.map((e) => {
    if (e.type === 'cleared') return { type: 'AllBlocksCleared' };
    if (e.type === 'removed') return { type: 'BlockRemoved', block_hashes: [...e.blockHashes].map(engineHash), medium: 'GPU' };
    return {
      type: 'BlockStored',
      block_hashes: [...e.blockHashes].map(engineHash),
      parent_block_hash: e.parentHash === null ? null : engineHash(e.parentHash),
      token_ids: Array.from(e.tokens),
      block_size: e.pageSize,
      lora_id: null,
      medium: 'GPU',
    };
  });
}

describe('KVRouter routing', () => {
  test('a recorded prompt routes back to its worker, by tokens, hashes or text', () => {
    const r = track(new KVRouter({ blockSize: 4 }));
    r.addWorker('http://b:8000');
    r.addWorker('http://a:8000');
    assert.deepEqual(r.workers(), ['http://a:8000', 'http://b:8000']);
    const prompt = Int32Array.from(range(1, 42)); // 10 full blocks and 2 tokens
    const first = r.route(prompt, { requestId: 'r1' });
    assert.equal(first.overlapBlocks, 0);
    assert.equal(first.candidates.length, 2);
    assert.equal(first.worker, first.candidates[0].worker);

    const again = r.route([...range(1, 40), 999]);
    assert.equal(again.worker, first.worker);
    assert.equal(again.overlapBlocks, 10);
    assert.equal(again.overlapTokens, 40);
    assert.deepEqual(again.candidates.map((c) => c.overlapBlocks), [10, 0]);
    assert.ok(again.candidates[0].score < again.candidates[1].score);

    const byHash = r.route({ blockHashes: KVCache.blockHashes(prompt, 4) });
    assert.deepEqual(byHash, again);
    assert.deepEqual(r.route({ blockHashes: [...KVCache.blockHashes(prompt.subarray(0, 8), 4)] }).overlapBlocks, 2);

    const text = 'You are a helpful assistant. '.repeat(20);
    const t = r.route({ text: text + 'Question one?' }, { requestId: 'r2' });
    const t2 = r.route({ text: text + 'Question two, a different one?' });
    assert.equal(t2.worker, t.worker);
    assert.equal(t2.overlapTokens, Math.floor(new TextEncoder().encode(text).length / 128) * 128);
    assert.equal(r.stats().routed, 6);
  });

  test('no worker, bad prompts and bad options are errors', () => {
    const r = track(new KVRouter());
    throwsCode(() => r.route([1, 2, 3]), 'not_found');
    r.addWorker('w');
    throwsCode(() => r.route([1, -2]), 'invalid_argument');
    throwsCode(() => r.route({ text: 'a', blockHashes: [] }), 'invalid_argument', /exactly one/);
    throwsCode(() => r.route({ blockHashes: [1] }), 'invalid_argument', /bigint/);
    throwsCode(() => r.route({ blockHashes: [-1n] }), 'invalid_argument');
    throwsCode(() => r.route({ tokens: [1] }), 'invalid_argument', /unknown option/);
    throwsCode(() => r.route([1], { requestId: 7 }), 'invalid_argument');
    throwsCode(() => new KVRouter({ policy: 'random' }), 'invalid_argument', /cache-aware/);
    throwsCode(() => new KVRouter({ mode: 'exact' }), 'invalid_argument');
    throwsCode(() => new KVRouter({ blockSize: 0 }), 'invalid_argument');
    throwsCode(() => new KVRouter({ capacityBlocks: 0 }), 'invalid_argument');
    throwsCode(() => new KVRouter({ overlapWeight: -1 }), 'invalid_argument', /overlapWeight/);
    throwsCode(() => new KVRouter({ sglangCacheThreshold: 2 }), 'invalid_argument', /sglangCacheThreshold/);
    throwsCode(() => new KVRouter({ sglangBalanceRel: 0.5 }), 'invalid_argument');
    throwsCode(() => new KVRouter({ blocksize: 16 }), 'invalid_argument', /unknown option/);
    throwsCode(() => r.addWorker(''), 'invalid_argument', /empty/);
    throwsCode(() => r.addWorker('w'), 'duplicate_id');
    throwsCode(() => r.addWorker('x', { capacityBlocks: 0 }), 'invalid_argument');
    throwsCode(() => r.removeWorker('nope'), 'not_found');
    assert.deepEqual(r.workers(), ['w']);
  });

  test('loads: started / finished, and the cost trades overlap against load', () => {
    const r = track(new KVRouter({ blockSize: 4 }));
    r.addWorker('a');
    r.addWorker('b');
    const prompt = range(1, 40);
    assert.equal(r.route(prompt, { requestId: 'seed' }).worker, 'a'); // a tie: the lower id
    r.started('a', 'q1', 40);
    assert.equal(r.load('a'), 10);
    // cost(a) = 0 to prefill + 10 in flight; cost(b) = 10 to prefill + 0: a tie broken by load.
    assert.equal(r.route(prompt).worker, 'b');
    r.finished('q1');
    assert.equal(r.load('a'), 0);
    assert.equal(r.route(prompt).worker, 'a');
    throwsCode(() => r.finished('q1'), 'not_found');
    throwsCode(() => r.started('zz', 'q2', 4), 'not_found');
    r.started('b', 'q2', 4);
    throwsCode(() => r.started('a', 'q2', 4), 'duplicate_id');
    throwsCode(() => r.load('zz'), 'not_found');
    throwsCode(() => r.started('a', 'q3', -1), 'invalid_argument');
  });

  test('policies: least-loaded, round-robin, sglang', () => {
    const ll = track(new KVRouter({ blockSize: 4, policy: 'least-loaded' }));
    const rr = track(new KVRouter({ blockSize: 4, policy: 'round-robin' }));
    const sg = track(new KVRouter({ blockSize: 4, policy: 'sglang', sglangBalanceAbs: 8, sglangBalanceRel: 2 }));
    for (const r of [ll, rr, sg]) for (const w of ['a', 'b', 'c']) r.addWorker(w);
    ll.started('a', 'x', 40);
    ll.started('b', 'y', 4);
    assert.equal(ll.route([1, 2, 3, 4]).worker, 'c');
    assert.deepEqual(range(0, 4).map((i) => rr.route([i, 1, 2, 3], { requestId: `r${i}` }).worker), ['a', 'b', 'c', 'a']);
    assert.equal(rr.policy, 'round-robin');

    const prompt = range(1, 40);
    sg.route(prompt, { requestId: 's' }); // recorded on 'a'
    assert.equal(sg.route(prompt).worker, 'a'); // match ratio 1 >= 0.5
    assert.equal(sg.route(range(500, 40)).worker, 'a'); // no match: least loaded, ties by id
    sg.started('a', 'busy', 400); // 100 blocks: imbalanced (100 − 0 > 8 and 100 > 2 × 0)
    assert.notEqual(sg.route(prompt).worker, 'a');
  });

  test('approximate mode forgets least recently routed blocks beyond capacityBlocks', () => {
    const r = track(new KVRouter({ blockSize: 4, capacityBlocks: 12 }));
    r.addWorker('a');
    r.addWorker('small', { capacityBlocks: 3 });
    r.route(range(1, 40), { requestId: '1' });
    assert.equal(r.workerBlocks('a'), 10);
    r.route(range(100, 40), { requestId: '2' }); // to 'small' now? No: ties go to a, overlap 0 both
    assert.equal(r.workerBlocks('a') <= 12, true);
    assert.equal(r.stats().indexedBlocks, r.workerBlocks('a') + r.workerBlocks('small'));
    // What is left of the first prompt is still a prefix: routing finds its head.
    const back = r.route(range(1, 40));
    assert.ok(back.overlapBlocks >= 2 && back.overlapBlocks < 10, `overlap ${back.overlapBlocks}`);
  });
});

describe('KVRouter precise mode', () => {
  test('mirrors KVCache events exactly, through evictions and clears (random workload)', () => {
    const pageSize = 4;
    const rand = rng(7);
    const caches = ['w0', 'w1', 'w2'].map((id) => [id, track(new KVCache({ pageSize, maxPages: 24, events: true }))]);
    const r = track(new KVRouter({ blockSize: pageSize, mode: 'precise' }));
    for (const [id] of caches) r.addWorker(id);
    const systems = [range(1, 16), range(1000, 12), range(2000, 20)];
    const prompt = () => {
      const s = systems[Math.floor(rand() * systems.length)];
      return [...s, ...range(10000 + Math.floor(rand() * 50) * 8, Math.floor(rand() * 12))];
    };
    for (let step = 0; step < 300; step++) {
      const [id, cache] = caches[Math.floor(rand() * caches.length)];
      const seq = Math.floor(rand() * 6);
      if (rand() < 0.3) cache.detach(seq);
      else if (rand() < 0.02) cache.clear();
      else {
        try {
          cache.attach(seq, prompt());
        } catch (e) {
          assert.equal(e.code, 'capacity_exceeded');
        }
      }
      r.applyEvents(id, cache.drainEvents());
      const probe = prompt();
      const got = new Map(r.route(probe).candidates.map((c) => [c.worker, c.overlapBlocks]));
      for (const [wid, c] of caches) assert.equal(got.get(wid), findableOverlap(c, probe, pageSize), `step ${step}, ${wid}`);
      for (const [wid, c] of caches) assert.equal(r.workerBlocks(wid), c.findableHashes().length, `step ${step}, ${wid} blocks`);
    }
    assert.ok(caches.some(([, c]) => c.stats().evictions > 0), 'the workload must evict');
  });

  test("vLLM's snake_case events (own engine hashes, msgpack array form, batches) give the same index", () => {
    const cache = track(new KVCache({ pageSize: 4, maxPages: 10, events: true }));
    const viaLlmds = track(new KVRouter({ blockSize: 4, mode: 'precise' }));
    const viaVllm = track(new KVRouter({ blockSize: 4, mode: 'precise' }));
    viaLlmds.addWorker('w');
    viaVllm.addWorker('w');
    const engine = new Map();
    const engineHash = (h) => {
      if (!engine.has(h)) engine.set(h, String(BigInt.asUintN(64, h * 0x9e3779b97f4a7c15n) || 1n));
      return engine.get(h);
    };
    const prompts = [range(1, 20), [...range(1, 8), ...range(50, 12)], range(300, 16), range(400, 16)];
    prompts.forEach((p, i) => {
      cache.attach(i, p);
      if (i >= 1) cache.detach(i - 1);
      const events = cache.drainEvents();
      viaLlmds.applyEvents('w', events);
      const vllm = toVllm(events, engineHash);
      if (i % 2 === 0) viaVllm.applyEvents('w', { events: vllm });
      else viaVllm.applyEvents('w', vllm.map((e) => (e.type === 'BlockStored'
        ? ['BlockStored', e.block_hashes, e.parent_block_hash, e.token_ids, e.block_size, null, 'GPU']
        : e.type === 'BlockRemoved' ? ['BlockRemoved', e.block_hashes, 'GPU'] : ['AllBlocksCleared'])));
    });
    assert.ok(cache.stats().evictions > 0);
    for (const p of prompts) assert.deepEqual(viaVllm.route(p), viaLlmds.route(p));
    assert.equal(viaVllm.workerBlocks('w'), cache.findableHashes().length);
    viaVllm.applyEvents('w', [{ type: 'AllBlocksCleared' }]);
    assert.equal(viaVllm.workerBlocks('w'), 0);
  });

  test('malformed events are rejected and change nothing', () => {
    const r = track(new KVRouter({ blockSize: 4, mode: 'precise' }));
    r.addWorker('w');
    r.applyEvents('w', [{ type: 'BlockStored', block_hashes: [11, 12], parent_block_hash: null, token_ids: range(1, 8), block_size: 4 }]);
    const before = r.serialize();
    const stored = (o) => ({ type: 'BlockStored', block_hashes: [13], parent_block_hash: 12, token_ids: range(9, 4), block_size: 4, ...o });
    const bad = [
      [[stored({ block_size: 16, token_ids: range(9, 16) })], 'invalid_argument', /block_size is 16/],
      [[stored({ token_ids: range(9, 3) })], 'invalid_argument', /3 token ids for 1 blocks/],
      [[stored({ token_ids: [1, 2, -3, 4] })], 'invalid_argument'],
      [[stored({ block_hashes: ['x'] })], 'invalid_argument', /block hash/],
      [[stored({ block_hashes: [2 ** 60] })], 'invalid_argument', /safe integer/],
      [[stored({ parent_block_hash: 99 })], 'not_found', /parent/], // does not chain
      [[stored({ block_hashes: [11], parent_block_hash: 12 })], 'invalid_argument', /already uses/], // hash reused for other tokens
      [[stored({ block_hashes: [13, 13], token_ids: range(9, 8) })], 'invalid_argument', /twice/],
      [[stored({}), { type: 'BlockEvicted' }], 'invalid_argument', /events\[1\]\.type/], // nothing applied, not even [0]
      [[stored({}), 7], 'invalid_argument'],
      [[{ type: 'BlockRemoved', block_hashes: 5 }], 'invalid_argument'],
      ['nope', 'invalid_argument', /array/],
    ];
    for (const [events, code, mentions] of bad) {
      throwsCode(() => r.applyEvents('w', events), code, mentions);
      assert.deepEqual(r.serialize(), before, JSON.stringify(events));
    }
    throwsCode(() => r.applyEvents('ghost', [stored({})]), 'not_found');
    throwsCode(() => r.applyEvents('ghost', []), 'not_found');
    const approx = track(new KVRouter());
    approx.addWorker('w');
    throwsCode(() => approx.applyEvents('w', []), 'invalid_argument', /precise/);
    // A good event still applies afterwards; removals of unknown hashes are ignored.
    r.applyEvents('w', [stored({}), { type: 'BlockRemoved', block_hashes: [12345n] }]);
    assert.equal(r.workerBlocks('w'), 3);
    // A chain error in the middle of a batch names its index; the events before it stay applied.
    throwsCode(() => r.applyEvents('w', [{ type: 'BlockRemoved', block_hashes: ['13'] }, stored({ parent_block_hash: 77 })]),
      'not_found', /events\[1\] \(1 applied before it\)/);
    assert.equal(r.workerBlocks('w'), 2);
  });
});

describe('KVRouter persistence and lifecycle', () => {
  test('serialize / deserialize keeps the index, workers and counters; loads restart at 0', () => {
    const r = track(new KVRouter({ blockSize: 8, policy: 'sglang', capacityBlocks: 50 }));
    r.addWorker('a');
    r.addWorker('b', { capacityBlocks: 7 });
    r.route(range(1, 64), { requestId: 'x' });
    r.started('a', 'x', 64);
    const copy = track(KVRouter.deserialize(r.serialize()));
    assert.equal(copy.policy, 'sglang');
    assert.equal(copy.blockSize, 8);
    assert.deepEqual(copy.workers(), ['a', 'b']);
    assert.equal(copy.load('a'), 0);
    assert.deepEqual(copy.route(range(1, 64)).candidates.map((c) => c.overlapBlocks), [8, 0]);
    const { bytes: _b, ...s } = copy.stats();
    const { bytes: _c, ...t } = r.stats();
    assert.deepEqual(s, { ...t, routed: t.routed + 1, hitBlocks: t.hitBlocks + 8 });
    const bytes = r.serialize();
    const flipped = bytes.slice();
    flipped[bytes.length >> 1] ^= 0x40;
    throwsCode(() => KVRouter.deserialize(flipped), 'corrupt_data');
    throwsCode(() => KVRouter.deserialize(new Uint8Array(3)), 'corrupt_data');
    throwsCode(() => KVRouter.deserialize('bytes'), 'invalid_argument');
  });

  test('disposed routers throw disposed', () => {
    const r = new KVRouter();
    r.dispose();
    r.dispose();
    throwsCode(() => r.route([1]), 'disposed');
    throwsCode(() => r.blockSize, 'disposed');
  });
});
