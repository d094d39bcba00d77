// SPDX-License-Identifier: MIT
// Generated at build time (scripts/inline-wasm.mjs): the .wasm as base64.
declare const wasmBase64: string;
export default wasmBase64;
