// SPDX-License-Identifier: MIT
// The built package in every browser engine (Chromium, Firefox ESR, WebKit): a page and a module
// Web Worker, SIMD and portable builds, must produce the same scenario result as Node, with no
// console errors.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { serve } from '../../demo/serve.mjs';
import { llmds } from '../js/llmds.mjs';
import { runScenario } from '../scenario.mjs';
import { engines } from './engines.mjs';

let server, base, expected;

before(async () => {
  ({ server, url: base } = await serve());
  await llmds.init();
  expected = JSON.parse(JSON.stringify(await runScenario(llmds)));
});

after(() => server?.close());

for (const engine of engines) {
  describe(engine.name, { skip: engine.skip }, () => {
    let driver, browser;
    before(async () => {
      driver = await engine.load();
      browser = await driver.launch();
    });
    after(() => browser?.close());

    for (const where of ['page', 'worker']) {
      for (const simd of [true, false]) {
        test(`${where}, ${simd ? 'SIMD' : 'portable'} build`, async () => {
          const { page, errors } = await driver.open(browser, `${base}/tests/browser/${where}.html?simd=${simd ? 'auto' : 'false'}`);
          const r = await driver.result(page);
          assert.equal(r.error, undefined, r.error);
          assert.equal(r.features.simd, simd);
          assert.deepEqual(r.scenario, expected);
          assert.deepEqual(errors, []);
          await page.close();
        });
      }
    }
  });
}
