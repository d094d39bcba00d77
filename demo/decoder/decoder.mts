// SPDX-License-Identifier: MIT
// A small Llama-style decoder (RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU, final
// norm, lm_head) whose K/V live in an llmds KVCache. It exists to prove the cache's payload is
// real: the cached path computes only the positions the cache's plan asks for and attends over
// the pages, and `forwardNoCache` (dense attention written here, no llmds) must give the same
// logits. Weights come from a seed or a .safetensors file with HF Llama tensor names.
import type { KVCache, KVPayloadOptions, KVPlan, TokenArray } from 'llmds';
import { addInPlace, applyRope, argmax, denseAttention, linear, mulberry32, rmsNorm, ropeTable, swiglu } from './ops.mjs';
import { readSafetensors, writeSafetensors, type Dtype, type Tensor } from './safetensors.mjs';

export interface DecoderConfig {
  vocab: number;
  /** Width of the residual stream. */
  dim: number;
  layers: number;
  /** Query heads; a multiple of kvHeads. */
  heads: number;
  /** Key/value heads (grouped-query attention when < heads). */
  kvHeads: number;
  /** Even (RoPE rotates pairs of dims). */
  headDim: number;
  /** Width of the SwiGLU MLP. */
  hidden: number;
  /** RoPE base θ (Llama 2: 10000; Llama 3: 500000). */
  ropeTheta: number;
  /** RMSNorm epsilon. */
  eps: number;
}

export interface LayerWeights {
  attnNorm: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  mlpNorm: Float32Array;
  wGate: Float32Array;
  wUp: Float32Array;
  wDown: Float32Array;
}

export interface Weights {
  embed: Float32Array;
  layers: LayerWeights[];
  norm: Float32Array;
  lmHead: Float32Array;
}

/** The result of a prefill or decode step: the last position's logits and the cache's plan. */
export interface Step {
  logits: Float32Array;
  plan: KVPlan;
  /** Positions this call ran through the model (the cache spared the others). */
  computed: number;
}

/** The metadata key under which toSafetensors stores the config (metadata values are strings). */
export const CONFIG_KEY = 'llmds.decoder';

/**
 * Attention for one layer of a chunk of m positions ending at the sequence's end: q is m × heads
 * × headDim, k and v m × kvHeads × headDim (RoPE applied); returns m × heads × headDim.
 */
type Attend = (layer: number, q: Float32Array, k: Float32Array, v: Float32Array, m: number) => Float32Array;

const CONFIG_KEYS = ['vocab', 'dim', 'layers', 'heads', 'kvHeads', 'headDim', 'hidden', 'ropeTheta', 'eps'] as const;

function checkConfig(c: DecoderConfig): DecoderConfig {
  if (typeof c !== 'object' || c === null) throw new Error('decoder config must be an object');
  for (const k of CONFIG_KEYS.slice(0, 7)) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 1) throw new Error(`decoder config: ${k} must be a positive integer, got ${c[k]}`);
  }
  for (const k of ['ropeTheta', 'eps'] as const) {
    if (!(Number.isFinite(c[k]) && c[k] > 0)) throw new Error(`decoder config: ${k} must be a positive number, got ${c[k]}`);
  }
  if (c.headDim % 2 !== 0) throw new Error(`decoder config: headDim must be even for RoPE, got ${c.headDim}`);
  if (c.heads % c.kvHeads !== 0) throw new Error(`decoder config: heads (${c.heads}) must be a multiple of kvHeads (${c.kvHeads})`);
  return Object.fromEntries(CONFIG_KEYS.map((k) => [k, c[k]])) as unknown as DecoderConfig;
}

/** A Llama config.json (HF transformers) as a DecoderConfig. */
export function configFromHF(hf: Record<string, number | undefined>): DecoderConfig {
  const heads = hf.num_attention_heads!;
  return checkConfig({
    vocab: hf.vocab_size!,
    dim: hf.hidden_size!,
    layers: hf.num_hidden_layers!,
    heads,
    kvHeads: hf.num_key_value_heads ?? heads,
    headDim: hf.head_dim ?? hf.hidden_size! / heads,
    hidden: hf.intermediate_size!,
    ropeTheta: hf.rope_theta ?? 10000,
    eps: hf.rms_norm_eps ?? 1e-6,
  });
}

