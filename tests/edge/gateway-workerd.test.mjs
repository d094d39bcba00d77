// SPDX-License-Identifier: MIT
// The KV-aware gateway demo on workerd (the Cloudflare Workers runtime): the Worker of
// demo/gateway/cloudflare-worker.mjs and its Durable Object (one KVRouter per model), with
// Durable Object storage on local disk (so a snapshot survives a workerd restart) and loopback
// network access to three fake vLLM backends.
//
// workerd config traps: fetch() goes to the `globalOutbound` service, by default "internet",
// which allows public addresses only, so 127.0.0.1 needs a network service with
// allow = ["local"]; Durable Objects need `durableObjectStorage` (localDisk names a disk
// service, which must be writable; its path is relative to the working directory, not to the
// config); the object files are <storage>/<uniqueKey>/<id>.sqlite (+ -wal: after a kill the
// latest values may only be in the WAL).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { root } from '../pack.mjs';
import { assertStreams, backendStats, complete, eventually, post, startBackends, stats, SYSTEM } from '../js/gateway-helpers.mjs';
import { startWorkerd } from './workerd.mjs';

const entry = join(root, 'demo/gateway/cloudflare-worker.mjs');
const M = '?model=fake-model'; // requests carry model "fake-model": that Durable Object

/** workerd options: the Durable Object namespace, its disk storage, loopback fetch, the vars. */
function workerdOptions(storage, { backends = [], routerOptions = {}, snapshotMs = 100, chunkBytes = 128 * 1024 } = {}) {
  const text = (v) => JSON.stringify(typeof v === 'string' ? v : JSON.stringify(v));
  return {
    services: `(name = "do-storage", disk = (path = ${JSON.stringify(storage)}, writable = true)),
    (name = "loopback", network = (allow = ["local"])),`,
    worker: `bindings = [
    (name = "ROUTER", durableObjectNamespace = "GatewayRouter"),
    (name = "BACKENDS", text = ${text(backends)}),
    (name = "ROUTER_OPTIONS", text = ${text(routerOptions)}),
    (name = "SNAPSHOT_MS", text = ${text(String(snapshotMs))}),
    (name = "SNAPSHOT_CHUNK_BYTES", text = ${text(String(chunkBytes))}),
  ],
  durableObjectNamespaces = [ (className = "GatewayRouter", uniqueKey = "llmds-gateway-router") ],
  durableObjectStorage = (localDisk = "do-storage"),
  globalOutbound = "loopback",`,
  };
}

/**
 * Re-computes the checksums of a SQLite WAL file's valid frames after its pages were edited
 * (sqlite.org/fileformat2.html#walformat): SQLite ignores every frame from the first one whose
 * cumulative checksum fails, so a plain byte flip in the WAL loses the value instead of
 * corrupting it.
 */
function rechecksumWal(wal, original) {
  const bigEndian = wal.readUInt32BE(0) === 0x377f0683;
  const word = (b, i) => (bigEndian ? b.readUInt32BE(i) : b.readUInt32LE(i));
  const sum = (b, from, to, s) => {
    let [s0, s1] = s;
    for (let i = from; i < to; i += 8) {
      s0 = (s0 + word(b, i) + s1) >>> 0;
      s1 = (s1 + word(b, i + 4) + s0) >>> 0;
    }
    return [s0, s1];
  };
  const pageSize = wal.readUInt32BE(8);
  let before = sum(original, 0, 24, [0, 0]);
  let after = before; // the header is not edited
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    before = sum(original, at + 24, at + 24 + pageSize, sum(original, at, at + 8, before));
    if (before[0] !== original.readUInt32BE(at + 16) || before[1] !== original.readUInt32BE(at + 20)) break; // the end of the valid frames
    after = sum(wal, at + 24, at + 24 + pageSize, sum(wal, at, at + 8, after));
    wal.writeUInt32BE(after[0], at + 16);
    wal.writeUInt32BE(after[1], at + 20);
  }
}

