// SPDX-License-Identifier: MIT
// TokenLRU is pure JavaScript: this file never calls init(), which proves it needs no engine.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmds, throwsCode } from './llmds.mjs';

const { TokenLRU, LlmdsError } = llmds;


const byLength = (options = {}) => new TokenLRU({ tokenBudget: 100, tokenOf: (v) => v.length, ...options });
const str = (n, c = 'x') => c.repeat(n);

describe('TokenLRU', () => {
  test('works before init() and evicts least recently used entries', () => {
    const c = byLength();
    assert.equal(c.put('a', str(40)), true);
    assert.equal(c.put('b', str(40)), true);
    assert.equal(c.totalTokens, 80);
    assert.equal(c.get('a'), str(40)); // a becomes most recent
    assert.equal(c.put('c', str(30)), true);
    assert.equal(c.has('b'), false);
    assert.deepEqual(c.keys(), ['a', 'c']);
    assert.equal(c.size, 2);
    assert.equal(c.totalTokens, 70);
  });

  test('an item larger than the budget is refused: nothing evicted, the old entry kept', () => {
    const c = byLength();
    c.put('a', str(60));
    c.put('b', str(40));
    assert.equal(c.put('huge', str(101)), false);
    assert.equal(c.put('a', str(101)), false);
    assert.equal(c.get('a'), str(60));
    assert.equal(c.size, 2);
    assert.equal(c.totalTokens, 100);
    assert.equal(c.put('exact', str(100)), true);
    assert.deepEqual(c.keys(), ['exact']);
  });

  test('tokenOf is called exactly once per put, with (value, key)', () => {
    const calls = [];
    const c = new TokenLRU({ tokenBudget: 10, tokenOf: (v, k) => (calls.push([v, k]), v) });
    c.put('a', 3);
    c.put(7, 4);
    c.put('a', 5);
    c.put('big', 11);
    assert.deepEqual(calls, [[3, 'a'], [4, 7], [5, 'a'], [11, 'big']]);
    c.get('a');
    c.has(7);
    c.evictUntilBudget(0);
    assert.equal(calls.length, 4);
  });

  test('replacing a key updates value, cost and recency', () => {
    const c = byLength();
    c.put('a', str(10));
    c.put('b', str(10));
    c.put('a', str(50, 'y'));
    assert.equal(c.totalTokens, 60);
    assert.deepEqual(c.keys(), ['b', 'a']);
    c.put('a', str(95));
    assert.deepEqual(c.keys(), ['a']);
    assert.equal(c.totalTokens, 95);
  });

  test('get refreshes recency; has and peek do not; missing keys give undefined', () => {
    const c = byLength({ tokenBudget: 1000 });
    for (let i = 0; i < 5; i++) c.put(`k${i}`, str(1));
    assert.equal(c.has('k0'), true);
    assert.equal(c.peek('k0'), 'x');
    assert.equal(c.keys()[0], 'k0');
    c.get('k1');
    c.get('k0');
    assert.deepEqual(c.keys(), ['k2', 'k3', 'k4', 'k1', 'k0']);
    assert.equal(c.get('missing'), undefined);
    assert.equal(c.has('missing'), false);
  });

  test('evictUntilBudget returns [key, value] pairs, least recently used first', () => {
    const c = byLength({ tokenBudget: 1000 });
    for (let i = 0; i < 6; i++) c.put(i, str(100, String(i)));
    c.get(0);
    const out = c.evictUntilBudget(250);
    assert.deepEqual(out.map(([k]) => k), [1, 2, 3, 4]);
    assert.equal(out[3][1], str(100, '4'));
    assert.equal(c.totalTokens, 200);
    assert.deepEqual(c.evictUntilBudget(200), []);
    assert.equal(c.evictUntilBudget(0).length, 2);
    assert.equal(c.size, 0);
    assert.equal(c.totalTokens, 0);
  });

  test('delete and clear; string and number keys are distinct', () => {
    const c = byLength();
    c.put('1', 'a');
    c.put(1, 'bb');
    assert.equal(c.size, 2);
    assert.equal(c.get(1), 'bb');
    assert.equal(c.delete('1'), true);
    assert.equal(c.delete('1'), false);
    assert.equal(c.totalTokens, 2);
    c.clear();
    assert.equal(c.size, 0);
    assert.equal(c.totalTokens, 0);
    assert.equal(c.tokenBudget, 100);
  });

  test('onEvict hears about every entry a put evicts', () => {
    const evicted = [];
    const c = byLength({ tokenBudget: 10, onEvict: (k, v) => evicted.push([k, v, c.size]) });
    c.put('a', str(4));
    c.put('b', str(4));
    c.put('c', str(9));
    assert.deepEqual(evicted, [['a', str(4), 1], ['b', str(4), 1]]);
    c.evictUntilBudget(0); // returned, not reported
    assert.equal(evicted.length, 2);
  });

  test('size and totalTokens are read-only getters', () => {
    for (const name of ['size', 'totalTokens']) {
      const d = Object.getOwnPropertyDescriptor(TokenLRU.prototype, name);
      assert.equal(typeof d.get, 'function');
      assert.equal(d.set, undefined);
    }
  });

  test('bad inputs throw invalid_argument and change nothing', () => {
    for (const budget of [0, -1, NaN, Infinity, '10', null, undefined]) {
      throwsCode(() => new TokenLRU({ tokenBudget: budget, tokenOf: () => 1 }), 'invalid_argument', /tokenBudget/);
    }
    throwsCode(() => new TokenLRU({ tokenBudget: 10 }), 'invalid_argument', /tokenOf/);
    throwsCode(() => new TokenLRU({ tokenBudget: 10, tokenOf: 5 }), 'invalid_argument', /tokenOf/);
    throwsCode(() => new TokenLRU({ tokenBudget: 10, tokenOf: () => 1, onEvict: 1 }), 'invalid_argument', /onEvict/);
    throwsCode(() => new TokenLRU({ tokenBudget: 10, tokenOf: () => 1, budget: 3 }), 'invalid_argument', /unknown option/);
    throwsCode(() => new TokenLRU(), 'invalid_argument', /tokenBudget/);
    let cost = 1;
    const c = new TokenLRU({ tokenBudget: 10, tokenOf: () => cost });
    c.put('a', 'A');
    for (const bad of [-1, NaN, Infinity, '3', undefined, null]) {
      cost = bad;
      throwsCode(() => c.put('a', 'B'), 'invalid_argument', /tokenOf/);
      throwsCode(() => c.put('z', 'B'), 'invalid_argument', /tokenOf/);
    }
    cost = 1;
    for (const key of [{}, NaN, undefined, null, true, 1n]) throwsCode(() => c.put(key, 'B'), 'invalid_argument', /key/);
    for (const target of [-1, NaN, Infinity, '1']) throwsCode(() => c.evictUntilBudget(target), 'invalid_argument', /target/);
    assert.deepEqual(c.keys(), ['a']);
    assert.equal(c.get('a'), 'A');
    assert.equal(c.totalTokens, 1);
  });

  test('randomized operations match a simple model', () => {
    let seed = 7;
    const rand = (n) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const c = new TokenLRU({ tokenBudget: 500, tokenOf: (v) => v.cost });
    let model = []; // [key, cost], LRU first
    const total = () => model.reduce((s, [, t]) => s + t, 0);
    for (let step = 0; step < 4000; step++) {
      const key = rand(40);
      const op = rand(10);
      if (op < 5) {
        const cost = rand(120);
        assert.equal(c.put(key, { cost }), true);
        model = model.filter(([k]) => k !== key);
        model.push([key, cost]);
        while (total() > 500) model.shift();
      } else if (op < 8) {
        const i = model.findIndex(([k]) => k === key);
        assert.equal(c.get(key) !== undefined, i >= 0);
        if (i >= 0) model.push(...model.splice(i, 1));
      } else if (op < 9) {
        const i = model.findIndex(([k]) => k === key);
        assert.equal(c.delete(key), i >= 0);
        if (i >= 0) model.splice(i, 1);
      } else {
        const target = rand(600);
        const out = c.evictUntilBudget(target);
        const want = [];
        while (total() > target) want.push(model.shift()[0]);
        assert.deepEqual(out.map(([k]) => k), want);
      }
      assert.equal(c.totalTokens, total());
      assert.deepEqual(c.keys(), model.map(([k]) => k));
    }
  });
});
