// SPDX-License-Identifier: MIT
// The benchmarks' seeded PRNG, in a module of its own with no imports, so that code that also
// runs inside a Worker (bench/router/workload.mjs) can share it.

/** A small deterministic PRNG (mulberry32): identical data on every run and runtime. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