/**
 * Flips a byte inside every stored copy of the router snapshot (magic "LLMDSKVR") in the
 * Durable Objects' SQLite files, as disk corruption would; returns how many it found.
 */
function corruptSnapshot(storage) {
  const magic = Buffer.from('LLMDSKVR');
  let hits = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.sqlite(-wal)?$/.test(e.name) && !e.name.startsWith('metadata')) {
        const original = readFileSync(p);
        const bytes = Buffer.from(original);
        for (let at = bytes.indexOf(magic); at >= 0; at = bytes.indexOf(magic, at + 1)) {
          bytes[at + magic.length + 24] ^= 0x5a; // past the envelope's magic: the checksum must catch it
          hits++;
        }
        if (e.name.endsWith('-wal')) rechecksumWal(bytes, original);
        writeFileSync(p, bytes);
      }
    }
  };
  walk(storage);
  return hits;
}

describe('approximate mode: one Durable Object per model', () => {
  let backends;
  let server;
  const storage = mkdtempSync(join(tmpdir(), 'llmds-gateway-do-'));
  let options;
  const restart = async () => {
    await server.stop();
    server = await startWorkerd(entry, options);
  };

  before(async () => {
    backends = await startBackends(3, { decodeMs: 15 });
    options = workerdOptions(storage, { backends: backends.map((b) => b.url) });
    server = await startWorkerd(entry, options);
  });
  after(async () => {
    await server?.stop();
    await Promise.all(backends.map((b) => b.close()));
    rmSync(storage, { recursive: true, force: true });
  });

  test('a second request sharing a long prompt goes to the same backend, which reports cached tokens', async () => {
    const first = await complete(server.base, `${SYSTEM}Question: what is a page?`);
    assert.equal(first.status, 200);
    assert.ok(backends.some((b) => b.url === first.worker));
    const second = await complete(server.base, `${SYSTEM}Question: what is a block?`);
    assert.equal(second.worker, first.worker);
    assert.equal(second.overlap, 9 * 128);
    assert.ok(second.cached >= 1152, `cached ${second.cached}`);
    assert.equal(second.body.usage.prompt_tokens_details.cached_tokens, second.cached);
    // The object for another model has its own, empty router.
    const s = await stats(server.base, '?model=other');
    assert.equal(s.router.indexedBlocks, 0);
    assert.ok((await stats(server.base, M)).router.indexedBlocks > 0);
  });

  test('streaming passes through the Durable Object; finished() brings the load back to 0', async () => {
    const { worker, during } = await assertStreams(server.base, `${SYSTEM}stream me`, { statsQuery: M });
    assert.equal(during.inflight, 1);
    assert.ok(backendStats(during, worker).load > 0);
    const s = await eventually(async () => {
      const x = await stats(server.base, M);
      return x.inflight === 0 && x;
    });
    for (const b of s.backends) assert.equal(b.load, 0);
  });

  test('malformed /kv-events: 400 with the LlmdsError code, stats unchanged', async () => {
    const before = (await stats(server.base, M)).router;
    const r = await post(`${server.base}/kv-events${M}`, { worker: backends[0].url, events: [{ type: 'AllBlocksCleared' }] });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, 'invalid_argument'); // approximate mode takes no events
    const bad = await post(`${server.base}/kv-events${M}`, { worker: backends[0].url, events: 7 });
    assert.equal(bad.status, 400);
    assert.deepEqual((await stats(server.base, M)).router, before);
  });

  test('the snapshot (alarm → storage) survives a workerd restart with the same storage', async () => {
    const seen = await complete(server.base, `${SYSTEM}remember me`);
    const saved = await eventually(async () => {
      const s = await stats(server.base, M);
      return !s.snapshot.dirty && s.snapshot.saves >= 1 && s;
    }, 5000, 'the alarm snapshot');
    await restart();
    const s = await stats(server.base, M);
    assert.equal(s.snapshot.restored, 'snapshot');
    assert.deepEqual(s.router.indexedBlocks, saved.router.indexedBlocks);
    const again = await complete(server.base, `${SYSTEM}remember me too`);
    assert.equal(again.worker, seen.worker);
    assert.ok(again.overlap >= 9 * 128);
  });

  test('a corrupt snapshot in storage: the object logs it, starts empty and still routes', async () => {
    await eventually(async () => !(await stats(server.base, M)).snapshot.dirty, 5000, 'a clean snapshot');
    await server.stop();
    assert.ok(corruptSnapshot(storage) >= 1, 'no snapshot found on disk');
    server = await startWorkerd(entry, options);
    const s = await stats(server.base, M);
    assert.equal(s.snapshot.restored, 'corrupt_data');
    assert.equal(s.router.indexedBlocks, 0);
    assert.equal(s.router.workers, 3);
    const r = await complete(server.base, `${SYSTEM}after corruption`);
    assert.equal(r.status, 200);
    assert.equal(r.overlap, 0);
  });
});

