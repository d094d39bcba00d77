// SPDX-License-Identifier: MIT
// The package in Deno (run by tests/edge/deno.test.mjs, which passes Node's scenario result).
// Named *_test.ts so that `node --test` does not pick it up.
import * as llmds from 'llmds';
import { runScenario } from '../scenario.mjs';

function assertEqualJson(actual: unknown, expected: unknown) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`mismatch:\n actual   ${a}\n expected ${e}`);
}

Deno.test('init picks the SIMD build', async () => {
  const f = await llmds.init();
  if (f.simd !== true) throw new Error(`expected the SIMD build, got ${JSON.stringify(f)}`);
});

Deno.test('the shared scenario gives the same result as Node', async () => {
  await llmds.init();
  const expected = JSON.parse(await Deno.readTextFile(Deno.env.get('LLMDS_EXPECTED')!));
  assertEqualJson(await runScenario(llmds), expected);
});

Deno.test('errors are LlmdsError with stable codes', async () => {
  await llmds.init();
  const cache = new llmds.KVCache();
  try {
    cache.attach(-1, [1]);
    throw new Error('expected a throw');
  } catch (e) {
    if (!(e instanceof llmds.LlmdsError) || e.code !== 'invalid_argument') throw e;
  } finally {
    cache.dispose();
  }
});
