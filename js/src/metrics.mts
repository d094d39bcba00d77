// SPDX-License-Identifier: MIT
// Measurement utilities: timers, latency percentiles from sorted samples, memory sampling.
// Plain JS: they work before init() (the wasm heap size is reported once the engine is loaded).
import { isLoaded, engine } from './engine.mjs';
import { fail } from './validate.mjs';

const now = (): number => performance.now();

/**
 * A stopwatch in seconds.
 * @example
 * const t = new Timer().start(); work(); t.stop(); t.elapsed; // seconds
 * const { result, elapsed } = Timer.time(() => work());
 */
export class Timer {
  #start: number | undefined;
  #elapsedMs = 0;

  start(): this {
    this.#start = now();
    return this;
  }

  /** Stops and returns the elapsed seconds. */
  stop(): number {
    if (this.#start !== undefined) this.#elapsedMs = now() - this.#start;
    this.#start = undefined;
    return this.elapsed;
  }

  /** Seconds between start() and stop(), or until now while running. */
  get elapsed(): number {
    return (this.#start !== undefined ? now() - this.#start : this.#elapsedMs) / 1000;
  }

  /** Runs fn and reports how long it took in seconds (awaits it when it returns a promise). */
  static time<R>(fn: () => R): R extends Promise<infer U> ? Promise<{ result: U; elapsed: number }> : { result: R; elapsed: number };
  static time(fn: () => unknown): unknown {
    const t = new Timer().start();
    const result = fn();
    if (result instanceof Promise) return result.then((r) => ({ result: r, elapsed: t.stop() }));
    return { result, elapsed: t.stop() };
  }
}

export interface LatencyMetrics {
  count: number;
  latencyMean: number;
  latencyP50: number;
  latencyP95: number;
  latencyP99: number;
  latencyMax: number;
}

/**
 * The p-th percentile (0 < p <= 100) of ascending `sorted` by the nearest-rank method: the
 * smallest sample with at least p% of the samples at or below it. NaN for no samples.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Collects latencies (ms) and reports mean, p50/p95/p99 and max from the sorted samples. */
export class MetricsCollector {
  #samples: number[] = [];

  recordLatency(ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) fail(`latency must be a finite number >= 0 (ms), got ${String(ms)}`);
    this.#samples.push(ms);
  }

  get count(): number {
    return this.#samples.length;
  }

  getMetrics(): LatencyMetrics {
    const sorted = Float64Array.from(this.#samples).sort();
    let sum = 0;
    for (const s of sorted) sum += s;
    return {
      count: sorted.length,
      latencyMean: sorted.length ? sum / sorted.length : NaN,
      latencyP50: percentile(sorted, 50),
      latencyP95: percentile(sorted, 95),
      latencyP99: percentile(sorted, 99),
      latencyMax: sorted.length ? sorted[sorted.length - 1]! : NaN,
    };
  }

  reset(): void {
    this.#samples = [];
  }
}

const MB = 1024 * 1024;

/** Resident set size in MB where the runtime reports one (Node, Deno), else undefined. */
function rssMb(): number | undefined {
  const g = globalThis as {
    process?: { memoryUsage?: { rss?: () => number } };
    Deno?: { memoryUsage?: () => { rss: number } };
  };
  if (typeof g.process?.memoryUsage?.rss === 'function') return g.process.memoryUsage.rss() / MB;
  if (typeof g.Deno?.memoryUsage === 'function') return g.Deno.memoryUsage().rss / MB;
  return undefined;
}

function wasmHeapMb(): number {
  return isLoaded() ? engine().HEAPU8.length / MB : 0;
}

export interface MemorySample {
  /** RSS in MB, or undefined where the runtime has none (browsers, workerd). */
  rssMb: number | undefined;
  /** Size of the engine's wasm memory in MB (0 before init). */
  wasmHeapMb: number;
}

/**
 * Samples RSS and the wasm heap; tracks the peak and the change since construction.
 * @example
 * const mem = memoryProfiler(); build(); mem.sample(); mem.peakRssMb; mem.memoryDeltaMb;
 */
export class MemoryProfiler {
  readonly baseline: MemorySample;
  #peakRss: number | undefined;
  #peakWasm: number;
  #last: MemorySample;

  constructor() {
    this.baseline = this.#read();
    this.#last = this.baseline;
    this.#peakRss = this.baseline.rssMb;
    this.#peakWasm = this.baseline.wasmHeapMb;
  }

  #read(): MemorySample {
    return { rssMb: rssMb(), wasmHeapMb: wasmHeapMb() };
  }

  /** Takes a sample now and returns it. */
  sample(): MemorySample {
    const s = this.#read();
    if (s.rssMb !== undefined) this.#peakRss = Math.max(this.#peakRss ?? 0, s.rssMb);
    this.#peakWasm = Math.max(this.#peakWasm, s.wasmHeapMb);
    this.#last = s;
    return s;
  }

  /** Highest RSS sampled (MB); undefined where the runtime has no RSS. */
  get peakRssMb(): number | undefined {
    return this.#peakRss;
  }

  /** Highest wasm heap size sampled (MB). */
  get peakWasmHeapMb(): number {
    return this.#peakWasm;
  }

  /** Change since construction, in MB, at the last sample: RSS where available, else wasm heap. */
  get memoryDeltaMb(): number {
    if (this.#last.rssMb !== undefined && this.baseline.rssMb !== undefined) return this.#last.rssMb - this.baseline.rssMb;
    return this.#last.wasmHeapMb - this.baseline.wasmHeapMb;
  }

  /** Growth of the wasm heap since construction, in MB, at the last sample. */
  get wasmHeapDeltaMb(): number {
    return this.#last.wasmHeapMb - this.baseline.wasmHeapMb;
  }
}

/** A new MemoryProfiler with its baseline taken now. */
export function memoryProfiler(): MemoryProfiler {
  return new MemoryProfiler();
}
