// SPDX-License-Identifier: MIT
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { llmds, throwsCode } from './llmds.mjs';

const { init, Timer, MetricsCollector, memoryProfiler, MemoryProfiler, percentile, KVCache } = llmds;

test('percentile uses the nearest rank of sorted samples', () => {
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(sorted, 50), 50);
  assert.equal(percentile(sorted, 95), 95);
  assert.equal(percentile(sorted, 99), 99);
  assert.equal(percentile(sorted, 100), 100);
  assert.equal(percentile([7], 50), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('MetricsCollector sorts before taking percentiles (the prototype did not)', () => {
  const m = new MetricsCollector();
  for (const v of [9, 1, 5, 3, 7, 2, 8, 4, 6, 10]) m.recordLatency(v);
  assert.deepEqual(m.getMetrics(), { count: 10, latencyMean: 5.5, latencyP50: 5, latencyP95: 10, latencyP99: 10, latencyMax: 10 });
  for (const bad of [NaN, -1, Infinity, '3', undefined]) throwsCode(() => m.recordLatency(bad), 'invalid_argument', /latency/);
  assert.equal(m.count, 10);
  m.reset();
  assert.equal(m.getMetrics().count, 0);
});

test('Timer measures seconds, sync and async', async () => {
  const t = new Timer().start();
  const until = performance.now() + 15;
  while (performance.now() < until);
  const s = t.stop();
  assert.ok(s >= 0.014 && s < 5, `elapsed ${s}`);
  assert.equal(t.elapsed, s);
  const sync = Timer.time(() => 42);
  assert.equal(sync.result, 42);
  assert.ok(sync.elapsed >= 0);
  const later = await Timer.time(async () => {
    await new Promise((r) => setTimeout(r, 10));
    return 'done';
  });
  assert.equal(later.result, 'done');
  assert.ok(later.elapsed >= 0.005);
});

test('memoryProfiler reports RSS and the wasm heap growth', async () => {
  await init();
  const mem = memoryProfiler();
  assert.ok(mem instanceof MemoryProfiler);
  assert.ok(mem.baseline.rssMb > 0);
  assert.ok(mem.baseline.wasmHeapMb >= 16);
  const cache = new KVCache({ pageSize: 256, maxPages: 100000 });
  cache.attach(1, new Int32Array(8_000_000)); // 32 MB of tokens
  const s = mem.sample();
  assert.ok(s.wasmHeapMb >= mem.baseline.wasmHeapMb + 30 || mem.baseline.wasmHeapMb > 64, `wasm heap ${s.wasmHeapMb}`);
  assert.ok(mem.peakWasmHeapMb >= s.wasmHeapMb);
  assert.ok(mem.peakRssMb >= s.rssMb);
  assert.equal(typeof mem.memoryDeltaMb, 'number');
  cache.dispose();
});
