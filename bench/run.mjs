// SPDX-License-Identifier: MIT
// npm run bench [-- --quick]: every component benchmark through the JS API, then the native CLI
// on the same workloads for the wasm/native ratios. JSON goes to bench/results/ (git-ignored).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { quick, printTable, writeResults } from './lib.mjs';
import { runKVCacheBench } from './kv-cache.mjs';

const js = { kv: await runKVCacheBench() };

const cli = fileURLToPath(new URL('../build-native/llmds_bench', import.meta.url));
if (existsSync(cli)) {
  const out = fileURLToPath(new URL('./results/native.json', import.meta.url));
  const r = spawnSync(cli, ['--json', out, ...(quick ? ['--quick'] : [])], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`native bench failed: ${r.stderr}`);
  const native = JSON.parse((await import('node:fs')).readFileSync(out, 'utf8'));
  const rows = [];
  js.kv.latency.forEach((w, i) => {
    const n = native.kvLatency[i];
    for (const op of ['attach', 'get', 'detach']) {
      rows.push({ workload: `kv ${op} page ${w.pageSize}`, wasmP50Ms: w[`${op}P50Ms`], nativeP50Ms: n[`${op}P50Ms`], ratio: w[`${op}P50Ms`] / n[`${op}P50Ms`] });
    }
  });
  js.kv.match.forEach((w, i) => {
    const n = native.kvMatch[i];
    rows.push({ workload: `kv matchPrefix page ${w.pageSize} (ns/token)`, wasmP50Ms: w.nsPerToken, nativeP50Ms: n.nsPerToken, ratio: w.nsPerToken / n.nsPerToken });
  });
  printTable('wasm (through the JS API) / native C++, same workloads, same run', rows);
  await writeResults('ratios', { rows });
} else {
  console.log(`\n(native ratios skipped: build ${cli} with scripts/build.sh)`);
}