/** Every tensor with its HF Llama name and expected shape, in file order. */
function tensorShapes(c: DecoderConfig): Array<[string, number[], (w: Weights) => Float32Array]> {
  const out: Array<[string, number[], (w: Weights) => Float32Array]> = [['model.embed_tokens.weight', [c.vocab, c.dim], (w) => w.embed]];
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    const at = (f: (x: LayerWeights) => Float32Array) => (w: Weights) => f(w.layers[l]);
    out.push(
      [`${p}input_layernorm.weight`, [c.dim], at((x) => x.attnNorm)],
      [`${p}self_attn.q_proj.weight`, [c.heads * c.headDim, c.dim], at((x) => x.wq)],
      [`${p}self_attn.k_proj.weight`, [c.kvHeads * c.headDim, c.dim], at((x) => x.wk)],
      [`${p}self_attn.v_proj.weight`, [c.kvHeads * c.headDim, c.dim], at((x) => x.wv)],
      [`${p}self_attn.o_proj.weight`, [c.dim, c.heads * c.headDim], at((x) => x.wo)],
      [`${p}post_attention_layernorm.weight`, [c.dim], at((x) => x.mlpNorm)],
      [`${p}mlp.gate_proj.weight`, [c.hidden, c.dim], at((x) => x.wGate)],
      [`${p}mlp.up_proj.weight`, [c.hidden, c.dim], at((x) => x.wUp)],
      [`${p}mlp.down_proj.weight`, [c.dim, c.hidden], at((x) => x.wDown)],
    );
  }
  out.push(['model.norm.weight', [c.dim], (w) => w.norm], ['lm_head.weight', [c.vocab, c.dim], (w) => w.lmHead]);
  return out;
}

export class Decoder {
  readonly config: DecoderConfig;
  readonly weights: Weights;

  private constructor(config: DecoderConfig, weights: Weights) {
    this.config = config;
    this.weights = weights;
  }

  /**
   * Deterministic weights from mulberry32(seed): linear layers uniform in ±1/sqrt(fan-in) (so a
   * layer roughly keeps the scale of its input), norms 1 ± 0.1, embeddings ±1.
   */
  static fromSeed(config: DecoderConfig, seed: number): Decoder {
    const c = checkConfig(config);
    const rand = mulberry32(seed);
    const fill = (n: number, scale: number, center = 0) => Float32Array.from({ length: n }, () => center + (rand() * 2 - 1) * scale);
    const lin = (out: number, inDim: number) => fill(out * inDim, 1 / Math.sqrt(inDim));
    const embed = fill(c.vocab * c.dim, 1);
    const layers = Array.from({ length: c.layers }, () => ({
      attnNorm: fill(c.dim, 0.1, 1),
      wq: lin(c.heads * c.headDim, c.dim),
      wk: lin(c.kvHeads * c.headDim, c.dim),
      wv: lin(c.kvHeads * c.headDim, c.dim),
      wo: lin(c.dim, c.heads * c.headDim),
      mlpNorm: fill(c.dim, 0.1, 1),
      wGate: lin(c.hidden, c.dim),
      wUp: lin(c.hidden, c.dim),
      wDown: lin(c.dim, c.hidden),
    }));
    return new Decoder(c, { embed, layers, norm: fill(c.dim, 0.1, 1), lmHead: lin(c.vocab, c.dim) });
  }

