// SPDX-License-Identifier: MIT
import { LlmdsError } from './errors.mjs';
import { check, checked, engine, limits, type RawHandle } from './engine.mjs';
import type { KVEvent, TokenArray } from './kv-cache.mjs';
import { withHeap, withHeapAll } from './memory.mjs';
import { adoptOr, deserializeRaw, Owned } from './owned.mjs';
import * as v from './validate.mjs';

/** @internal */
interface RawKVRouter extends RawHandle {
  options(): RawOptions;
  addWorker(id: number, idN: number, capacityBlocks: number): number;
  removeWorker(id: number, idN: number): number;
  workers(): string[];
  hasWorker(id: number, idN: number): boolean;
  route(hashes: number, n: number, request: number, requestN: number): number;
  routeTokens(tokens: number, n: number, request: number, requestN: number): number;
  routeText(text: number, n: number, request: number, requestN: number): number;
  resultAddress(): number;
  started(worker: number, workerN: number, request: number, requestN: number, promptTokens: number): number;
  finished(request: number, requestN: number): number;
  load(worker: number, workerN: number): number;
  workerBlocks(worker: number, workerN: number): number;
  applyStored(worker: number, workerN: number, hashes: number, n: number, hasParent: boolean, parentLow: number,
    parentHigh: number, tokens: number, nTokens: number, blockSize: number): number;
  applyRemoved(worker: number, workerN: number, hashes: number, n: number): number;
  applyCleared(worker: number, workerN: number): number;
  serialize(): Uint8Array;
  stats(): KVRouterStats;
}

/** @internal */
interface RawOptions {
  blockSize: number;
  policy: number;
  overlapWeight: number;
  mode: number;
  capacityBlocks: number;
  sglangCacheThreshold: number;
  sglangBalanceAbs: number;
  sglangBalanceRel: number;
}

/** @internal */
interface KVRouterEngine {
  RawKVRouter: {
    create(blockSize: number, policy: number, overlapWeight: number, mode: number, capacityBlocks: number,
      cacheThreshold: number, balanceAbs: number, balanceRel: number): RawKVRouter | null;
    deserialize(bytes: number, n: number): RawKVRouter | null;
    limits(): { maxWorkers: number; maxCapacityBlocks: number };
  };
}

const routerLimits = () => limits('KVRouter', (m) => (m as unknown as KVRouterEngine).RawKVRouter.limits());

const POLICIES = ['cache-aware', 'sglang', 'least-loaded', 'round-robin'] as const;
const MODES = ['approximate', 'precise'] as const;

/** How a router picks a worker (see {@link KVRouter}). */
export type RoutingPolicy = (typeof POLICIES)[number];
/** Where a router's index comes from: what it routed (`approximate`) or the workers' KV events (`precise`). */
export type RoutingMode = (typeof MODES)[number];

export interface KVRouterOptions {
  /** Tokens per block; in precise mode the engines' block size too. Default 16. */
  blockSize?: number;
  /** Default `'cache-aware'`. */
  policy?: RoutingPolicy;
  /** cache-aware: the weight of the blocks still to prefill against the active blocks. Default 1. */
  overlapWeight?: number;
  /** Default `'approximate'`. */
  mode?: RoutingMode;
  /** Approximate mode: blocks remembered per worker (LRU), unless addWorker says otherwise. Default 100000. */
  capacityBlocks?: number;
  /** sglang: route by cache when the best match ratio is at least this, in [0, 1]. Default 0.5. */
  sglangCacheThreshold?: number;
  /** sglang: the fleet is imbalanced when max − min load exceeds this many blocks ... Default 256. */
  sglangBalanceAbs?: number;
  /** ... and max load exceeds this × min load (>= 1). Default 1.5. */
  sglangBalanceRel?: number;
}

/**
 * A prompt to route: token ids; or chained block hashes (e.g. from {@link KVCache.blockHashes});
 * or raw text for gateways without a tokenizer (hashed in 128-byte chunks of its UTF-8).
 */
