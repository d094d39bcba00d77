// SPDX-License-Identifier: MIT
// The README's quick starts are these files, verbatim (checked here), and each one runs in its
// runtime against the installed tarball.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { launch, open } from '../browser/chromium.mjs';
import { startWorkerd } from '../edge/workerd.mjs';
import { consumerProject, root } from '../pack.mjs';

const examples = ['node.mjs', 'browser.html', 'worker.mjs', 'cloudflare-worker.mjs', 'deno.ts'];
let dir;

before(() => {
  dir = consumerProject('llmds-examples-');
  for (const f of examples) copyFileSync(join(root, 'tests/examples', f), join(dir, f));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('README quick starts are the tested example files, verbatim', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const f of examples) {
    const marker = `<!-- example: tests/examples/${f} -->`;
    const at = readme.indexOf(marker);
    assert.ok(at >= 0, `README has no ${marker}`);
    const block = readme.slice(at).match(/```[a-z]*\n([\s\S]*?)```/);
    assert.equal(block?.[1], readFileSync(join(root, 'tests/examples', f), 'utf8'), `README block for ${f} differs from the file`);
  }
});

test('Node example', () => {
  const out = execFileSync(process.execPath, ['node.mjs'], { cwd: dir, encoding: 'utf8' }).trim().split('\n');
  assert.equal(out[0], '64 Int32Array(1) [ 5 ]');
  assert.equal(out[1], 'Int32Array(2) [ 5, 6 ]');
  assert.equal(out[2], '64');
  assert.match(out[3], /^Int32Array\(5\)/);
  assert.equal(out[4], '4');
  assert.equal(out[5], 'not_found');
});

test('Deno example', () => {
  writeFileSync(join(dir, 'deno.json'), JSON.stringify({ nodeModulesDir: 'manual' }));
  const r = spawnSync(join(root, 'node_modules/.bin/deno'), ['run', '--allow-read', '--allow-env', 'deno.ts'], {
    cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' }, timeout: 120000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'true [ 1, 2, 3 ]');
});

test('Cloudflare Workers example under workerd', async () => {
  const server = await startWorkerd(join(dir, 'cloudflare-worker.mjs'), {
    wasmFile: join(dir, 'node_modules/llmds/dist/llmds.wasm'),
    nodePaths: [join(dir, 'node_modules')],
  });
  try {
    const ask = async (tokens) => (await fetch(server.base, { method: 'POST', body: JSON.stringify(tokens) })).json();
    const tokens = Array.from({ length: 40 }, (_, i) => i);
    assert.deepEqual(await ask(tokens), { reused: 0, usedPages: 3 });
    assert.deepEqual(await ask(tokens), { reused: 32, usedPages: 3 });
  } finally {
    server.stop();
  }
});

test('browser (import map) and bundled Web Worker examples in Chromium', async () => {
  await build({ entryPoints: [join(dir, 'worker.mjs')], bundle: true, format: 'esm', outfile: join(dir, 'worker.js'), logLevel: 'error', absWorkingDir: dir });
  writeFileSync(join(dir, 'worker-page.html'), `<!doctype html><meta charset="utf-8"><output id="out"></output><script type="module">
    const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    const replies = [];
    w.onmessage = ({ data }) => { replies.push(data); if (replies.length === 2) document.querySelector('#out').textContent = JSON.stringify(replies); };
    const tokens = Array.from({ length: 20 }, (_, i) => i);
    w.postMessage({ seqId: 1, tokens });
    w.postMessage({ seqId: 2, tokens });
  </script>`);
  const types = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const server = createServer(async (req, res) => {
    try {
      const path = new URL(req.url, 'http://x').pathname;
      if (path === '/favicon.ico') return void res.writeHead(204).end(); // the browser asks on its own
      const body = await readFile(join(dir, path));
      res.writeHead(200, { 'content-type': types[path.slice(path.lastIndexOf('.'))] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  const browser = await launch();
  try {
    const readOut = async (url) => {
      const { page, errors } = await open(browser, url);
      await page.waitForFunction(() => document.querySelector('#out')?.textContent, null, { timeout: 20000 });
      const text = await page.textContent('#out');
      assert.deepEqual(errors, []);
      return text;
    };
    assert.equal(await readOut(`${base}/browser.html`), 'SIMD: 1 2 3');
    assert.deepEqual(JSON.parse(await readOut(`${base}/worker-page.html`)), [{ seqId: 1, reused: 0 }, { seqId: 2, reused: 16 }]);
  } finally {
    await browser.close();
    server.close();
  }
});
