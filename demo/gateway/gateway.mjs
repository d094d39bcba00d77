// SPDX-License-Identifier: MIT
// A KV-aware gateway in front of OpenAI-compatible LLM servers (vLLM, SGLang, ...), written
// against web-standard Request/Response/fetch only, so Cloudflare Workers (cloudflare-worker.mjs),
// Node (node.mjs) and Deno (deno.ts) all run this one file.
//
// Each completion is routed by an llmds KVRouter to the backend most likely to hold its prompt's
// KV blocks (and least loaded), proxied there, and streamed back unchanged.
//
//   POST /v1/completions          { prompt: string | number[], stream?, ... }   proxied
//   POST /v1/chat/completions     { messages, stream?, ... }                     proxied
//   POST /kv-events               { worker, events }    precise mode: a backend's KV events
//   GET  /stats                   router and per-backend state
//   GET  /workers                 the backends
//   POST /workers                 { url, id?, capacityBlocks? }   adds a backend
//   DELETE /workers/:id           removes a backend (id URL-encoded)
//
// Routing key: a prompt sent as token ids is routed by them; otherwise by the prompt text
// (KVRouter text mode: 128-byte chunks), unless the gateway was given `tokenize` (required for
// precise mode, where the router re-hashes the token ids of the backends' events: the gateway
// must see the same ids, hence the same tokenizer, as the backends).
//
// Backend ids are their URLs unless configured otherwise, so a router restored from a snapshot
// knows where to send requests even for backends added at run time.
//
// Failover: a backend whose connection fails is marked down for `retryMs` and the request is
// routed again among the others. In approximate mode the down backend also leaves the router
// (its recorded blocks with it: a backend that went away has likely lost its cache; it rejoins
// empty); in precise mode it stays (its own events say what it holds) and is only skipped.
import { LlmdsError } from 'llmds';
import { promptOf } from './tokenizer.mjs';

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding', 'upgrade'];
const TEXT_CHUNK = 128; // bytes per block in KVRouter text mode

/** JSON with bigints as numbers (router stats are counters). */
const json = (value, status = 200, headers = {}) =>
  new Response(JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? Number(v) : v)), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
const failure = (status, code, message) => json({ error: { code, message: message ?? code } }, status);

