// SPDX-License-Identifier: MIT
// The KV-aware gateway demo (demo/gateway/node.mjs) as a Node server in front of fake vLLM
// backends on loopback: cache-aware routing, streaming pass-through, load accounting, snapshots
// across restarts, failover, and precise mode fed by the backends' KV events.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseBackends } from '../../demo/gateway/gateway.mjs';
import { startGateway } from '../../demo/gateway/node.mjs';
import { root } from '../pack.mjs';
import { assertStreams, backendStats, chat, complete, deadUrl, eventually, freePort, post, quiet, startBackends, stats, SYSTEM } from './gateway-helpers.mjs';

const dir = mkdtempSync(join(tmpdir(), 'llmds-gateway-node-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('approximate mode (text routing)', () => {
  let backends;
  let gw;
  const snapshotFile = join(dir, 'approx.snapshot');
  const start = () => startGateway({ port: 0, backends: backends.map((b) => b.url), snapshotFile, snapshotMs: 50, log: quiet });

  before(async () => {
    backends = await startBackends(3, { decodeMs: 15 });
    gw = await start();
  });
  after(async () => {
    await gw?.close();
    await Promise.all(backends.map((b) => b.close()));
  });

  test('a second request sharing a long prompt goes to the same backend, which reports cached tokens', async () => {
    const first = await complete(gw.url, `${SYSTEM}Question: what is a page?`);
    assert.equal(first.status, 200);
    assert.ok(backends.some((b) => b.url === first.worker));
    assert.equal(first.overlap, 0);
    assert.equal(first.cached, 0);
    const second = await complete(gw.url, `${SYSTEM}Question: what is a block?`);
    assert.equal(second.worker, first.worker);
    assert.equal(second.overlap, 9 * 128); // the nine full 128-byte chunks of the shared prefix
    assert.ok(second.cached >= 1152, `cached ${second.cached}`); // the backend's prefix cache hit (16-byte pages)
    assert.equal(second.body.usage.prompt_tokens_details.cached_tokens, second.cached);
    // A different prompt on an otherwise idle fleet goes by the tie-break, not by that cache.
    const other = await complete(gw.url, 'Something else entirely. '.repeat(30));
    assert.equal(other.status, 200);
  });

  test('chat requests: messages become one deterministic prompt, shared system messages hit the cache', async () => {
    const system = { role: 'system', content: SYSTEM };
    const a = await chat(gw.url, [system, { role: 'user', content: 'first question' }]);
    const b = await chat(gw.url, [system, { role: 'user', content: 'second question' }]);
    assert.equal(a.status, 200);
    assert.equal(b.worker, a.worker);
    assert.ok(b.cached > 1000, `cached ${b.cached}`);
    assert.equal(b.body.object, 'chat.completion');
  });

  test('streaming passes through chunk by chunk and finished() brings the load back to 0', async () => {
    const { worker, during } = await assertStreams(gw.url, `${SYSTEM}stream me`);
    assert.equal(during.inflight, 1);
    assert.ok(backendStats(during, worker).load > 0, 'the router counts the open request');
    const s = await eventually(async () => {
      const x = await stats(gw.url);
      return x.inflight === 0 && x;
    });
    for (const b of s.backends) assert.equal(b.load, 0);
  });

  test('a client that disconnects mid-stream also ends the request (load back to 0)', async () => {
    const ac = new AbortController();
    const r = await fetch(`${gw.url}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ prompt: `${SYSTEM}abandoned`, max_tokens: 50, stream: true }),
      signal: ac.signal,
    });
    const reader = r.body.getReader();
    await reader.read();
    assert.equal((await stats(gw.url)).inflight, 1);
    ac.abort();
    await eventually(async () => (await stats(gw.url)).inflight === 0, 5000, 'inflight 0 after abort');
    const s = await stats(gw.url);
    for (const b of s.backends) assert.equal(b.load, 0);
  });

  test('bad requests are 400s that change nothing', async () => {
    const before = (await stats(gw.url)).router;
    const bad = await post(`${gw.url}/v1/completions`, { prompt: [1, -2] });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.code, 'invalid_request');
    const notJson = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: '{' });
    assert.equal(notJson.status, 400);
    // Approximate mode takes no events: the router says so with its error code.
    const events = await post(`${gw.url}/kv-events`, { worker: backends[0].url, events: [{ type: 'AllBlocksCleared' }] });
    assert.equal(events.status, 400);
    assert.equal((await events.json()).error.code, 'invalid_argument');
    assert.deepEqual((await stats(gw.url)).router, before);
  });

  test('the snapshot survives a restart: a prompt seen before goes to the same backend', async () => {
    const prompt = `${SYSTEM}remember me`;
    const seen = await complete(gw.url, prompt);
    await gw.close(); // snapshots on shutdown
    gw = await start();
    assert.equal(gw.restored, 'snapshot');
    const again = await complete(gw.url, `${SYSTEM}remember me too`);
    assert.equal(again.worker, seen.worker);
    assert.ok(again.overlap >= 9 * 128);
    // The interval snapshot writes only after changes.
    await eventually(async () => (await stats(gw.url)).snapshot.saves >= 1, 5000, 'an interval snapshot');
  });

  test('a corrupt snapshot is logged and ignored: the gateway starts empty and routes', async () => {
    await gw.close();
    const bytes = readFileSync(snapshotFile);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(snapshotFile, bytes);
    const errors = [];
    gw = await startGateway({ port: 0, backends: backends.map((b) => b.url), snapshotFile, snapshotMs: 50, log: { ...quiet, error: (m) => errors.push(m) } });
    assert.equal(gw.restored, 'corrupt_data');
    assert.match(errors.join('\n'), /corrupt_data/);
    const s = await stats(gw.url);
    assert.equal(s.router.indexedBlocks, 0);
    assert.equal(s.router.workers, 3);
    assert.equal((await complete(gw.url, `${SYSTEM}after corruption`)).status, 200);
  });
});

describe('failover and admin', () => {
  let backends;
  let gw;
  before(async () => {
    backends = await startBackends(1);
  });
  after(async () => {
    await gw?.close();
    await Promise.all(backends.map((b) => b.close()));
  });

  test('a backend that refuses connections is skipped: the request fails over, the backend is marked down', async () => {
    // Ids sort 'a-dead' first, so with an empty index the tie-break picks it.
    gw = await startGateway({ port: 0, backends: [{ id: 'a-dead', url: await deadUrl() }, { id: 'b-live', url: backends[0].url }], retryMs: 60000, log: quiet });
    const r = await complete(gw.url, `${SYSTEM}fail over`);
    assert.equal(r.status, 200);
    assert.equal(r.worker, 'b-live');
    const s = await stats(gw.url);
    assert.equal(backendStats(s, 'a-dead').down, true);
    assert.equal(backendStats(s, 'a-dead').inRouter, false); // approximate mode: it left the index
    assert.equal(s.inflight, 0);
    for (const b of s.backends) assert.equal(b.load, 0);
    // And the recording landed on the backend that served it.
    assert.equal((await complete(gw.url, `${SYSTEM}fail over again`)).overlap, 9 * 128);
  });

  test('a backend that dies mid-stream: the client sees the stream fail, finished() still runs', async () => {
    const dying = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"text":" half"}]}\n\n');
      setTimeout(() => res.destroy(), 50);
    });
    await new Promise((r) => dying.listen(0, '127.0.0.1', r));
    const g = await startGateway({ port: 0, backends: [`http://127.0.0.1:${dying.address().port}`], log: quiet });
    try {
      const r = await fetch(`${g.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'x', stream: true }) });
      assert.equal(r.status, 200);
      const reader = r.body.getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /half/);
      await assert.rejects(async () => {
        for (;;) if ((await reader.read()).done) break;
      });
      const s = await eventually(async () => {
        const x = await stats(g.url);
        return x.inflight === 0 && x;
      }, 5000, 'inflight 0');
      assert.equal(s.backends[0].load, 0);
    } finally {
      await g.close();
      dying.close();
    }
  });

  test('admin: add and remove backends; no backend is a 503', async () => {
    const added = await post(`${gw.url}/workers`, { url: 'http://127.0.0.1:9/' });
    assert.equal(added.status, 201);
    assert.deepEqual(await added.json(), { id: 'http://127.0.0.1:9', url: 'http://127.0.0.1:9' });
    assert.equal((await post(`${gw.url}/workers`, { url: 'http://127.0.0.1:9' })).status, 409);
    assert.equal((await post(`${gw.url}/workers`, { url: 'ftp://x' })).status, 400);
    for (const id of ['http://127.0.0.1:9', 'b-live', 'a-dead']) {
      assert.equal((await fetch(`${gw.url}/workers/${encodeURIComponent(id)}`, { method: 'DELETE' })).status, 204, id);
    }
    assert.equal((await fetch(`${gw.url}/workers/nope`, { method: 'DELETE' })).status, 404);
    assert.equal((await complete(gw.url, 'anything')).status, 503);
  });
});

describe('precise mode: routing from the backends\' KV events', () => {
  let backends;
  let gw;
  before(async () => {
    gw = await startGateway({ port: 0, mode: 'precise', log: quiet });
    backends = await startBackends(3, { gateway: gw.url });
    for (const b of backends) assert.equal((await post(`${gw.url}/workers`, { url: b.url })).status, 201);
  });
  after(async () => {
    await gw?.close();
    await Promise.all(backends.map((b) => b.close()));
  });

  test('blocks a backend reported go to it: same backend, overlap from its events, cached tokens', async () => {
    const first = await complete(gw.url, `${SYSTEM}precise one`);
    assert.equal(first.status, 200);
    assert.equal(first.overlap, 0);
    const s = await stats(gw.url);
    const prefixBlocks = Math.floor(new TextEncoder().encode(`${SYSTEM}precise one`).length / 16);
    assert.equal(backendStats(s, first.worker).blocks, prefixBlocks); // exactly what its events stored
    for (const b of backends) if (b.url !== first.worker) assert.equal(backendStats(s, b.url).blocks, 0);
    const second = await complete(gw.url, `${SYSTEM}precise two`);
    assert.equal(second.worker, first.worker);
    const shared = Math.floor(`${SYSTEM}precise `.length / 16) * 16; // the two prompts' common bytes, in full blocks
    assert.equal(second.overlap, shared);
    assert.equal(second.cached, shared); // what the gateway predicted is what the backend reused
    // Token-id prompts route the same way (the byte tokenizer: ids are UTF-8 bytes).
    const ids = Array.from(new TextEncoder().encode(`${SYSTEM}as ids`));
    const third = await complete(gw.url, ids);
    assert.equal(third.worker, first.worker);
    assert.equal(third.overlap, Math.floor(SYSTEM.length / 16) * 16);
  });

  test('malformed /kv-events: 400 with the LlmdsError code, router unchanged', async () => {
    const worker = backends[0].url;
    const before = (await stats(gw.url)).router;
    const cases = [
      [{ worker, events: [{ type: 'BlockStored', block_hashes: ['1'], parent_block_hash: null, token_ids: [1, 2, 3], block_size: 16 }] }, 'invalid_argument'], // 3 tokens for a 16-token block
      [{ worker, events: [{ type: 'BlockStored', block_hashes: ['7'], parent_block_hash: '12345', token_ids: Array(16).fill(1), block_size: 16 }] }, 'not_found'], // unknown parent
      [{ worker, events: [{ type: 'Nonsense' }] }, 'invalid_argument'],
      [{ worker, events: 'no' }, 'invalid_argument'],
    ];
    for (const [body, code] of cases) {
      const r = await post(`${gw.url}/kv-events`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal((await r.json()).error.code, code, JSON.stringify(body));
    }
    const unknown = await post(`${gw.url}/kv-events`, { worker: 'http://nobody', events: [] });
    assert.equal(unknown.status, 404);
    assert.deepEqual((await stats(gw.url)).router, before);
  });

  test('BlockRemoved and AllBlocksCleared events take blocks out of the index', async () => {
    const one = await complete(gw.url, `${SYSTEM}to be cleared`);
    const worker = one.worker;
    assert.ok(backendStats(await stats(gw.url), worker).blocks > 0);
    assert.equal((await post(`${gw.url}/kv-events`, { worker, events: [{ type: 'AllBlocksCleared' }] })).status, 200);
    assert.equal(backendStats(await stats(gw.url), worker).blocks, 0);
    assert.equal((await complete(gw.url, `${SYSTEM}to be cleared again`)).overlap, 0);
  });
});

describe('the README (demo/gateway/README.md)', () => {
  const readme = readFileSync(join(root, 'demo/gateway/README.md'), 'utf8');

  /** Starts `node <args>` in the repository; resolves once stdout has a line matching `ready`. */
  async function run(args, ready) {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    await eventually(() => ready.test(out) || child.exitCode !== null, 30000, args.join(' '));
    assert.equal(child.exitCode, null, out);
    return { child, exited, output: () => out };
  }

  test('the Node commands run: two fake backends, the gateway CLI, a completion, /stats, SIGTERM writes the snapshot', async () => {
    const [p1, p2, pg] = [await freePort(), await freePort(), await freePort()];
    const snapshot = join(dir, 'cli.snapshot');
    // The README's commands, with free ports instead of 8001, 8002, 8787.
    assert.match(readme, /node demo\/gateway\/fake-backend\.mjs --port 8001 &/);
    assert.match(readme, /node demo\/gateway\/node\.mjs --port 8787 --backends http:\/\/127\.0\.0\.1:8001,http:\/\/127\.0\.0\.1:8002 --snapshot router\.snapshot/);
    const b1 = await run(['demo/gateway/fake-backend.mjs', '--port', String(p1)], /listening/);
    const b2 = await run(['demo/gateway/fake-backend.mjs', '--port', String(p2)], /listening/);
    const g = await run(['demo/gateway/node.mjs', '--port', String(pg), '--backends', `http://127.0.0.1:${p1},http://127.0.0.1:${p2}`, '--snapshot', snapshot], /llmds gateway on/);
    try {
      const base = `http://127.0.0.1:${pg}`;
      const r = await fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"model":"m","prompt":"You are a helpful assistant. Summarise paged attention.","max_tokens":8}',
      });
      assert.equal(r.status, 200);
      const body = await r.json();
      assert.equal(body.choices[0].text.split(' ').length - 1, 8);
      assert.equal((await stats(base)).router.workers, 2);
      g.child.kill('SIGTERM');
      assert.equal(await g.exited, 0, g.output());
      assert.ok(existsSync(snapshot), 'no snapshot written on SIGTERM');
    } finally {
      for (const p of [g, b1, b2]) if (p.child.exitCode === null) p.child.kill();
    }
  });

  test('the wrangler.toml block is demo/gateway/wrangler.toml, and it matches the Worker', async () => {
    const toml = readFileSync(join(root, 'demo/gateway/wrangler.toml'), 'utf8');
    const at = readme.indexOf('<!-- file: demo/gateway/wrangler.toml -->');
    assert.ok(at >= 0);
    assert.equal(readme.slice(at).match(/```toml\n([\s\S]*?)```/)?.[1], toml);
    const worker = await import('../../demo/gateway/cloudflare-worker.mjs');
    assert.equal(typeof worker.default.fetch, 'function');
    const className = toml.match(/class_name = "(\w+)"/)[1];
    assert.equal(typeof worker[className], 'function', `cloudflare-worker.mjs exports no ${className}`);
    assert.match(toml, /new_sqlite_classes = \["GatewayRouter"\]/);
    assert.match(toml, /name = "ROUTER"/);
    assert.match(readFileSync(join(root, 'demo/gateway/cloudflare-worker.mjs'), 'utf8'), /env\.ROUTER\.idFromName\(model\)/);
    assert.equal(toml.match(/^main = "(.*)"$/m)[1], 'cloudflare-worker.mjs');
    // The vars parse the way the Durable Object reads them.
    const vars = Object.fromEntries([...toml.matchAll(/^([A-Z_]+) = '(.*)'$/gm)].map((m) => [m[1], m[2]]));
    assert.equal(parseBackends(vars.BACKENDS).length, 2);
    assert.deepEqual(JSON.parse(vars.ROUTER_OPTIONS), { mode: 'approximate', policy: 'cache-aware' });
  });
});