describe('precise mode: the backends publish KV events to the Durable Object', () => {
  let backends;
  let server;
  const storage = mkdtempSync(join(tmpdir(), 'llmds-gateway-do-'));
  // 256-byte snapshot chunks: the multi-key snapshot path (128 KiB values in production).
  const options = workerdOptions(storage, { routerOptions: { mode: 'precise' }, chunkBytes: 256 });

  before(async () => {
    server = await startWorkerd(entry, options);
    backends = await startBackends(3, { gateway: server.base });
    for (const b of backends) assert.equal((await post(`${server.base}/workers${M}`, { url: b.url })).status, 201);
  });
  after(async () => {
    await server?.stop();
    await Promise.all(backends.map((b) => b.close()));
    rmSync(storage, { recursive: true, force: true });
  });

  test('routing follows the blocks the backends reported', async () => {
    const first = await complete(server.base, `${SYSTEM}precise one`);
    assert.equal(first.status, 200);
    const s = await stats(server.base, M);
    assert.equal(s.mode, 'precise');
    assert.equal(backendStats(s, first.worker).blocks, Math.floor(new TextEncoder().encode(`${SYSTEM}precise one`).length / 16));
    const second = await complete(server.base, `${SYSTEM}precise two`);
    assert.equal(second.worker, first.worker);
    const shared = Math.floor(`${SYSTEM}precise `.length / 16) * 16; // the two prompts' common bytes, in full blocks
    assert.equal(second.overlap, shared);
    assert.equal(second.cached, shared);
  });

  test('malformed events: 400 with the code, router unchanged', async () => {
    const before = (await stats(server.base, M)).router;
    const r = await post(`${server.base}/kv-events${M}`, {
      worker: backends[0].url,
      events: [{ type: 'BlockStored', block_hashes: ['7'], parent_block_hash: '12345', token_ids: Array(16).fill(1), block_size: 16 }],
    });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, 'not_found');
    assert.deepEqual((await stats(server.base, M)).router, before);
  });

  test('a chunked snapshot restores the precise index after a restart (backend URLs from the ids)', async () => {
    const first = await complete(server.base, `${SYSTEM}precise after restart`);
    const saved = await eventually(async () => {
      const s = await stats(server.base, M);
      return !s.snapshot.dirty && s.snapshot.saves >= 1 && s;
    }, 5000, 'the alarm snapshot');
    assert.ok(saved.snapshot.chunks > 1, `${saved.snapshot.chunks} chunks`);
    await server.stop();
    server = await startWorkerd(entry, options);
    const s = await stats(server.base, M);
    assert.equal(s.snapshot.restored, 'snapshot');
    assert.deepEqual(s.router, { ...saved.router, bytes: s.router.bytes });
    // The backends were added at run time (POST /workers): their URL ids route after the restart.
    assert.equal(backendStats(s, first.worker).url, first.worker);
    const again = await complete(server.base, `${SYSTEM}precise after restart, again`);
    assert.equal(again.worker, first.worker);
    assert.equal(again.overlap, again.cached);
    assert.ok(again.overlap >= Math.floor(SYSTEM.length / 16) * 16);
  });
});
