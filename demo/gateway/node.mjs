// SPDX-License-Identifier: MIT
// The KV-aware gateway (gateway.mjs) as a Node HTTP server. The router's index is snapshotted
// to a file every `snapshotMs` when it changed, and on shutdown (SIGINT / SIGTERM), and
// restored from it on start; an unreadable snapshot is logged and the gateway starts empty.
//
//   node demo/gateway/node.mjs --port 8787 --backends http://127.0.0.1:8001,http://127.0.0.1:8002 \
//     [--mode approximate|precise] [--policy cache-aware] [--snapshot router.snapshot]
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { init, KVRouter } from 'llmds';
import { createGateway, parseBackends } from './gateway.mjs';
import { tokenize } from './tokenizer.mjs';

/** A restored router, or a new one when there is no usable snapshot (never throws for bad bytes). */
async function restore(file, options, log) {
  if (file && existsSync(file)) {
    try {
      const router = KVRouter.deserialize(new Uint8Array(await readFile(file)));
      if (router.mode !== options.mode || router.blockSize !== options.blockSize) {
        // A snapshot of another configuration would route by the wrong index.
        log.error?.(`llmds gateway: ignoring snapshot ${file} (a ${router.mode} router with ${router.blockSize}-token blocks); starting empty`);
        router.dispose();
        return { router: new KVRouter(options), restored: 'options_mismatch' };
      }
      log.info?.(`llmds gateway: restored ${file}`);
      return { router, restored: 'snapshot' };
    } catch (e) {
      log.error?.(`llmds gateway: ignoring snapshot ${file} (${e.code ?? e.message}); starting empty`);
      return { router: new KVRouter(options), restored: e.code ?? 'error' };
    }
  }
  return { router: new KVRouter(options), restored: 'none' };
}

/** Node request → web Request (the body streamed, not buffered). */
function toRequest(req, base) {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  return new Request(new URL(req.url, base), { method: req.method, headers, body: hasBody ? Readable.toWeb(req) : undefined, duplex: 'half' });
}

/** Web Response → Node response, chunk by chunk; a client that goes away cancels the body. */
async function send(response, res) {
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) return void res.end();
  res.flushHeaders();
  const reader = response.body.getReader();
  res.on('close', () => {
    if (!res.writableFinished) reader.cancel(new Error('client closed the connection')).catch(() => {});
  });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  } catch {
    res.destroy();
  }
}

/**
 * Starts the gateway.
 * @returns {Promise<{ url: string, router: KVRouter, gateway: object, restored: string, snapshot(): Promise<boolean>, close(): Promise<void> }>}
 */
export async function startGateway({ port = 8787, host = '127.0.0.1', backends = [], mode = 'approximate', policy = 'cache-aware', blockSize = 16, snapshotFile, snapshotMs = 5000, retryMs, log = console } = {}) {
  await init();
  const { router, restored } = await restore(snapshotFile, { blockSize, policy, mode }, log);
  let dirty = false;
  let saves = 0;
  const gateway = createGateway({
    router,
    backends: parseBackends(backends),
    tokenize: mode === 'precise' ? tokenize : undefined,
    retryMs,
    log,
    onChange: () => (dirty = true),
    extraStats: () => ({ snapshot: { file: snapshotFile ?? null, restored, dirty, saves } }),
  });

  /** Writes the snapshot if the index changed since the last one (atomically: temp file + rename). */
  let writing = Promise.resolve(false);
  const snapshot = () =>
    (writing = writing.then(async () => {
      if (!snapshotFile || !dirty) return false;
      dirty = false; // routing during the write marks it again: nothing is lost, only deferred
      const bytes = router.serialize();
      await writeFile(`${snapshotFile}.tmp`, bytes);
      await rename(`${snapshotFile}.tmp`, snapshotFile);
      saves++;
      return true;
    }));
  const timer = snapshotFile ? setInterval(() => snapshot().catch((e) => log.error?.(`llmds gateway: snapshot failed: ${e.message}`)), snapshotMs) : null;
  timer?.unref();

  const server = createServer((req, res) => {
    gateway
      .handle(toRequest(req, `http://${req.headers.host ?? host}`))
      .then((response) => send(response, res))
      .catch((e) => {
        log.error?.(e);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'internal', message: String(e.message ?? e) } }));
      });
  });
  await new Promise((r) => server.listen(port, host, r));
  const url = `http://${host}:${server.address().port}`;
  let closing;
  return {
    url,
    router,
    gateway,
    restored,
    snapshot,
    close: () =>
      (closing ??= (async () => {
        clearInterval(timer);
        await new Promise((r) => {
          server.close(r);
          server.closeAllConnections();
        });
        await snapshot();
        router.dispose();
      })()),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8787' },
      backends: { type: 'string', default: '' },
      mode: { type: 'string', default: 'approximate' },
      policy: { type: 'string', default: 'cache-aware' },
      snapshot: { type: 'string' },
      'snapshot-ms': { type: 'string', default: '5000' },
    },
  });
  const g = await startGateway({
    port: Number(values.port),
    backends: values.backends ? values.backends.split(',') : [],
    mode: values.mode,
    policy: values.policy,
    snapshotFile: values.snapshot,
    snapshotMs: Number(values['snapshot-ms']),
  });
  console.log(`llmds gateway on ${g.url} (${g.restored === 'snapshot' ? 'restored' : 'empty'}, ${values.mode})`);
  const stop = () => g.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
