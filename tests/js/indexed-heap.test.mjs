// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { llmds, throwsCode, disposeAfterEach } from './llmds.mjs';

const { init, IndexedHeap, LlmdsError } = llmds;


// Node 20 has no `using` syntax: what a test tracks is disposed after it.
const track = disposeAfterEach();

const drain = (h) => {
  const out = [];
  for (let e = h.pop(); e !== undefined; e = h.pop()) out.push(e[1]);
  return out;
};

// Runs first, in this file's own process, before anything called init().
test('IndexedHeap throws not_initialized before init()', () => {
  throwsCode(() => new IndexedHeap(), 'not_initialized');
});

describe('IndexedHeap', () => {
  before(async () => {
    await init();
  });

  test('min-heap by default: pop / peek return [score, id]', () => {
    const h = track(new IndexedHeap());
    h.push(1, 5);
    h.push(2, 1);
    h.push(3, 3);
    h.push(4, -2.5);
    assert.equal(h.size, 4);
    assert.deepEqual(h.peek(), [-2.5, 4]);
    assert.deepEqual(h.pop(), [-2.5, 4]);
    assert.deepEqual(drain(h), [2, 3, 1]);
    assert.equal(h.size, 0);
  });

  test('maxHeap: largest first', () => {
    const h = track(new IndexedHeap({ maxHeap: true }));
    for (let id = 0; id < 10; id++) h.push(id, (id * 7) % 10);
    const scores = [];
    for (let e = h.pop(); e; e = h.pop()) scores.push(e[0]);
    assert.deepEqual(scores, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  test('equal scores come out FIFO, in min and max heaps', () => {
    for (const maxHeap of [false, true]) {
      const h = track(new IndexedHeap({ maxHeap }));
      const ids = [50, 3, 99, 0, 7, 4294967295, 12];
      for (const id of ids) h.push(id, 1);
      assert.deepEqual(drain(h), ids);
    }
  });

  test('update to an equal score is a no-op, not an error (prototype regression)', () => {
    const h = track(new IndexedHeap());
    h.push(1, 2);
    h.push(2, 2);
    h.push(3, 1);
    h.update(1, 2);
    h.decreaseKey(2, 2);
    h.increaseKey(3, 1);
    assert.deepEqual(drain(h), [3, 1, 2]);
  });

  test('update moves both ways; decreaseKey / increaseKey enforce direction', () => {
    const h = track(new IndexedHeap());
    for (let id = 0; id < 6; id++) h.push(id, id);
    h.update(5, -1);
    h.update(0, 10);
    h.decreaseKey(4, 0.5);
    h.increaseKey(1, 3); // ties with 3: 1 was pushed first
    throwsCode(() => h.decreaseKey(2, 100), 'invalid_argument', /decreaseKey/);
    throwsCode(() => h.increaseKey(2, -100), 'invalid_argument', /increaseKey/);
    assert.equal(h.scoreOf(2), 2);
    assert.deepEqual(drain(h), [5, 4, 2, 1, 3, 0]);
  });

  test('delete, contains, scoreOf, clear', () => {
    const h = track(new IndexedHeap());
    for (let id = 0; id < 30; id++) h.push(id, (id * 37) % 30);
    assert.equal(h.delete(0), true);
    assert.equal(h.delete(0), false);
    assert.equal(h.delete(999), false);
    assert.equal(h.contains(0), false);
    assert.equal(h.contains(1), true);
    assert.equal(h.scoreOf(1), 7);
    assert.equal(h.scoreOf(0), undefined);
    assert.equal(h.size, 29);
    h.clear();
    assert.equal(h.size, 0);
    assert.equal(h.pop(), undefined);
    h.push(0, 1);
    assert.deepEqual(h.peek(), [1, 0]);
  });

  test('empty heap: pop and peek return undefined', () => {
    const h = track(new IndexedHeap());
    assert.equal(h.pop(), undefined);
    assert.equal(h.peek(), undefined);
  });

  test('Infinity scores are ordinary, NaN is rejected', () => {
    const h = track(new IndexedHeap());
    h.push(1, Infinity);
    h.push(2, -Infinity);
    h.push(3, 0);
    assert.deepEqual(drain(h), [2, 3, 1]);
  });

  test('every bad input throws its code and changes nothing', () => {
    const h = track(new IndexedHeap());
    h.push(1, 1);
    for (const id of [-1, 1.5, 2 ** 32, NaN, '1', null, undefined, {}]) {
      throwsCode(() => h.push(id, 0), 'invalid_argument', /id/);
      throwsCode(() => h.update(id, 0), 'invalid_argument', /id/);
      throwsCode(() => h.delete(id), 'invalid_argument', /id/);
      throwsCode(() => h.contains(id), 'invalid_argument', /id/);
    }
    for (const score of [NaN, '1', null, undefined, 1n]) {
      throwsCode(() => h.push(2, score), 'invalid_argument', /score/);
      throwsCode(() => h.update(1, score), 'invalid_argument', /score/);
      throwsCode(() => h.decreaseKey(1, score), 'invalid_argument', /score/);
    }
    throwsCode(() => h.push(1, 5), 'duplicate_id', /1/);
    throwsCode(() => h.update(7, 5), 'not_found', /7/);
    throwsCode(() => h.decreaseKey(7, 5), 'not_found');
    throwsCode(() => h.increaseKey(7, 5), 'not_found');
    assert.equal(h.size, 1);
    assert.deepEqual(h.peek(), [1, 1]);
    throwsCode(() => new IndexedHeap({ maxHeap: 1 }), 'invalid_argument', /maxHeap/);
    throwsCode(() => new IndexedHeap({ max: true }), 'invalid_argument', /unknown option "max"/);
    throwsCode(() => new IndexedHeap('max'), 'invalid_argument');
  });

  test('dispose: later calls throw disposed', () => {
    const h = new IndexedHeap();
    h.push(1, 1);
    h.dispose();
    h.dispose();
    for (const call of [() => h.push(2, 1), () => h.pop(), () => h.peek(), () => h.size, () => h.delete(1)]) {
      throwsCode(call, 'disposed', /IndexedHeap/);
    }
    const scoped = new IndexedHeap();
    scoped[Symbol.dispose]();
    assert.equal(scoped.disposed, true);
  });

  test('randomized operations match a brute-force model, across heap growth', () => {
    let seed = 42;
    const rand = (n) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    for (const maxHeap of [false, true]) {
      const h = track(new IndexedHeap({ maxHeap }));
      const model = new Map(); // id -> [score, seq]
      let seq = 0;
      const best = () => {
        let bid, b;
        for (const [id, m] of model) {
          if (!b || (m[0] !== b[0] ? (maxHeap ? m[0] > b[0] : m[0] < b[0]) : m[1] < b[1])) [bid, b] = [id, m];
        }
        return bid;
      };
      for (let step = 0; step < 3000; step++) {
        const op = rand(10);
        const id = rand(150);
        const score = rand(40);
        if (op < 4) {
          if (model.has(id)) throwsCode(() => h.push(id, score), 'duplicate_id');
          else (h.push(id, score), model.set(id, [score, seq++]));
        } else if (op < 6) {
          const e = h.pop();
          if (model.size === 0) assert.equal(e, undefined);
          else {
            const want = best();
            assert.deepEqual(e, [model.get(want)[0], want]);
            model.delete(want);
          }
        } else if (op < 8) {
          if (model.has(id)) (h.update(id, score), (model.get(id)[0] = score));
          else throwsCode(() => h.update(id, score), 'not_found');
        } else {
          assert.equal(h.delete(id), model.delete(id));
        }
        assert.equal(h.size, model.size);
      }
    }
    // Growth: a large heap forces the wasm memory to grow between pops; results stay correct.
    const big = track(new IndexedHeap());
    for (let i = 0; i < 300000; i++) big.push(i, 300000 - i);
    assert.deepEqual(big.pop(), [1, 299999]);
    assert.deepEqual(big.peek(), [2, 299998]);
  });
});
