// SPDX-License-Identifier: MIT
// The KV-aware gateway (gateway.mjs) on Cloudflare Workers: the Worker forwards each request to
// one Durable Object per model (`env.ROUTER.idFromName(model)`), which holds that model's
// KVRouter, so every request for a model sees one index however many Worker isolates run.
//
// The Durable Object restores its router from storage when it starts and snapshots it on an
// alarm, `SNAPSHOT_MS` after the first change since the last snapshot. A snapshot is one
// serialize() of the whole router written in one atomic put: a restart loses at most what was
// routed since, never mixes two states. A snapshot that does not load (corrupt bytes, or from an
// incompatible llmds version) is logged and ignored: the object starts empty and routes anyway.
//
// Configuration (wrangler.toml [vars], or workerd bindings):
//   BACKENDS        JSON array of backend URLs or { id, url, capacityBlocks } (all models)
//   ROUTER_OPTIONS  JSON KVRouter options, e.g. { "mode": "precise", "policy": "sglang" }
//   SNAPSHOT_CHUNK_BYTES  storage value size for snapshot chunks (default 128 KiB)
//   SNAPSHOT_MS     snapshot delay after a change (default 5000: well under the idle time after
//                   which an object may be evicted, which loses what was not snapshotted)
// The model comes from the request body (`model`), or for the other endpoints from `?model=` or
// an `x-llmds-model` header; default "default". Precise mode routes by token ids: clients send
// `prompt` as token ids, or the gateway uses tokenizer.mjs (the fake backends' byte tokenizer).
import { init, KVRouter } from 'llmds';
import { createGateway, parseBackends } from './gateway.mjs';
import { tokenize } from './tokenizer.mjs';

const ready = init();
// Storage values are at most 128 KiB on key-value Durable Objects (2 MiB on SQLite ones): a
// larger snapshot is split over keys snapshot/0, snapshot/1, ... written in the same put (at
// most 128 keys per put: snapshots up to 16 MiB, about 2 million indexed blocks).
const CHUNK = 128 * 1024;

const parseJson = (v, fallback) => (v === undefined || v === null || v === '' ? fallback : typeof v === 'string' ? JSON.parse(v) : v);

async function modelOf(request) {
  const url = new URL(request.url);
  if (request.method === 'POST' && url.pathname.startsWith('/v1/')) {
    try {
      const { model } = await request.clone().json();
      if (typeof model === 'string' && model) return model;
    } catch {
      // a malformed body: the gateway answers 400
    }
  }
  return url.searchParams.get('model') ?? request.headers.get('x-llmds-model') ?? 'default';
}

export default {
  async fetch(request, env) {
    const model = await modelOf(request);
    return env.ROUTER.get(env.ROUTER.idFromName(model)).fetch(request);
  },
};

/** Reads the snapshot bytes: one value, or chunks named by a { chunks } header value. */
async function readSnapshot(storage) {
  const head = await storage.get('snapshot');
  if (head === undefined) return undefined;
  if (head instanceof Uint8Array || head instanceof ArrayBuffer) return new Uint8Array(head);
  if (!head || !Number.isInteger(head.chunks) || !Number.isInteger(head.length)) throw Object.assign(new Error('snapshot header'), { code: 'corrupt_data' });
  const keys = Array.from({ length: head.chunks }, (_, i) => `snapshot/${i}`);
  const parts = await storage.get(keys);
  const bytes = new Uint8Array(head.length);
  let at = 0;
  for (const k of keys) {
    const part = parts.get(k);
    if (!(part instanceof Uint8Array) || at + part.length > bytes.length) throw Object.assign(new Error('snapshot chunk'), { code: 'corrupt_data' });
    bytes.set(part, at);
    at += part.length;
  }
  if (at !== bytes.length) throw Object.assign(new Error('snapshot length'), { code: 'corrupt_data' });
  return bytes;
}

function snapshotEntries(bytes, chunk) {
  if (bytes.length <= chunk) return { snapshot: bytes };
  const entries = { snapshot: { chunks: Math.ceil(bytes.length / chunk), length: bytes.length } };
  for (let i = 0; i * chunk < bytes.length; i++) entries[`snapshot/${i}`] = bytes.slice(i * chunk, (i + 1) * chunk);
  return entries;
}

/** One model's router: the Durable Object class bound as ROUTER. */
export class GatewayRouter {
  constructor(state, env) {
    this.state = state;
    this.env = env;
    this.dirty = false;
    this.saves = 0;
    this.snapshotMs = Number(env.SNAPSHOT_MS ?? 5000);
    this.chunk = Number(env.SNAPSHOT_CHUNK_BYTES ?? CHUNK); // smaller in tests, to exercise chunking
    this.chunks = 0;
    state.blockConcurrencyWhile(async () => {
      await ready;
      const options = parseJson(env.ROUTER_OPTIONS, {});
      let router;
      this.restored = 'none';
      try {
        const bytes = await readSnapshot(state.storage);
        if (bytes) {
          router = KVRouter.deserialize(bytes);
          this.restored = 'snapshot';
          if (router.mode !== (options.mode ?? 'approximate') || router.blockSize !== (options.blockSize ?? 16)) {
            // ROUTER_OPTIONS changed: a snapshot of another configuration would route by the wrong index.
            console.error(`llmds gateway: snapshot is a ${router.mode} router with ${router.blockSize}-token blocks; starting empty`);
            router.dispose();
            router = undefined;
            this.restored = 'options_mismatch';
          }
        }
      } catch (e) {
        console.error(`llmds gateway: snapshot not restored (${e.code ?? e.message}); starting empty`);
        this.restored = e.code ?? 'error';
      }
      this.router = router ?? new KVRouter(options);
      this.gateway = createGateway({
        router: this.router,
        backends: parseBackends(env.BACKENDS),
        tokenize: options.mode === 'precise' ? tokenize : undefined,
        onChange: () => this.changed(),
        extraStats: () => ({ snapshot: { restored: this.restored, dirty: this.dirty, saves: this.saves, chunks: this.chunks } }),
      });
    });
  }

  fetch(request) {
    return this.gateway.handle(request);
  }

  /** The index changed: snapshot it after SNAPSHOT_MS (one alarm per batch of changes). */
  changed() {
    if (this.dirty) return;
    this.dirty = true;
    this.state.storage.setAlarm(Date.now() + this.snapshotMs).catch((e) => console.error(`llmds gateway: setAlarm: ${e.message}`));
  }

  async alarm() {
    if (!this.dirty) return;
    this.dirty = false; // changes from here on set a new alarm
    try {
      const entries = snapshotEntries(this.router.serialize(), this.chunk);
      await this.state.storage.put(entries);
      this.chunks = Object.keys(entries).length - 1;
    } catch (e) {
      this.dirty = true; // the runtime retries a failed alarm
      throw e;
    }
    this.saves++;
  }
}