export type RoutePrompt = TokenArray | { blockHashes: BigUint64Array | readonly bigint[] } | { text: string };

export interface RouteCandidate {
  worker: string;
  /** Leading prompt blocks this worker holds. */
  overlapBlocks: number;
  /** Blocks of its in-flight requests (started, not finished). */
  load: number;
  /** The policy's score: lower is better. */
  score: number;
}

export interface RouteDecision {
  /** The chosen worker (`candidates[0].worker`). */
  worker: string;
  overlapBlocks: number;
  /** overlapBlocks × blockSize (text prompts: × 128 bytes). */
  overlapTokens: number;
  /** Every worker, best first: a failover order. */
  candidates: RouteCandidate[];
}

export interface KVRouterStats {
  workers: number;
  /** (block, worker) pairs held, summed over workers. */
  indexedBlocks: number;
  /** Distinct blocks held by any worker. */
  uniqueBlocks: number;
  /** Memory of the router's own structures in the wasm heap. */
  bytes: number;
  /** Successful route() calls. */
  routed: number;
  /** Overlap blocks of the chosen workers, summed over route() calls. */
  hitBlocks: number;
}

/** A 64-bit block hash as an engine publishes it: bigint, safe integer, decimal string or bytes. */
export type EngineBlockHash = bigint | number | string | Uint8Array;

/** vLLM's KV events (`vllm.distributed.kv_events`), snake_case as vLLM publishes them. */
export type VllmKVEvent =
  | {
      type: 'BlockStored';
      block_hashes: readonly EngineBlockHash[];
      parent_block_hash: EngineBlockHash | null;
      token_ids: TokenArray;
      block_size: number;
      lora_id?: number | null;
      medium?: string | null;
    }
  | { type: 'BlockRemoved'; block_hashes: readonly EngineBlockHash[]; medium?: string | null }
  | { type: 'AllBlocksCleared' };

/**
 * What {@link KVRouter.applyEvents} accepts: llmds KVCache events, vLLM KV events as objects,
 * or vLLM's msgpack array form (`['BlockStored', hashes, parent, tokens, blockSize, ...]`).
 */
export type RouterEvent = KVEvent | VllmKVEvent | readonly unknown[];

type Normalized =
  | { kind: 'stored'; hashes: BigUint64Array; parent: bigint | null; tokens: Int32Array }
  | { kind: 'removed'; hashes: BigUint64Array }
  | { kind: 'cleared' };

const OPTIONS = ['blockSize', 'policy', 'overlapWeight', 'mode', 'capacityBlocks', 'sglangCacheThreshold',
  'sglangBalanceAbs', 'sglangBalanceRel'] as const;

