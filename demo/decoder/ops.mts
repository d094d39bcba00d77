// SPDX-License-Identifier: MIT
// The decoder's numeric kernels in plain TypeScript, shared by the cached path and the no-cache
// oracle so that the two differ only in attention. Activations are Float32Array (as a runtime
// stores them); every dot product accumulates in a JS number, i.e. f64.

/** mulberry32: a tiny seeded PRNG, the same stream on every runtime. Values in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * y = x Wᵀ for m rows: x is m × inDim, w is outDim × inDim (PyTorch / HF Linear layout), y is
 * m × outDim. This is where a prefill spends its time, so the bulk runs in blocks of 4 rows × 2
 * outputs (6 loads per 8 multiply-adds instead of 2 per 1: about 1.5× faster in V8). Every
 * output is the same sequential f64 sum in the block and in the tail, so a row's result does not
 * depend on which rows it was computed with: the cached path (a few rows) and the oracle (all
 * rows) get identical projections.
 */
export function linear(x: Float32Array, m: number, inDim: number, w: Float32Array, outDim: number): Float32Array {
  const y = new Float32Array(m * outDim);
  const m4 = m - (m % 4);
  const o2 = outDim - (outDim % 2);
  for (let r = 0; r < m4; r += 4) {
    const a = r * inDim;
    const b = a + inDim;
    const c = b + inDim;
    const d = c + inDim;
    for (let o = 0; o < o2; o += 2) {
      const wo = o * inDim;
      const wp = wo + inDim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      for (let i = 0; i < inDim; i++) {
        const wi = w[wo + i];
        const vi = w[wp + i];
        const x0 = x[a + i], x1 = x[b + i], x2 = x[c + i], x3 = x[d + i];
        s0 += x0 * wi; s1 += x1 * wi; s2 += x2 * wi; s3 += x3 * wi;
        t0 += x0 * vi; t1 += x1 * vi; t2 += x2 * vi; t3 += x3 * vi;
      }
      const y0 = r * outDim + o;
      y[y0] = s0; y[y0 + outDim] = s1; y[y0 + 2 * outDim] = s2; y[y0 + 3 * outDim] = s3;
      y[y0 + 1] = t0; y[y0 + outDim + 1] = t1; y[y0 + 2 * outDim + 1] = t2; y[y0 + 3 * outDim + 1] = t3;
    }
  }
  for (let r = 0; r < m; r++) {
    const a = r * inDim;
    for (let o = r < m4 ? o2 : 0; o < outDim; o++) {
      const wo = o * inDim;
      let s = 0;
      for (let i = 0; i < inDim; i++) s += x[a + i] * w[wo + i];
      y[r * outDim + o] = s;
    }
  }
  return y;
}

/** RMSNorm of each of m rows of x (m × dim): x / sqrt(mean(x²) + eps) · weight. */
export function rmsNorm(x: Float32Array, m: number, dim: number, weight: Float32Array, eps: number): Float32Array {
  const y = new Float32Array(m * dim);
  for (let r = 0; r < m; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[o + i] = x[o + i] * inv * weight[i];
  }
  return y;
}

/** cos and sin of position × θ^(−2i/headDim) for i < headDim/2, positions [start, start + m). */
export function ropeTable(start: number, m: number, headDim: number, theta: number): { cos: Float64Array; sin: Float64Array } {
  const half = headDim / 2;
  const cos = new Float64Array(m * half);
  const sin = new Float64Array(m * half);
  for (let i = 0; i < half; i++) {
    const freq = Math.pow(theta, (-2 * i) / headDim);
    for (let r = 0; r < m; r++) {
      const angle = (start + r) * freq;
      cos[r * half + i] = Math.cos(angle);
      sin[r * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * Llama's rotate-half RoPE in place on x (m × heads × headDim): dims i and i + headDim/2 of each
 * head form the pair rotated by the position's angle (HF's layout, not GPT-J's interleaved one).
 */
export function applyRope(x: Float32Array, m: number, heads: number, headDim: number, table: { cos: Float64Array; sin: Float64Array }): void {
  const half = headDim / 2;
  for (let r = 0; r < m; r++) {
    for (let h = 0; h < heads; h++) {
      const o = (r * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const c = table.cos[r * half + i];
        const s = table.sin[r * half + i];
        const x1 = x[o + i];
        const x2 = x[o + i + half];
        x[o + i] = x1 * c - x2 * s;
        x[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
}

/** SwiGLU's gate in place: gate = silu(gate) · up. */
export function swiglu(gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    gate[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** a += b, element-wise (the residual stream). */
export function addInPlace(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}

/**
 * Causal grouped-query attention over dense K/V in f64, the oracle's own: q is m × heads ×
 * headDim for positions [length − m, length); k, v hold ≥ length rows of kvHeads × headDim.
 */
export function denseAttention(q: Float32Array, k: Float32Array, v: Float32Array, length: number, m: number, heads: number, kvHeads: number, headDim: number): Float32Array {
  const out = new Float32Array(m * heads * headDim);
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(length);
  const acc = new Float64Array(headDim);
  for (let r = 0; r < m; r++) {
    const pos = length - m + r;
    for (let h = 0; h < heads; h++) {
      const qo = (r * heads + h) * headDim;
      const kh = Math.floor(h / group);
      let max = -Infinity;
      for (let j = 0; j <= pos; j++) {
        const ko = (j * kvHeads + kh) * headDim;
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[qo + d] * k[ko + d];
        scores[j] = s * scale;
        if (scores[j] > max) max = scores[j];
      }
      let sum = 0;
      acc.fill(0);
      for (let j = 0; j <= pos; j++) {
        const w = Math.exp(scores[j] - max);
        sum += w;
        const vo = (j * kvHeads + kh) * headDim;
        for (let d = 0; d < headDim; d++) acc[d] += w * v[vo + d];
      }
      for (let d = 0; d < headDim; d++) out[qo + d] = acc[d] / sum;
    }
  }
  return out;
}

/** Index of the largest logit; the lowest index on ties (greedy sampling). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}
