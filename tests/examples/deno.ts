// deno add npm:llmds (or npm install llmds with "nodeModulesDir": "manual" in deno.json)
// deno run --allow-read --allow-env deno.ts
import { init, KVCache } from 'llmds';

const { simd } = await init(); // reads the .wasm from the package: needs --allow-read
const cache = new KVCache({ pageSize: 16 });
cache.attach(1, [1, 2, 3]);
console.log(simd, Array.from(cache.get(1) ?? []));
cache.dispose();
