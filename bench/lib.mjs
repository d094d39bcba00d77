// SPDX-License-Identifier: MIT
// Shared benchmark plumbing: the package under test, seeded data, sorted-sample percentiles,
// table printing and JSON results.
import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = process.env.LLMDS_DIST;
export const llmds = await import(dist ? pathToFileURL(resolve(dist, 'index.mjs')).href : 'llmds');

export const quick = process.argv.includes('--quick');

export { rng } from './rng.mjs';

/** p50/p95/p99 (nearest rank, from sorted samples) of latencies in ms, keyed `${name}P50Ms`... */
export function summarize(name, samplesMs) {
  const m = new llmds.MetricsCollector();
  for (const s of samplesMs) m.recordLatency(s);
  const r = m.getMetrics();
  return {
    [`${name}P50Ms`]: r.latencyP50,
    [`${name}P95Ms`]: r.latencyP95,
    [`${name}P99Ms`]: r.latencyP99,
    [`${name}MeanMs`]: r.latencyMean,
  };
}

/** Times fn(i) for i in [0, n): one sample per call, in ms. */
export function timeEach(n, fn) {
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn(i);
    samples[i] = performance.now() - t0;
  }
  return samples;
}

/** Best-of-`reps` mean time per operation in ns for cheap operations timed in a batch. */
export function nsPerOp(ops, fn, reps = 5) {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, ((performance.now() - t0) * 1e6) / ops);
  }
  return best;
}

/** A binary min-heap ordered by `less(a, b)` (the simulators' event and departure queues). */
export class MinHeap {
  #h = [];
  #less;
  constructor(less) {
    this.#less = less;
  }
  get size() {
    return this.#h.length;
  }
  peek() {
    return this.#h[0];
  }
  push(entry) {
    const h = this.#h;
    const less = this.#less;
    h.push(entry);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop() {
    const h = this.#h;
    const less = this.#less;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l], h[m])) m = l;
        if (r < h.length && less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

export function printTable(title, rows) {
  console.log(`\n${title}`);
  const keys = Object.keys(rows[0] ?? {});
  const cell = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (vals) => '| ' + vals.map((v, i) => v.padEnd(widths[i])).join(' | ') + ' |';
  console.log(line(keys));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of rows) console.log(line(keys.map((k) => cell(r[k]))));
}

export async function writeResults(name, data) {
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  const file = new URL(`${name}.json`, dir);
  const meta = { date: new Date().toISOString(), node: process.version, quick, simd: llmds.features().simd };
  await writeFile(file, JSON.stringify({ meta, ...data }, null, 2));
  return file;
}

export function isMain(meta) {
  return process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === meta.url;
}
