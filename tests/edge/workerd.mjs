// SPDX-License-Identifier: MIT
// Runs a Worker module under workerd on a loopback port, bundled the way wrangler bundles it:
// esbuild with the workerd condition, .wasm imports kept as compiled-module imports.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { root } from '../pack.mjs';

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

/**
 * Bundles `entry` (resolving `llmds` from `nodePaths` or the repository) and serves it.
 * `services` is appended to the config's service list and `worker` to the worker's fields
 * (capnp text: bindings, durableObjectNamespaces, durableObjectStorage, globalOutbound, ...);
 * `args` are extra command-line arguments.
 * @returns {Promise<{ base: string, stop(): Promise<void> }>} stop() resolves when workerd exited
 */
export async function startWorkerd(entry, { wasmFile = join(root, 'dist/llmds.wasm'), nodePaths = [], services = '', worker = '', args = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'llmds-workerd-'));
  await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    external: ['*.wasm'],
    nodePaths,
    outfile: join(dir, 'worker.js'),
    logLevel: 'error',
  });
  copyFileSync(wasmFile, join(dir, 'llmds.wasm'));
  writeFileSync(join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker), ${services} ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "llmds.wasm", wasm = embed "llmds.wasm"),
  ],
  compatibilityDate = "2025-01-01",
  ${worker}
);
`);
  const port = await freePort();
  const child = spawn(join(root, 'node_modules/.bin/workerd'), ['serve', 'config.capnp', `--socket-addr=http=127.0.0.1:${port}`, ...args], {
    cwd: dir,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  const exited = new Promise((r) => child.once('exit', r));
  const stop = () => {
    if (child.exitCode === null) child.kill();
    rmSync(dir, { recursive: true, force: true });
    return exited.then(() => {});
  };
  try {
    await waitUntilServing(base, child);
  } catch (e) {
    stop();
    throw e;
  }
  return { base, stop };
}
