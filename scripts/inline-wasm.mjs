// SPDX-License-Identifier: MIT
// Writes dist/<build>-wasm.inline.mjs: each .wasm as a base64 string module, for the `browser`
// entry (bundlers that do not handle .wasm assets without configuration).
//   node scripts/inline-wasm.mjs [distDir]
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = resolve(process.argv[2] ?? fileURLToPath(new URL('../dist', import.meta.url)));
for (const build of ['llmds', 'llmds-nosimd']) {
  const base64 = readFileSync(join(dist, `${build}.wasm`)).toString('base64');
  writeFileSync(join(dist, `${build}-wasm.inline.mjs`), `// Generated: ${build}.wasm as base64.\nexport default '${base64}';\n`);
}
