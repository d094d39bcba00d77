// SPDX-License-Identifier: MIT
// A stand-in for a vLLM server, for the gateway demo and its tests: OpenAI-compatible
// /v1/completions and /v1/chat/completions (streaming or not) whose latency follows what a real
// server's would: prefill time for the prompt tokens its prefix cache does not hold, then decode
// time per output token. The prefix cache is an llmds KVCache (pages of 16 tokens, LRU retention
// of finished prompts); tokens are UTF-8 bytes (tokenizer.mjs) or the prompt's token ids.
//
// Responses report the cached prompt tokens as vLLM does, in usage.prompt_tokens_details.
// cached_tokens (non-streaming, and the last chunk of a stream), and in an x-cached-tokens header.
// The output is deterministic filler text, one token per `decodeMs`.
//
// With `gateway`, the backend publishes its KV events to `${gateway}/kv-events` in vLLM's shape
// (BlockStored / BlockRemoved / AllBlocksCleared, snake_case, hashes as decimal strings) before
// it answers, so a gateway in precise mode knows a prompt's blocks by the time its answer ends.
//
//   node demo/gateway/fake-backend.mjs --port 8001 [--gateway http://127.0.0.1:8787] [--id NAME]
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { init, KVCache } from 'llmds';
import { promptOf, tokenize } from './tokenizer.mjs';

/** llmds KVCache events → vLLM KV events (the snake_case JSON vLLM's publisher emits). */
export function toVllmEvents(events) {
  return events.map((e) => {
    if (e.type === 'stored') {
      return {
        type: 'BlockStored',
        block_hashes: Array.from(e.blockHashes, String),
        parent_block_hash: e.parentHash === null ? null : String(e.parentHash),
        token_ids: Array.from(e.tokens),
        block_size: e.pageSize,
      };
    }
    if (e.type === 'removed') return { type: 'BlockRemoved', block_hashes: Array.from(e.blockHashes, String) };
    return { type: 'AllBlocksCleared' };
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a fake backend on 127.0.0.1.
 * @returns {Promise<{ url: string, id: string, requests: object[], close(): Promise<void> }>}
 *   `requests` logs every completion: { promptTokens, cachedTokens, stream }
 */
export async function startFakeBackend({ port = 0, id, gateway, model = 'fake-model', pageSize = 16, maxPages = 4096, prefillMs = 0.02, decodeMs = 2, log = console } = {}) {
  await init();
  const cache = new KVCache({ pageSize, maxPages, events: true });
  const requests = [];
  let nextSeq = 1;
  let url;
  let publishing = Promise.resolve();

  /** Sends the drained events to the gateway, in order (one post at a time). */
  const publish = () => {
    publishing = publishing.then(async () => {
      const events = cache.drainEvents();
      if (!gateway || events.length === 0) return;
      try {
        const r = await fetch(`${gateway}/kv-events`, {
          method: 'POST',
          // x-llmds-model: the Cloudflare gateway keeps one router per model.
          headers: { 'content-type': 'application/json', 'x-llmds-model': model },
          body: JSON.stringify({ worker: id ?? url, events: toVllmEvents(events) }),
        });
        if (!r.ok) log.warn?.(`fake backend ${url}: gateway refused events: ${r.status} ${await r.text()}`);
      } catch (e) {
        log.warn?.(`fake backend ${url}: could not publish events: ${e.message}`);
      }
    });
    return publishing;
  };

  async function completion(req, res, chat) {
    let body = '';
    for await (const chunk of req) body += chunk;
    let parsed;
    let prompt;
    try {
      parsed = JSON.parse(body);
      prompt = promptOf(parsed, chat);
    } catch (e) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: e.message } }));
      return;
    }
    const tokens = prompt.tokens ?? tokenize(prompt.text);
    const maxTokens = Number.isInteger(parsed.max_tokens) && parsed.max_tokens > 0 ? parsed.max_tokens : 16;
    const seq = nextSeq++;
    const plan = cache.attach(seq, tokens); // the prefix cache: cachedTokens skip prefill
    const record = { promptTokens: tokens.length, cachedTokens: plan.cachedTokens, stream: !!parsed.stream, requestId: req.headers['x-request-id'] ?? null };
    requests.push(record);
    await publish();
    const usage = {
      prompt_tokens: tokens.length,
      completion_tokens: maxTokens,
      total_tokens: tokens.length + maxTokens,
      prompt_tokens_details: { cached_tokens: plan.cachedTokens },
    };
    const created = Math.floor(Date.now() / 1000);
    const rid = `cmpl-${seq}`;
    const word = (i) => ` tok${i}`;
    const headers = { 'x-cached-tokens': String(plan.cachedTokens), 'x-prompt-tokens': String(tokens.length), 'x-backend': id ?? url };
    let closed = false;
    res.on('close', () => (closed = true));
    try {
      await sleep((tokens.length - plan.cachedTokens) * prefillMs);
      if (parsed.stream) {
        res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        for (let i = 0; i < maxTokens && !closed; i++) {
          const last = i === maxTokens - 1;
          const choice = chat
            ? { index: 0, delta: i === 0 ? { role: 'assistant', content: word(i) } : { content: word(i) }, finish_reason: last ? 'length' : null }
            : { index: 0, text: word(i), finish_reason: last ? 'length' : null };
          const chunk = { id: rid, object: chat ? 'chat.completion.chunk' : 'text_completion', created, model: parsed.model ?? model, choices: [choice] };
          if (last) chunk.usage = usage;
          res.write(`data: ${JSON.stringify(chunk)}\n\n`);
          await sleep(decodeMs);
        }
        if (!closed) res.end('data: [DONE]\n\n');
      } else {
        await sleep(maxTokens * decodeMs);
        const text = Array.from({ length: maxTokens }, (_, i) => word(i)).join('');
        const choice = chat
          ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'length' }
          : { index: 0, text, finish_reason: 'length' };
        const answer = { id: rid, object: chat ? 'chat.completion' : 'text_completion', created, model: parsed.model ?? model, choices: [choice], usage };
        res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(answer));
      }
    } finally {
      cache.detach(seq); // the prompt's pages stay cached (LRU) for the next request sharing it
      publish();
    }
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method === 'POST' && (path === '/v1/completions' || path === '/v1/chat/completions')) {
      completion(req, res, path === '/v1/chat/completions').catch((e) => {
        log.error?.(e);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    } else if (req.method === 'GET' && path === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requests, cache: cache.stats() }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    id: id ?? url,
    requests,
    cache,
    /** Waits for the events still being published. */
    flush: () => publishing,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(() => {
          cache.dispose();
          r();
        });
      }),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '8001' }, gateway: { type: 'string' }, id: { type: 'string' }, 'prefill-ms': { type: 'string' }, 'decode-ms': { type: 'string' } },
  });
  const b = await startFakeBackend({
    port: Number(values.port),
    gateway: values.gateway,
    id: values.id,
    prefillMs: values['prefill-ms'] === undefined ? 0.02 : Number(values['prefill-ms']),
    decodeMs: values['decode-ms'] === undefined ? 2 : Number(values['decode-ms']),
  });
  console.log(`fake backend ${b.id} listening on ${b.url}`);
}
