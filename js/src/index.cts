// SPDX-License-Identifier: MIT
// CommonJS forwarder: `const { init, KVCache } = require('llmds')` loads the ES module through
// require(esm) (Node >= 20.17 without a flag; the module has no top-level await).
import llmds = require('./index.mjs');
export = llmds;
