// SPDX-License-Identifier: MIT
// Shared by the gateway tests (Node, Deno, workerd): requests, streams and waits against a
// gateway from demo/gateway, and the fake backends it routes to.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startFakeBackend } from '../../demo/gateway/fake-backend.mjs';

/** A long shared prefix (a system prompt of ~1.2 KB: nine 128-byte text blocks, 75 token blocks). */
export const SYSTEM = 'You are a careful assistant for the llmds project. Answer briefly and cite the source file. '.repeat(13);

export const quiet = { info() {}, warn() {}, error() {} };

export const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** A port nothing listens on (for failover tests). */
export const deadUrl = async () => `http://127.0.0.1:${await freePort()}`;

export const startBackends = (n, options = {}) => Promise.all(Array.from({ length: n }, () => startFakeBackend({ log: quiet, ...options })));

/** POST /v1/completions, the whole answer: { status, worker, overlap, cached, body }. */
export async function complete(base, prompt, extra = {}) {
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fake-model', prompt, max_tokens: 2, ...extra }),
  });
  const body = await r.json();
  return {
    status: r.status,
    worker: r.headers.get('x-llmds-worker'),
    overlap: Number(r.headers.get('x-llmds-overlap-tokens')),
    cached: Number(r.headers.get('x-cached-tokens')),
    body,
  };
}

/** POST /v1/chat/completions, the whole answer. */
export async function chat(base, messages, extra = {}) {
  const r = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fake-model', messages, max_tokens: 2, ...extra }),
  });
  return { status: r.status, worker: r.headers.get('x-llmds-worker'), cached: Number(r.headers.get('x-cached-tokens')), body: await r.json() };
}

export const stats = async (base, query = '') => (await fetch(`${base}/stats${query}`)).json();
export const post = (url, body) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/**
 * A streamed completion (max_tokens chunks, `decodeMs` apart at the backend): asserts the first
 * chunk arrived well before the end (passed through, not buffered) and the SSE ended with
 * [DONE]; returns the worker and what /stats said while the stream was open.
 */
export async function assertStreams(base, prompt, { maxTokens = 8, minSpreadMs = 60, statsQuery = '' } = {}) {
  const t0 = Date.now();
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fake-model', prompt, max_tokens: maxTokens, stream: true }),
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let first;
  let during;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (first === undefined && text.includes('data: {')) {
      first = Date.now() - t0;
      during = await stats(base, statsQuery); // the request is still in flight here
    }
  }
  const end = Date.now() - t0;
  assert.ok(first !== undefined, 'no SSE chunk');
  assert.ok(end - first >= minSpreadMs, `the first chunk came at ${first} ms and the end at ${end} ms: buffered?`);
  const events = text.split('\n\n').filter(Boolean);
  assert.equal(events.length, maxTokens + 1);
  assert.equal(events.at(-1), 'data: [DONE]');
  const last = JSON.parse(events.at(-2).slice('data: '.length));
  assert.equal(last.choices[0].finish_reason, 'length');
  return { worker: r.headers.get('x-llmds-worker'), during, last };
}

/** Polls `probe` until it returns a truthy value (or fails after `ms`). */
export async function eventually(probe, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The backend entry of /stats for `id`. */
export const backendStats = (s, id) => s.backends.find((b) => b.id === id);
