// SPDX-License-Identifier: MIT
// A small app as a user writes it; esbuild bundles it with no configuration at all.
import * as llmds from 'llmds';
import { runScenario } from '../scenario.mjs';

try {
  const features = await llmds.init();
  window.__result = { features, scenario: await runScenario(llmds) };
} catch (e) {
  window.__result = { error: String(e?.stack ?? e) };
}