/** `{ id, url, capacityBlocks? }` from a URL string or such an object (id defaults to the URL). */
export function backendOf(b) {
  const spec = typeof b === 'string' ? { url: b } : b;
  if (!spec || typeof spec.url !== 'string' || !/^https?:\/\//.test(spec.url)) throw new TypeError(`a backend needs an http(s) url: ${JSON.stringify(b)}`);
  const url = spec.url.replace(/\/+$/, '');
  return { id: typeof spec.id === 'string' && spec.id ? spec.id : url, url, capacityBlocks: spec.capacityBlocks };
}

/** Backends from configuration: a JSON string or an already parsed array (of URLs or objects). */
export function parseBackends(config) {
  if (config === undefined || config === null || config === '') return [];
  const list = typeof config === 'string' ? JSON.parse(config) : config;
  if (!Array.isArray(list)) throw new TypeError('backends must be a JSON array of URLs or { id, url } objects');
  return list.map(backendOf);
}

/**
 * Wraps a body so `done` runs exactly once when it ends, fails or is cancelled by the consumer.
 * Pull-based with no queue of its own: a chunk is read from upstream only when the consumer asks.
 */
function onSettled(body, done) {
  const reader = body.getReader();
  let settled = false;
  const settle = () => {
    if (!settled) {
      settled = true;
      done();
    }
  };
  return new ReadableStream(
    {
      async pull(controller) {
        try {
          const { value, done: end } = await reader.read();
          if (end) {
            settle();
            controller.close();
          } else {
            controller.enqueue(value);
          }
        } catch (e) {
          settle();
          controller.error(e);
        }
      },
      cancel(reason) {
        settle();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * @param {object} o
 * @param {import('llmds').KVRouter} o.router the index; the gateway adds the configured backends
 *   it does not hold yet (a restored router already does)
 * @param {Array<string | { id?: string, url: string, capacityBlocks?: number }>} [o.backends]
 * @param {typeof fetch} [o.fetch] how to reach backends
 * @param {() => number} [o.now] milliseconds, for the down-backend timeouts
 * @param {(text: string) => Int32Array} [o.tokenize] route text prompts by these token ids
 *   (precise mode needs the backends' tokenizer here); default: text mode
 * @param {number} [o.retryMs] how long a backend whose connection failed is skipped
 * @param {() => void} [o.onChange] called after every change of the router's index or workers
 *   (what a snapshot would save)
 * @param {() => object} [o.extraStats] merged into GET /stats
 */
export function createGateway({ router, backends = [], fetch: fetchFn = (...a) => fetch(...a), now = () => Date.now(), tokenize, retryMs = 5000, onChange = () => {}, extraStats = () => ({}), log = console }) {
  const precise = router.mode === 'precise';
  const blockSize = router.blockSize;
  if (precise && !tokenize) {
    // The router hashes the token ids of the backends' events: text prompts would never match.
    log.warn?.('llmds gateway: precise mode without `tokenize` routes only prompts sent as token ids by cache');
  }
  /** id → { url } for every backend the gateway may route to. */
  const known = new Map();
  /** id → time (now()) until which the backend is skipped after a connection error. */
  const down = new Map();
  /** requestId → { worker } for the requests in flight (the router keeps their blocks as load). */
  const inflight = new Map();
  let sequence = 0;
  const prefix = globalThis.crypto?.randomUUID?.().slice(0, 8) ?? String(now());

  const add = (b) => {
    known.set(b.id, { url: b.url });
    if (!router.hasWorker(b.id)) {
      router.addWorker(b.id, b.capacityBlocks === undefined ? {} : { capacityBlocks: b.capacityBlocks });
      onChange();
    }
  };
  for (const b of backends) add(backendOf(b));
  // A restored router may hold backends added at run time: their ids are URLs.
  for (const id of router.workers()) if (!known.has(id) && /^https?:\/\//.test(id)) known.set(id, { url: id });

  const urlOf = (id) => known.get(id)?.url;

  function markDown(id) {
    down.set(id, now() + retryMs);
    if (!precise && router.hasWorker(id)) {
      router.removeWorker(id);
      onChange();
    }
  }
  function reviveDue() {
    for (const [id, until] of down) {
      if (until > now()) continue;
      down.delete(id);
      if (!precise && known.has(id) && !router.hasWorker(id)) {
        router.addWorker(id);
        onChange();
      }
    }
  }

  async function complete(request, path) {
    let body;
    let prompt;
    try {
      body = await request.json();
      prompt = promptOf(body, path === '/v1/chat/completions');
    } catch (e) {
      return failure(400, 'invalid_request', String(e.message ?? e));
    }
    let key;
    let promptTokens;
    if (prompt.tokens) {
      key = prompt.tokens;
      promptTokens = key.length;
    } else if (tokenize) {
      key = tokenize(prompt.text);
      promptTokens = key.length;
    } else {
      key = { text: prompt.text };
      // Text mode counts 128-byte chunks as blocks: charge the load in the same unit.
      promptTokens = Math.ceil(new TextEncoder().encode(prompt.text).length / TEXT_CHUNK) * blockSize;
    }
    const requestId = `${prefix}-${++sequence}`;
    const payload = JSON.stringify(body);
    reviveDue();
    for (;;) {
      let decision;
      try {
        decision = router.route(key, { requestId });
      } catch (e) {
        if (e instanceof LlmdsError && e.code === 'not_found') return failure(503, 'no_backend', 'no backend is available');
        throw e;
      }
      if (!precise) onChange(); // approximate mode recorded the prompt on the chosen worker
      const choice = decision.candidates.find((c) => !down.has(c.worker) && urlOf(c.worker));
      if (!choice) return failure(502, 'no_backend', 'every backend is down');
      const worker = choice.worker;
      router.started(worker, requestId, promptTokens);
      inflight.set(requestId, { worker });
      let upstream;
      try {
        upstream = await fetchFn(`${urlOf(worker)}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...(request.headers.get('authorization') ? { authorization: request.headers.get('authorization') } : {}) },
          body: payload,
        });
      } catch (e) {
        log.warn?.(`llmds gateway: ${worker} unreachable (${e.message ?? e}), failing over`);
        finish(requestId);
        markDown(worker);
        continue; // route again among the others
      }
      const headers = new Headers(upstream.headers);
      for (const h of HOP_BY_HOP) headers.delete(h);
      headers.set('x-llmds-worker', worker);
      headers.set('x-llmds-overlap-tokens', String(worker === decision.worker ? decision.overlapTokens : overlapTokensOf(choice, key)));
      headers.set('x-llmds-request-id', requestId);
      const out = upstream.body ? onSettled(upstream.body, () => finish(requestId)) : (finish(requestId), null);
      return new Response(out, { status: upstream.status, statusText: upstream.statusText, headers });
    }
  }

  /** A candidate's overlap in tokens (bytes in text mode), as route() counts it for the chosen one. */
  const overlapTokensOf = (c, key) => c.overlapBlocks * (key.text === undefined ? blockSize : TEXT_CHUNK);

  function finish(requestId) {
    if (!inflight.delete(requestId)) return;
    try {
      router.finished(requestId);
    } catch (e) {
      // not_found: the worker left the router (removed by an admin) with the request in flight.
      if (!(e instanceof LlmdsError && e.code === 'not_found')) throw e;
    }
  }

  async function kvEvents(request) {
    let body;
    try {
      body = await request.json();
    } catch {
      return failure(400, 'invalid_request', 'the body must be JSON { worker, events }');
    }
    const { worker, events } = body ?? {};
    if (typeof worker !== 'string' || !Array.isArray(events)) return failure(400, 'invalid_argument', 'expected { worker: string, events: array }');
    if (!router.hasWorker(worker)) return failure(404, 'not_found', `unknown worker ${worker}`);
    try {
      // A malformed batch changes nothing; an event that does not chain onto what the worker
      // holds fails after the events before it were applied (the message names its index).
      router.applyEvents(worker, events);
    } catch (e) {
      if (e instanceof LlmdsError) return failure(400, e.code, e.message);
      throw e;
    }
    if (events.length) onChange();
    return json({ applied: events.length });
  }

  function stats() {
    const loads = new Map();
    for (const { worker } of inflight.values()) loads.set(worker, (loads.get(worker) ?? 0) + 1);
    const ids = [...new Set([...router.workers(), ...known.keys()])].sort();
    return {
      mode: precise ? 'precise' : tokenize ? 'approximate (token ids)' : 'approximate (text)',
      router: router.stats(),
      inflight: inflight.size,
      backends: ids.map((id) => ({
        id,
        url: urlOf(id) ?? null,
        inRouter: router.hasWorker(id),
        down: down.has(id),
        inflight: loads.get(id) ?? 0,
        // The router's own view: blocks of in-flight prompts, and blocks it indexes for the backend.
        load: router.hasWorker(id) && router.load ? Number(router.load(id)) : 0,
        blocks: router.hasWorker(id) && router.workerBlocks ? Number(router.workerBlocks(id)) : null,
      })),
      ...extraStats(),
    };
  }

  async function addBackend(request) {
    let b;
    try {
      b = backendOf(await request.json());
      if (router.hasWorker(b.id)) return failure(409, 'duplicate_id', `${b.id} is already a backend`);
      add(b);
    } catch (e) {
      if (e instanceof LlmdsError) return failure(400, e.code, e.message);
      return failure(400, 'invalid_request', String(e.message ?? e));
    }
    return json({ id: b.id, url: b.url }, 201);
  }

  function removeBackend(id) {
    const present = router.hasWorker(id) || known.has(id);
    if (!present) return failure(404, 'not_found', `unknown worker ${id}`);
    if (router.hasWorker(id)) router.removeWorker(id);
    known.delete(id);
    down.delete(id);
    for (const [rid, r] of inflight) if (r.worker === id) inflight.delete(rid);
    onChange();
    return new Response(null, { status: 204 });
  }

  /** Handles one request; never throws for bad input (4xx), only for bugs (500 by the host). */
  async function handle(request) {
    const { pathname } = new URL(request.url);
    const m = request.method;
    if (m === 'POST' && (pathname === '/v1/completions' || pathname === '/v1/chat/completions')) return complete(request, pathname);
    if (m === 'POST' && pathname === '/kv-events') return kvEvents(request);
    if (m === 'GET' && pathname === '/stats') return json(stats());
    if (m === 'GET' && pathname === '/workers') return json(router.workers().map((id) => ({ id, url: urlOf(id) ?? null })));
    if (m === 'POST' && pathname === '/workers') return addBackend(request);
    if (m === 'DELETE' && pathname.startsWith('/workers/')) return removeBackend(decodeURIComponent(pathname.slice('/workers/'.length)));
    return failure(404, 'not_found', `no route for ${m} ${pathname}`);
  }

  return { handle, stats, router };
}
