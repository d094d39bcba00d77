// SPDX-License-Identifier: MIT
// The built package in Chromium: a page and a module Web Worker, SIMD and portable builds, must
// produce the same scenario result as Node, with no console errors.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { serve } from '../../demo/serve.mjs';
import { llmds } from '../js/llmds.mjs';
import { runScenario } from '../scenario.mjs';
import { launch, open, result } from './chromium.mjs';

let server, base, browser, expected;

before(async () => {
  ({ server, url: base } = await serve());
  browser = await launch();
  await llmds.init();
  expected = JSON.parse(JSON.stringify(await runScenario(llmds)));
});

after(async () => {
  await browser?.close();
  server?.close();
});

describe('Chromium', () => {
  for (const where of ['page', 'worker']) {
    for (const simd of [true, false]) {
      test(`${where}, ${simd ? 'SIMD' : 'portable'} build`, async () => {
        const { page, errors } = await open(browser, `${base}/tests/browser/${where}.html?simd=${simd ? 'auto' : 'false'}`);
        const r = await result(page);
        assert.equal(r.error, undefined, r.error);
        assert.equal(r.features.simd, simd);
        assert.deepEqual(r.scenario, expected);
        assert.deepEqual(errors, []);
        await page.close();
      });
    }
  }
});
