// SPDX-License-Identifier: MIT
// A module Web Worker running the shared scenario.
import * as llmds from '/dist/index.mjs';
import { runScenario } from '/tests/scenario.mjs';

self.onmessage = async ({ data }) => {
  try {
    const features = await llmds.init({ simd: data.simd });
    self.postMessage({ features, scenario: await runScenario(llmds) });
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
