// SPDX-License-Identifier: MIT
// The KV-aware gateway demo as a Deno.serve server (demo/gateway/deno.ts), run by Deno (from
// npm) in a project with the packed llmds installed, in front of fake vLLM backends on loopback:
// routing, streaming, load accounting, and the snapshot file across a SIGTERM restart.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { consumerProject, root } from '../pack.mjs';
import { assertStreams, complete, eventually, freePort, startBackends, stats, SYSTEM } from '../js/gateway-helpers.mjs';

let dir;
let backends;
let deno;
let base;
let output = '';

/** Starts deno.ts; resolves once it listens. */
async function startDeno() {
  const port = await freePort();
  const child = spawn(
    join(root, 'node_modules/.bin/deno'),
    ['run', '--allow-net', '--allow-read', '--allow-write', '--allow-env', 'deno.ts', '--port', String(port), '--backends', backends.map((b) => b.url).join(','), '--snapshot', 'router.snapshot', '--snapshot-ms', '100'],
    { cwd: dir, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  await eventually(() => output.includes('llmds gateway on') || child.exitCode !== null, 60000, 'deno to listen');
  assert.equal(child.exitCode, null, output);
  return { child, exited, base: `http://127.0.0.1:${port}` };
}

/** SIGTERM: the server snapshots and exits 0. */
async function stopDeno() {
  deno.child.kill('SIGTERM');
  assert.equal(await deno.exited, 0, output);
}

before(async () => {
  dir = consumerProject('llmds-gateway-deno-');
  for (const f of ['deno.ts', 'gateway.mjs', 'tokenizer.mjs']) copyFileSync(join(root, 'demo/gateway', f), join(dir, f));
  writeFileSync(join(dir, 'deno.json'), JSON.stringify({ nodeModulesDir: 'manual' }));
  backends = await startBackends(3, { decodeMs: 15 });
  deno = await startDeno();
  base = deno.base;
});

after(async () => {
  if (deno?.child.exitCode === null) deno.child.kill('SIGKILL');
  await Promise.all((backends ?? []).map((b) => b.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('deno check: deno.ts type-checks against the package\'s types', () => {
  const r = spawnSync(join(root, 'node_modules/.bin/deno'), ['check', 'deno.ts'], {
    cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' }, timeout: 120000,
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});

test('Deno gateway: a shared long prompt goes to the same backend, which reports cached tokens', async () => {
  const first = await complete(base, `${SYSTEM}Question: what is a page?`);
  assert.equal(first.status, 200);
  const second = await complete(base, `${SYSTEM}Question: what is a block?`);
  assert.equal(second.worker, first.worker);
  assert.equal(second.overlap, 9 * 128);
  assert.ok(second.cached >= 1152, `cached ${second.cached}`);
});

test('Deno gateway: streaming passes through; finished() brings the load back to 0', async () => {
  const { during } = await assertStreams(base, `${SYSTEM}stream me`);
  assert.equal(during.inflight, 1);
  const s = await eventually(async () => {
    const x = await stats(base);
    return x.inflight === 0 && x;
  });
  for (const b of s.backends) assert.equal(b.load, 0);
});

test('Deno gateway: the snapshot file survives a SIGTERM restart; a corrupt one is ignored', async () => {
  const seen = await complete(base, `${SYSTEM}remember me`);
  await stopDeno(); // snapshots on shutdown
  deno = await startDeno();
  base = deno.base;
  assert.equal((await stats(base)).snapshot.restored, 'snapshot');
  const again = await complete(base, `${SYSTEM}remember me too`);
  assert.equal(again.worker, seen.worker);
  assert.ok(again.overlap >= 9 * 128);

  await stopDeno();
  const file = join(dir, 'router.snapshot');
  const bytes = readFileSync(file);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(file, bytes);
  deno = await startDeno();
  base = deno.base;
  assert.match(output, /ignoring snapshot .*corrupt_data/);
  const s = await stats(base);
  assert.equal(s.snapshot.restored, 'corrupt_data');
  assert.equal(s.router.indexedBlocks, 0);
  assert.equal((await complete(base, `${SYSTEM}after corruption`)).status, 200);
});
