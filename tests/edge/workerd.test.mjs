// SPDX-License-Identifier: MIT
// The package in workerd (the Cloudflare Workers runtime), served on loopback.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { llmds, distUrl } from '../js/llmds.mjs';
import { runScenario } from '../scenario.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
let dir, workerd, base, expected;

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function waitUntilServing(url, child, ms = 15000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`workerd exited with ${child.exitCode}`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('workerd did not start');
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'llmds-workerd-'));
  // Bundle as wrangler does: the workerd condition, .wasm imports left as module imports.
  await build({
    entryPoints: [join(root, 'tests/edge/worker.mjs')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    external: ['*.wasm'],
    outfile: join(dir, 'worker.js'),
    logLevel: 'error',
  });
  copyFileSync(fileURLToPath(new URL('llmds.wasm', distUrl)), join(dir, 'llmds.wasm'));
  writeFileSync(join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "llmds.wasm", wasm = embed "llmds.wasm"),
  ],
  compatibilityDate = "2025-01-01",
);
`);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  workerd = spawn(join(root, 'node_modules/.bin/workerd'), ['serve', 'config.capnp', `--socket-addr=http=127.0.0.1:${port}`], {
    cwd: dir,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitUntilServing(base, workerd);
  await llmds.init();
  expected = JSON.parse(JSON.stringify(await runScenario(llmds)));
});

after(() => {
  workerd?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('workerd runs the shared scenario with the same result as Node', async () => {
  const r = await (await fetch(`${base}/scenario`)).json();
  assert.equal(r.features.simd, true);
  assert.deepEqual(r.scenario, expected);
});

test('workerd keeps a KV cache across requests and reuses prefixes', async () => {
  const first = await (await fetch(`${base}/kv?seq=1&tokens=1,2,3,4,5,6,7,8,9`)).json();
  assert.equal(first.reused, 0);
  const second = await (await fetch(`${base}/kv?seq=2&tokens=1,2,3,4,5,6,7,8,42`)).json();
  assert.equal(second.reused, 8);
  assert.equal(second.stats.sharedPages, 2);
  const bad = await fetch(`${base}/kv?seq=-1&tokens=1`);
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error, 'invalid_argument');
});
