// SPDX-License-Identifier: MIT
// Filling the wasm heap to its 4 GiB limit is an LlmdsError, not an abort, and the engine stays
// usable afterwards. Runs in a worker so the 4 GiB is returned when it ends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inFreshEngine } from './llmds.mjs';

test('allocation failure at the wasm memory limit is out_of_memory and the module survives', { timeout: 120000 }, async () => {
  const r = await inFreshEngine(`
    await llmds.init();
    const small = new llmds.KVCache({ pageSize: 4 });
    small.attach(1, [1, 2, 3, 4, 5]);
    const big = new llmds.KVCache({ pageSize: 1 << 20, maxPages: 1 << 12 });
    big.attach(1, []);
    const chunk = new Int32Array(1 << 24); // 64 MiB of tokens per append
    let error;
    let appended = 0;
    for (let i = 0; i < 200 && !error; i++) {
      try {
        big.append(1, chunk);
        appended++;
      } catch (e) {
        error = { name: e.name, code: e.code, isLlmdsError: e instanceof llmds.LlmdsError, message: e.message };
      }
    }
    // Memory is nearly full: copying a 3 GiB argument into the heap fails before the engine runs.
    let argumentError;
    try {
      small.matchPrefix(new Int32Array(3 * (1 << 28)));
    } catch (e) {
      argumentError = { code: e.code, isLlmdsError: e instanceof llmds.LlmdsError, message: e.message };
    }
    const bigStats = big.stats();
    const afterOom = { tokens: Array.from(small.get(1)), bigTokens: bigStats.tokens };
    big.dispose();
    const fresh = new llmds.KVCache({ pageSize: 8 });
    fresh.attach(2, [7, 8, 9]);
    const again = Array.from(fresh.get(2));
    return { error, appended, afterOom, again, argumentError };`);
  assert.equal(r.error, undefined, r.error?.message);
  const { error, appended, afterOom, again, argumentError } = r.ok;
  assert.ok(error, 'expected an error before 200 × 64 MiB');
  assert.equal(error.isLlmdsError, true);
  assert.ok(['out_of_memory', 'capacity_exceeded'].includes(error.code), error.code);
  console.log(`appended ${appended} × 64 MiB, then ${error.code}: ${error.message}`);
  assert.ok(appended >= 8, `only ${appended} appends before the limit`);
  assert.deepEqual(afterOom.tokens, [1, 2, 3, 4, 5]);
  assert.equal(afterOom.bigTokens, appended * (1 << 24)); // the failed append changed nothing visible
  assert.deepEqual(again, [7, 8, 9]);
  assert.deepEqual(argumentError && [argumentError.isLlmdsError, argumentError.code], [true, 'out_of_memory'], argumentError?.message);
  assert.match(argumentError.message, /arguments/);
});

// Argument sizes of 2 GiB and more once overflowed an int32 rounding and were written over live
// memory: a 2 GiB argument is copied whole where the heap has room (or is out_of_memory where
// it has not), touching nothing else.
test('a 2 GiB argument is copied whole and touches nothing else', { timeout: 120000 }, async () => {
  const r = await inFreshEngine(`
    await llmds.init();
    const cache = new llmds.KVCache({ pageSize: 4 });
    cache.attach(1, [1, 2, 3, 4, 5]);
    const out = [];
    for (const n of [(1 << 29) - 1024, 1 << 29]) {
      try {
        out.push(cache.matchPrefix(new Int32Array(n)));
      } catch (e) {
        out.push(e.code);
      }
    }
    return { out, tokens: Array.from(cache.get(1)) };`);
  assert.equal(r.error, undefined, r.error?.message);
  for (const x of r.ok.out) assert.ok(x === 0 || x === 'out_of_memory', String(x));
  assert.deepEqual(r.ok.tokens, [1, 2, 3, 4, 5]);
  console.log(`2 GiB - 4 KiB and 2 GiB arguments: ${r.ok.out.join(', ')}`);
});