  /**
   * Loads HF Llama tensors from a .safetensors file (F32, F16 or BF16, widened to f32). The
   * config is the argument, else the file's `llmds.decoder` metadata (HF checkpoints keep it in
   * config.json: see configFromHF). Without lm_head.weight the embeddings are tied, as with
   * HF's tie_word_embeddings. Tensors the decoder does not use are ignored.
   */
  static fromSafetensors(bytes: Uint8Array | ArrayBuffer, config?: DecoderConfig): Decoder {
    const file = readSafetensors(bytes);
    let c = config;
    if (c === undefined) {
      const json = file.metadata[CONFIG_KEY];
      if (json === undefined) throw new Error(`safetensors: no config given and the file has no ${CONFIG_KEY} metadata (pass one; see configFromHF for an HF config.json)`);
      try {
        c = JSON.parse(json) as DecoderConfig;
      } catch (e) {
        throw new Error(`safetensors: ${CONFIG_KEY} metadata is not valid JSON (${(e as Error).message})`);
      }
    }
    c = checkConfig(c);
    const get = (name: string, shape: number[]): Float32Array => {
      const t = file.tensors.get(name);
      if (t === undefined) throw new Error(`safetensors: missing tensor ${name}`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`safetensors: tensor ${name} has shape [${t.shape}], the config needs [${shape}]`);
      }
      return t.data;
    };
    const named = new Map(tensorShapes(c).map(([name, shape]) => [name, shape]));
    const w = (name: string) => get(name, named.get(name)!);
    const layers = Array.from({ length: c.layers }, (_, l) => {
      const p = `model.layers.${l}.`;
      return {
        attnNorm: w(`${p}input_layernorm.weight`),
        wq: w(`${p}self_attn.q_proj.weight`),
        wk: w(`${p}self_attn.k_proj.weight`),
        wv: w(`${p}self_attn.v_proj.weight`),
        wo: w(`${p}self_attn.o_proj.weight`),
        mlpNorm: w(`${p}post_attention_layernorm.weight`),
        wGate: w(`${p}mlp.gate_proj.weight`),
        wUp: w(`${p}mlp.up_proj.weight`),
        wDown: w(`${p}mlp.down_proj.weight`),
      };
    });
    const embed = w('model.embed_tokens.weight');
    const lmHead = file.tensors.has('lm_head.weight') ? w('lm_head.weight') : embed;
    return new Decoder(c, { embed, layers, norm: w('model.norm.weight'), lmHead });
  }

  /** The weights as a .safetensors file with HF Llama names, the config in its metadata. */
  toSafetensors(dtype: Dtype = 'F32'): Uint8Array {
    const tensors = tensorShapes(this.config).map(([name, shape, of]): [string, Tensor] => [name, { shape, data: of(this.weights) }]);
    return writeSafetensors(tensors, { dtype, metadata: { format: 'pt', [CONFIG_KEY]: JSON.stringify(this.config) } });
  }

  /** The `kv` option of a KVCache that can hold this model's K/V. */
  kvOptions(dtype: 'f32' | 'f16' = 'f32'): KVPayloadOptions {
    return { layers: this.config.layers, kvHeads: this.config.kvHeads, headDim: this.config.headDim, dtype };
  }

  /**
   * Runs requests against a KVCache created with `kv: model.kvOptions()`. With another payload
   * shape writeKV fails after attach, leaving that sequence's pages without K/V: a programming
   * error, so it is not rolled back.
   */
  session(cache: KVCache): Session {
    return new Session(this, cache);
  }

  /**
   * The exactness oracle: logits for every position of `tokens`, recomputing everything with
   * dense f64 attention over K/V kept here. No llmds involved.
   */
  forwardNoCache(tokens: TokenArray): Float32Array[] {
    const c = this.config;
    const n = tokens.length;
    const row = c.kvHeads * c.headDim;
    const ks = Array.from({ length: c.layers }, () => new Float32Array(n * row));
    const vs = Array.from({ length: c.layers }, () => new Float32Array(n * row));
    const attend: Attend = (layer, q, k, v, m) => {
      ks[layer].set(k);
      vs[layer].set(v);
      return denseAttention(q, ks[layer], vs[layer], n, m, c.heads, c.kvHeads, c.headDim);
    };
    const x = this.forward(tokens, 0, attend);
    return Array.from({ length: n }, (_, r) => this.logits(x, r));
  }

  /**
   * Runs tokens at positions [start, start + tokens.length) through every layer, `attend`
   * supplying attention; returns the final-normed hidden states (m × dim). @internal
   */
  forward(tokens: TokenArray, start: number, attend: Attend): Float32Array {
    const c = this.config;
    const m = tokens.length;
    this.checkTokens(tokens, start);
    let x: Float32Array = new Float32Array(m * c.dim);
    for (let r = 0; r < m; r++) x.set(this.weights.embed.subarray(tokens[r] * c.dim, (tokens[r] + 1) * c.dim), r * c.dim);
    const rope = ropeTable(start, m, c.headDim, c.ropeTheta);
    this.weights.layers.forEach((w, layer) => {
      const a = rmsNorm(x, m, c.dim, w.attnNorm, c.eps);
      const q = linear(a, m, c.dim, w.wq, c.heads * c.headDim);
      const k = linear(a, m, c.dim, w.wk, c.kvHeads * c.headDim);
      const v = linear(a, m, c.dim, w.wv, c.kvHeads * c.headDim);
      applyRope(q, m, c.heads, c.headDim, rope);
      applyRope(k, m, c.kvHeads, c.headDim, rope);
      const attn = attend(layer, q, k, v, m);
      addInPlace(x, linear(attn, m, c.heads * c.headDim, w.wo, c.dim));
      const b = rmsNorm(x, m, c.dim, w.mlpNorm, c.eps);
      const gate = linear(b, m, c.dim, w.wGate, c.hidden);
      swiglu(gate, linear(b, m, c.dim, w.wUp, c.hidden));
      addInPlace(x, linear(gate, m, c.hidden, w.wDown, c.dim));
    });
    x = rmsNorm(x, m, c.dim, this.weights.norm, c.eps);
    return x;
  }

  /** Throws unless every token is an id of the vocabulary (positions counted from `start`). */
  checkTokens(tokens: TokenArray, start = 0): void {
    for (let r = 0; r < tokens.length; r++) {
      const t = tokens[r];
      if (!(Number.isInteger(t) && t >= 0 && t < this.config.vocab)) throw new Error(`token ${t} at position ${start + r} is not in [0, ${this.config.vocab})`);
    }
  }

  /** lm_head on row r of final hidden states. @internal */
  logits(x: Float32Array, r: number): Float32Array {
    const c = this.config;
    return linear(x.subarray(r * c.dim, (r + 1) * c.dim), 1, c.dim, this.weights.lmHead, c.vocab);
  }
}