function choice<T extends string>(value: unknown, name: string, allowed: readonly T[]): number {
  const i = allowed.indexOf(value as T);
  if (i < 0) v.fail(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${v.show(value)}`);
  return i;
}

function createRaw(options: KVRouterOptions | undefined): RawKVRouter {
  const o = v.options(options, 'KVRouter options', OPTIONS);
  const l = routerLimits();
  const blockSize = v.integer(o.blockSize ?? 16, 'blockSize', 1, 0x7fffffff);
  const policy = choice(o.policy ?? 'cache-aware', 'policy', POLICIES);
  const overlapWeight = v.finite(o.overlapWeight ?? 1, 'overlapWeight');
  const mode = choice(o.mode ?? 'approximate', 'mode', MODES);
  const capacity = v.integer(o.capacityBlocks ?? 100000, 'capacityBlocks', 1, l.maxCapacityBlocks);
  const threshold = v.finite(o.sglangCacheThreshold ?? 0.5, 'sglangCacheThreshold');
  const abs = v.finite(o.sglangBalanceAbs ?? 256, 'sglangBalanceAbs');
  const rel = v.finite(o.sglangBalanceRel ?? 1.5, 'sglangBalanceRel');
  const e = engine<KVRouterEngine>();
  return checked(e.RawKVRouter.create(blockSize, policy, overlapWeight, mode, capacity, threshold, abs, rel));
}

function workerId(value: unknown, name = 'worker'): string {
  const id = v.text(value, name);
  if (id.length === 0) v.fail(`${name} must not be empty`);
  return id;
}

/** Hashes as the (low, high) u32 words the engine reads. */
const words = (h: BigUint64Array) => new Uint32Array(h.buffer, h.byteOffset, h.length * 2);

const U64 = 1n << 64n;

/** One engine hash as a u64: negative integers (signed 64-bit hashes) wrap; bytes fold their first 8, little-endian. */
function hash64(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') {
    if (value < -(1n << 63n) || value >= U64) v.fail(`${name} must fit in 64 bits, got ${value}n`);
    return BigInt.asUintN(64, value);
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) v.fail(`${name} must be a safe integer (pass larger hashes as bigint or a decimal string), got ${v.show(value)}`);
    return BigInt.asUintN(64, BigInt(value));
  }
  if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) return hash64(BigInt(value), name);
  if (value instanceof Uint8Array && value.length > 0) {
    let h = 0n;
    for (let i = Math.min(value.length, 8) - 1; i >= 0; i--) h = (h << 8n) | BigInt(value[i]!);
    return h;
  }
  return v.fail(`${name} must be a block hash (bigint, safe integer, decimal string or bytes), got ${v.show(value)}`);
}

function hashList(value: unknown, name: string): BigUint64Array {
  if (value instanceof BigUint64Array) return v.attached(value, name);
  if (!Array.isArray(value)) return v.fail(`${name} must be an array of block hashes, got ${v.show(value)}`);
  const out = new BigUint64Array(value.length);
  for (let i = 0; i < value.length; i++) out[i] = hash64(value[i], `${name}[${i}]`);
  return out;
}

/** The hashes of a route() prompt: bigints only (they come from this library or a router). */
function promptHashes(value: unknown): BigUint64Array {
  if (value instanceof BigUint64Array) return v.attached(value, 'prompt.blockHashes');
  if (!Array.isArray(value)) return v.fail(`prompt.blockHashes must be a BigUint64Array or bigint[], got ${v.show(value)}`);
  const out = new BigUint64Array(value.length);
  value.forEach((h: unknown, i) => {
    if (typeof h !== 'bigint' || h < 0n || h >= U64) v.fail(`prompt.blockHashes[${i}] must be a bigint in [0, 2^64), got ${v.show(h)}`);
    out[i] = h;
  });
  return out;
}

/** vLLM's msgpack array form, positional fields after the tag, as the object form. */
function fromArrayForm(e: readonly unknown[]): Record<string, unknown> {
  const [type, a, b, c, d] = e;
  if (type === 'BlockStored') return { type, block_hashes: a, parent_block_hash: b, token_ids: c, block_size: d };
  if (type === 'BlockRemoved') return { type, block_hashes: a };
  return { type };
}

/**
 * KV-cache-aware routing over a fleet of LLM servers (workers): each request goes where the
 * longest prefix of its prompt is already cached, weighed against load. An index of chained
 * block hashes (the ones {@link KVCache.blockHashes} and KV events carry) → the workers that
 * hold them; one walk of the prompt's blocks finds every worker's overlap.
 *
 * Policies: `'cache-aware'` (NVIDIA Dynamo's cost: overlapWeight × blocks still to prefill +
 * in-flight blocks), `'sglang'` (SGLang's router: the best cache match above a threshold unless
 * the fleet is imbalanced, then the least loaded), `'least-loaded'`, `'round-robin'`; ties by
 * load, then id. Modes: `'approximate'` remembers what it routed (LRU per worker up to its
 * capacityBlocks); `'precise'` mirrors each worker from its KV events ({@link applyEvents}).
 * @example
 * const router = new KVRouter({ blockSize: 16 });
 * for (const url of backends) router.addWorker(url);
 * const { worker } = router.route(promptTokens, { requestId: 'r1' });
 * router.started(worker, 'r1', promptTokens.length);
 * // ... proxy the request to `worker` ...
 * router.finished('r1');
 * @see llmds::KVRouter
 */
export class KVRouter extends Owned<RawKVRouter> {
  readonly #blockSize: number;
  readonly #policy: RoutingPolicy;
  readonly #mode: RoutingMode;
  #sorted: string[] | null = null; // workers(), as the engine's candidate indices refer to it

  constructor(options?: KVRouterOptions) {
    super(adoptOr(options, () => createRaw(options)));
    const o = this.raw.options();
    this.#blockSize = o.blockSize;
    this.#policy = POLICIES[o.policy]!;
    this.#mode = MODES[o.mode]!;
  }

  /**
   * Restores a router from `serialize()` output (`corrupt_data` / `version_mismatch`
   * otherwise). In-flight requests are not saved: every load starts at 0.
   */
  static deserialize(bytes: Uint8Array | ArrayBuffer): KVRouter {
    return new KVRouter(deserializeRaw(bytes, (p, n) => engine<KVRouterEngine>().RawKVRouter.deserialize(p, n)) as never);
  }

  get blockSize(): number {
    this.raw;
    return this.#blockSize;
  }

  get policy(): RoutingPolicy {
    this.raw;
    return this.#policy;
  }

  get mode(): RoutingMode {
    this.raw;
    return this.#mode;
  }

  /**
   * Adds a worker (any non-empty string: a URL, a name). `capacityBlocks`: blocks it keeps in
   * approximate mode (default: the router's). `duplicate_id` if present.
   */
  addWorker(id: string, options?: { capacityBlocks?: number }): void {
    const raw = this.raw;
    const name = workerId(id, 'id');
    const o = v.options(options, 'addWorker options', ['capacityBlocks'] as const);
    const capacity = o.capacityBlocks === undefined ? 0 : v.integer(o.capacityBlocks, 'capacityBlocks', 1, routerLimits().maxCapacityBlocks);
    withHeap(engine(), name, (p, n) => check(raw.addWorker(p, n, capacity)));
    this.#sorted = null;
  }

  /** Removes a worker with its indexed blocks and in-flight requests. `not_found` if unknown. */
  removeWorker(id: string): void {
    const raw = this.raw;
    const name = workerId(id, 'id');
    withHeap(engine(), name, (p, n) => check(raw.removeWorker(p, n)));
    this.#sorted = null;
  }

  /** The worker ids, sorted by their UTF-8 bytes. */
  workers(): string[] {
    return [...this.#workers()];
  }

  hasWorker(id: string): boolean {
    const raw = this.raw;
    const name = workerId(id, 'id');
    return withHeap(engine(), name, (p, n) => raw.hasWorker(p, n));
  }

  /**
   * Chooses a worker for `prompt` (token ids, `{ blockHashes }` or `{ text }`): every worker
   * scored by the policy, best first. In approximate mode a `requestId` records the prompt's
   * blocks as held by the chosen worker. Loads do not change: call {@link started} when the
   * request is dispatched. `not_found` when there are no workers.
   */
  route(prompt: RoutePrompt, options?: { requestId?: string }): RouteDecision {
    const raw = this.raw;
    const o = v.options(options, 'route options', ['requestId'] as const);
    const request = o.requestId === undefined ? '' : workerId(o.requestId, 'requestId');
    const e = engine();
    const [input, call] = this.#promptCall(raw, prompt);
    if (request === '') {
      withHeap(e, input, (p, n) => check(call(p, n, 0, 0)));
    } else {
      withHeapAll(e, [input, request], ([p, q], [n, qn]) => check(call(p!, n!, q!, qn!)));
    }
    return this.#decision();
  }

  #promptCall(raw: RawKVRouter, prompt: RoutePrompt): [Int32Array | Uint32Array | string, (p: number, n: number, q: number, qn: number) => number] {
    if (prompt !== null && typeof prompt === 'object' && !Array.isArray(prompt) && !ArrayBuffer.isView(prompt)) {
      const o = v.options(prompt, 'prompt', ['blockHashes', 'text'] as const);
      if (o.text !== undefined && o.blockHashes === undefined) return [v.text(o.text, 'prompt.text'), raw.routeText.bind(raw)];
      if (o.blockHashes !== undefined && o.text === undefined) {
        const hashes = words(promptHashes(o.blockHashes));
        // withHeap reports elements: two words per hash.
        return [hashes, (p, n, q, qn) => raw.route(p, n / 2, q, qn)];
      }
      v.fail('prompt must have exactly one of blockHashes or text');
    }
    return [v.tokens(prompt, 'prompt', 'token id', true), raw.routeTokens.bind(raw)];
  }

  #workers(): string[] {
    return (this.#sorted ??= this.raw.workers());
  }

  #decision(): RouteDecision {
    const names = this.#workers();
    const heap = engine().HEAPF64; // after the call: it may have grown the memory
    const at = this.raw.resultAddress() >>> 3;
    const count = heap[at + 2]!;
    const candidates: RouteCandidate[] = new Array(count);
    for (let i = 0, c = at + 3; i < count; i++, c += 4) {
      candidates[i] = { worker: names[heap[c]!]!, overlapBlocks: heap[c + 1]!, load: heap[c + 2]!, score: heap[c + 3]! };
    }
    return { worker: candidates[0]!.worker, overlapBlocks: heap[at]!, overlapTokens: heap[at + 1]!, candidates };
  }

  /**
   * Request `requestId` runs on `worker` with a `promptTokens`-token prompt: its blocks count
   * in the worker's load until {@link finished}. `not_found` for an unknown worker,
   * `duplicate_id` for a request already in flight.
   */
  started(worker: string, requestId: string, promptTokens: number): void {
    const raw = this.raw;
    const w = workerId(worker);
    const r = workerId(requestId, 'requestId');
    const tokens = v.id(promptTokens, 'promptTokens');
    withHeapAll(engine(), [w, r], ([p, q], [n, qn]) => check(raw.started(p!, n!, q!, qn!, tokens)));
  }

  /** The request is done: its blocks leave its worker's load. `not_found` if not in flight. */
  finished(requestId: string): void {
    const raw = this.raw;
    const r = workerId(requestId, 'requestId');
    withHeap(engine(), r, (p, n) => check(raw.finished(p, n)));
  }

  /** The worker's load: blocks of its in-flight requests. */
  load(worker: string): number {
    const raw = this.raw;
    const w = workerId(worker);
    return withHeap(engine(), w, (p, n) => check(raw.load(p, n)));
  }

  /** Blocks the index holds for the worker. */
  workerBlocks(worker: string): number {
    const raw = this.raw;
    const w = workerId(worker);
    return withHeap(engine(), w, (p, n) => check(raw.workerBlocks(p, n)));
  }

  /**
   * Precise mode: mirrors `worker`'s KV events, in order — llmds {@link KVCache.drainEvents}
   * output, vLLM's events (`BlockStored { block_hashes, parent_block_hash, token_ids,
   * block_size }`, `BlockRemoved { block_hashes }`, `AllBlocksCleared`) as objects or in
   * msgpack array form, or a vLLM batch `{ events }`. Stored blocks are re-hashed from their
   * token ids; engine hashes only name them for later removal. A malformed batch (types,
   * another block size, token counts) is rejected before any event is applied; an event that
   * does not chain onto what the worker holds (unknown parent, a hash reused for other
   * tokens) is rejected with its index, after the events before it were applied.
   */
  applyEvents(worker: string, events: readonly RouterEvent[] | { events: readonly RouterEvent[] }): void {
    const raw = this.raw;
    const w = workerId(worker);
    if (this.#mode !== 'precise') v.fail(`KVRouter.applyEvents needs mode 'precise' (this router is ${this.#mode})`);
    const list = Array.isArray(events) ? events : (events as { events?: unknown } | null)?.events;
    if (!Array.isArray(list)) v.fail(`events must be an array of KV events or a batch { events }, got ${v.show(events)}`);
    const normalized = list.map((e: unknown, i: number) => this.#normalize(e, `events[${i}]`));
    const e = engine();
    withHeap(e, w, (p, n) => check(raw.load(p, n))); // an unknown worker is not_found before any event
    normalized.forEach((event, i) => {
      try {
        if (event.kind === 'cleared') {
          withHeap(e, w, (p, n) => check(raw.applyCleared(p, n)));
        } else if (event.kind === 'removed') {
          withHeapAll(e, [w, words(event.hashes)], ([p, h], [n]) => check(raw.applyRemoved(p!, n!, h!, event.hashes.length)));
        } else {
          const parent = event.parent ?? 0n;
          withHeapAll(e, [w, words(event.hashes), event.tokens], ([p, h, t], [n, , tn]) =>
            check(raw.applyStored(p!, n!, h!, event.hashes.length, event.parent !== null, Number(parent & 0xffffffffn),
              Number(parent >> 32n), t!, tn!, this.#blockSize)));
        }
      } catch (err) {
        if (!(err instanceof LlmdsError) || list.length === 1) throw err;
        throw new LlmdsError(err.code, `events[${i}] (${i} applied before it): ${err.message}`, { cause: err });
      }
    });
  }

  #normalize(value: unknown, name: string): Normalized {
    const e = (Array.isArray(value) && typeof value[0] === 'string' ? fromArrayForm(value) : value) as Record<string, unknown> | null;
    if (e === null || typeof e !== 'object') return v.fail(`${name} must be a KV event object, got ${v.show(value)}`);
    switch (e['type']) {
      case 'cleared':
      case 'AllBlocksCleared':
        return { kind: 'cleared' };
      case 'removed':
        return { kind: 'removed', hashes: hashList(e['blockHashes'], `${name}.blockHashes`) };
      case 'BlockRemoved':
        return { kind: 'removed', hashes: hashList(e['block_hashes'], `${name}.block_hashes`) };
      case 'stored':
        return this.#stored(name, hashList(e['blockHashes'], `${name}.blockHashes`), e['parentHash'], `${name}.parentHash`,
          v.tokens(e['tokens'], `${name}.tokens`), e['pageSize'], `${name}.pageSize`);
      case 'BlockStored':
        return this.#stored(name, hashList(e['block_hashes'], `${name}.block_hashes`), e['parent_block_hash'],
          `${name}.parent_block_hash`, v.tokens(e['token_ids'], `${name}.token_ids`), e['block_size'], `${name}.block_size`);
      default:
        return v.fail(`${name}.type must be 'stored', 'removed', 'cleared', 'BlockStored', 'BlockRemoved' or 'AllBlocksCleared', got ${v.show(e['type'])}`);
    }
  }

  #stored(name: string, hashes: BigUint64Array, parent: unknown, parentName: string, tokens: Int32Array, blockSize: unknown,
    sizeName: string): Normalized {
    if (blockSize !== this.#blockSize) v.fail(`${sizeName} is ${v.show(blockSize)}, the router's blockSize is ${this.#blockSize}`);
    if (tokens.length !== hashes.length * this.#blockSize) {
      v.fail(`${name} has ${tokens.length} token ids for ${hashes.length} blocks of ${this.#blockSize}`);
    }
    return { kind: 'stored', hashes, parent: parent === null || parent === undefined ? null : hash64(parent, parentName), tokens };
  }

  /** Versioned, checksummed snapshot: options, workers, their blocks (LRU order) and counters; not loads. */
  serialize(): Uint8Array {
    return this.raw.serialize();
  }

  stats(): KVRouterStats {
    return this.raw.stats();
  }
}
