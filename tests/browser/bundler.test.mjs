// SPDX-License-Identifier: MIT
// esbuild bundles an app importing `llmds` (no loaders, no plugins, no copied assets); the
// bundle runs in Chromium and finds its .wasm by itself.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { llmds } from '../js/llmds.mjs';
import { runScenario } from '../scenario.mjs';
import { launch, open, result } from './chromium.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
let dir, server, base, browser;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'llmds-bundle-'));
  await build({ entryPoints: [join(root, 'tests/browser/bundle-app.mjs')], bundle: true, format: 'esm', outfile: join(dir, 'app.js'), logLevel: 'error' });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="app.js"></script>');
  // Serve only the bundle's folder: nothing from the package is reachable except what was bundled.
  server = createServer(async (req, res) => {
    try {
      const file = join(dir, req.url === '/' ? 'index.html' : req.url.slice(1));
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : 'text/html' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('an esbuild bundle of an app importing llmds runs in Chromium with no configuration', async () => {
  await llmds.init();
  const expected = JSON.parse(JSON.stringify(await runScenario(llmds)));
  const { page, errors } = await open(browser, `${base}/`);
  const r = await result(page);
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.features.simd, true);
  assert.deepEqual(r.scenario, expected);
  assert.deepEqual(errors, []);
});
