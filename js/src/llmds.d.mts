// SPDX-License-Identifier: MIT
// Types of the Emscripten glue (generated at build time next to its .wasm).
import type { Factory } from './init.mjs';
declare const createLlmdsModule: Factory;
export default createLlmdsModule;