/** Requests through one KVCache: the cache decides what is computed, the model computes it. */
export class Session {
  readonly model: Decoder;
  readonly cache: KVCache;

  constructor(model: Decoder, cache: KVCache) {
    this.model = model;
    this.cache = cache;
  }

  /**
   * Attaches the prompt (reusing every cached page of its prefix) and computes the positions
   * from plan.computeFrom on; returns the last position's logits.
   */
  prefill(seqId: number, tokens: TokenArray): Step {
    if (tokens.length === 0) throw new Error('prefill needs at least one token');
    this.model.checkTokens(tokens); // before attach: a bad request must not leave pages behind
    const plan = this.cache.attach(seqId, tokens);
    return this.#compute(seqId, plan, tokens.length, (from) => Array.from(tokens).slice(from));
  }

  /** Appends one token (copy-on-write of a shared tail page is the cache's) and computes it. */
  decodeStep(seqId: number, token: number): Step {
    this.model.checkTokens([token]);
    const plan = this.cache.append(seqId, [token]);
    return this.#compute(seqId, plan, plan.computeFrom + 1, () => [token]); // computeFrom is the old length
  }

  /**
   * Greedy generation: prefill, then `maxNew` tokens each chosen by argmax. Returns the new
   * tokens, the logits each was chosen from, and the prefill's step.
   */
  generate(seqId: number, prompt: TokenArray, maxNew: number): { tokens: number[]; logits: Float32Array[]; prefill: Step } {
    if (!Number.isInteger(maxNew) || maxNew < 1) throw new Error(`maxNew must be a positive integer, got ${maxNew}`);
    const prefill = this.prefill(seqId, prompt);
    const tokens: number[] = [];
    const logits = [prefill.logits];
    for (;;) {
      tokens.push(argmax(logits[logits.length - 1]));
      if (tokens.length >= maxNew) break;
      logits.push(this.decodeStep(seqId, tokens[tokens.length - 1]).logits);
    }
    return { tokens, logits, prefill };
  }

  /**
   * Computes positions [start, length) where start = computeFrom, except when the cache already
   * holds every position: then the last one is run again for its logits (its query only: the
   * K/V it would write are already in the page, as vLLM does on a full prefix hit).
   */
  #compute(seqId: number, plan: KVPlan, length: number, tokensFrom: (from: number) => TokenArray): Step {
    const { cache, model } = this;
    const heads = model.config.heads;
    const fullHit = plan.computeFrom === length;
    const start = fullHit ? length - 1 : plan.computeFrom;
    const attend: Attend = (layer, q, k, v) => {
      if (!fullHit) cache.writeKV(seqId, layer, start, k, v);
      return cache.attention(seqId, layer, q, { numHeads: heads });
    };
    const chunk = tokensFrom(start);
    const x = model.forward(chunk, start, attend);
    return { logits: model.logits(x, chunk.length - 1), plan, computed: chunk.length };
  }
}

export { argmax };
