// SPDX-License-Identifier: MIT
// The demo page in Chromium: a query gives ranked results in all three columns, KV cache
// operations change the page map and stats, the decoder's second request reuses the first's
// system prompt pages and answers as it does without them, the simulator draws its charts (deterministically),
// the custom-embedder hook works and only takes same-origin modules; no console errors, no
// request leaves the page's origin, no horizontal scrolling on a phone. Full-page screenshots
// at 1280 and 390 px go to test-results/ (git-ignored). Firefox ESR and WebKit get a smoke test:
// the page loads without errors and its four panels work.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { serve } from '../../demo/serve.mjs';
import { launch } from './chromium.mjs';
import { engines } from './engines.mjs';

const artifacts = fileURLToPath(new URL('../../test-results/', import.meta.url));
let server, base, browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  ({ server, url: base } = await serve());
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** Opens the demo at `width` px; resolves once every panel has mounted (or failed). */
async function openDemo(width, search = '') {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  const errors = [];
  const foreign = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => new URL(r.url()).origin !== base && !r.url().startsWith('data:') && foreign.push(r.url()));
  await page.goto(`${base}/demo/${search}`);
  await page.waitForSelector('body[data-ready]', { timeout: 15000 });
  return { page, errors, foreign };
}

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));
const stat = async (page, name) => Number(await page.textContent(`#kv-stats [data-stat=${name}]`));

/** The decoder panel's table: { 'A on': { cachedTokens, ... }, 'B on': ..., 'B off': ... }. */
const decoderRows = (page) =>
  page.$$eval('#dec-requests tbody tr', (trs) => Object.fromEntries(trs.map((tr) => [`${tr.dataset.request} ${tr.dataset.sharing}`,
    Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map((td) => [td.dataset.col, td.textContent]))])));

/** The hits of one result column: [{ title, score }]. */
const hits = (page, column) =>
  page.$$eval(`#rag-${column} li[data-doc]`, (lis) => lis.map((li) => ({ title: li.querySelector('strong').textContent, score: Number(li.querySelector('.score').textContent) })));

async function search(page, query) {
  await page.fill('#rag-query', query);
  await page.press('#rag-query', 'Enter');
  await page.waitForFunction((q) => document.querySelector('#rag-status').textContent.includes(q), query);
}

test('desktop, 1280 px: retrieval, KV cache, decoder and simulator', async () => {
  const { page, errors, foreign } = await openDemo(1280);
  assert.equal(await page.getAttribute('body', 'data-ready'), 'true');
  assert.match(await page.textContent('#engine'), /wasm/);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  // Every form control has a label.
  assert.deepEqual(await page.$$eval('input, select', (els) => els.filter((e) => !e.labels?.length && !e.getAttribute('aria-label')).map((e) => e.id)), []);

  // RAG: a query ranks the matching document first in every column, scores descending.
  await search(page, 'caching prompts');
  for (const column of ['bm25', 'dense', 'hybrid']) {
    const list = await hits(page, column);
    assert.ok(list.length >= 4 && list.length <= 5, `${column}: ${list.length} hits`); // only 4 documents contain either word
    assert.equal(list[0].title, 'Prompt caching', column);
    for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].score >= list[i].score, `${column} is ranked`);
    assert.match(await page.textContent(`#rag-${column}-time`), /\d+(\.\d+)? (µs|ms)/);
  }
  // Dense search tolerates a typo: "serch" still finds the search documents.
  await search(page, 'hybrid serch');
  assert.equal((await hits(page, 'dense'))[0].title, 'Hybrid search');
  await page.selectOption('#rag-k', '10');
  await page.waitForFunction(() => document.querySelectorAll('#rag-hybrid li[data-doc]').length === 10);

  // KV cache: attach, fork, append (copy-on-write), detach (cached pages), match prefix.
  await page.click('#kv button[data-op=reset]');
  assert.equal(await stat(page, 'usedPages'), 0);
  await page.fill('#kv-seq', '1');
  await page.fill('#kv-tokens', '1..20');
  await page.click('#kv button[data-op=attach]');
  assert.equal(await stat(page, 'usedPages'), 3);
  await page.fill('#kv-target', '2');
  await page.click('#kv button[data-op=fork]');
  assert.equal(await stat(page, 'sharedPages'), 3);
  assert.equal(await page.locator('#kv-pages .page.shared').count(), 3);
  assert.deepEqual(await texts(page, '#kv-sequences tbody th'), ['1', '2']);
  await page.fill('#kv-seq', '2');
  await page.fill('#kv-tokens', '99');
  await page.click('#kv button[data-op=append]');
  assert.equal(await stat(page, 'cowCopies'), 1);
  assert.equal(await page.locator('#kv-pages .page.shared').count(), 2);
  assert.ok((await page.locator('#kv-pages .page.changed').count()) >= 1);
  assert.ok((await page.locator('#kv-stats div.changed').count()) >= 1);
  for (const seq of ['1', '2']) {
    await page.fill('#kv-seq', seq);
    await page.click('#kv button[data-op=detach]');
  }
  assert.equal(await stat(page, 'usedPages'), 0);
  assert.equal(await stat(page, 'cachedPages'), 2);
  assert.equal(await page.locator('#kv-pages .page.cached').count(), 2);
  await page.fill('#kv-tokens', '1..20');
  await page.click('#kv button[data-op=match]');
  assert.match(await page.textContent('#kv-message'), /^16 of these 20 tokens/);
  // Errors are shown, not thrown: forking an unknown sequence.
  await page.fill('#kv-seq', '77');
  await page.click('#kv button[data-op=fork]');
  assert.match(await page.textContent('#kv-message'), /^not_found/);
  await page.click('#kv button[data-scenario=evict]');
  assert.ok((await stat(page, 'evictions')) > 0);
  assert.match(await page.textContent('#kv-log'), /cache\.attach\(4, \[4000\.\.4199\]\)/);
  await page.click('#kv button[data-scenario=shared]');
  assert.equal(await stat(page, 'sharedPages'), 3);

  // Decoder: B shares A's 448-token system prompt (28 pages of 16), computes only its own 48
  // tokens and answers exactly as on a cache without prefix sharing.
  assert.equal(await page.locator('#dec-pages .page.free').count(), 80);
  await page.click('#decoder button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#dec-status').textContent.startsWith('Done'), null, { timeout: 60000 });
  const rows = await decoderRows(page);
  assert.deepEqual(Object.keys(rows), ['A on', 'B on', 'B off']);
  assert.equal(rows['A on'].cachedTokens, '0');
  assert.equal(rows['A on'].computed, '496');
  assert.equal(rows['B on'].cachedTokens, '448');
  assert.equal(rows['B on'].computeFrom, '448');
  assert.equal(rows['B on'].computed, '48');
  assert.equal(rows['B on'].copies, 'none');
  assert.match(rows['B on'].newPages, /^3 \(p\d+…p\d+\)$/);
  assert.equal(rows['B off'].cachedTokens, '0');
  assert.equal(rows['B off'].computed, '496');
  assert.equal(rows['B on'].answer.split(' ').length, 8);
  assert.equal(rows['B on'].answer, rows['B off'].answer);
  assert.equal(await page.getAttribute('#dec-check', 'data-same'), 'true');
  assert.ok(Number(await page.getAttribute('#dec-check', 'data-max-delta')) <= 1e-5);
  assert.equal(await page.locator('#dec-pages .page.shared').count(), 28);
  assert.equal(await page.locator('#dec-pages .page.owner-a').count(), 4); // 48 + 8 tokens after the shared pages
  assert.equal(await page.locator('#dec-pages .page.owner-b').count(), 4);
  await page.fill('#dec-new', '99'); // the form refuses it; run() called directly says why
  assert.equal(await page.evaluate(() => globalThis.llmdsDemo.decoder.run()), null);
  assert.match(await page.textContent('#dec-status'), /New tokens must be an integer in \[1, 32\]/);
  await page.fill('#dec-new', '8');

  // Simulator: overload run; every policy tabulated, three charts drawn; same seed, same run.
  await page.fill('#sim-rate', '13');
  await page.click('#sim button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#sim-status').textContent.includes('requests'));
  assert.equal(await page.locator('#sim-summary tbody tr').count(), 4);
  assert.equal(await page.locator('#sim-summary tr.selected').count(), 1);
  assert.equal(await page.locator('#sim svg.chart').count(), 3);
  assert.ok((await page.locator('#sim-ttft circle').count()) > 100);
  assert.ok((await page.getAttribute('#sim-queue path.series', 'd')).length > 100);
  const table = await texts(page, '#sim-summary tbody tr');
  await page.click('#sim button[type=submit]');
  assert.deepEqual(await texts(page, '#sim-summary tbody tr'), table);
  await page.fill('#sim-seed', '2');
  await page.click('#sim button[type=submit]');
  assert.notDeepEqual(await texts(page, '#sim-summary tbody tr'), table);
  await page.fill('#sim-seed', '1');
  await page.click('#sim button[type=submit]');

  await page.screenshot({ path: `${artifacts}demo-1280.png`, fullPage: true });
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);
  await page.close();
});

test('phone, 390 px: no horizontal scrolling, panels usable', async () => {
  const { page, errors, foreign } = await openDemo(390);
  assert.equal(await page.getAttribute('body', 'data-ready'), 'true');
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 390, 'no horizontal scrolling');
  assert.equal((await hits(page, 'hybrid')).length, 5);
  await page.click('#rag button[data-query="bread rising"]');
  await page.waitForFunction(() => document.querySelector('#rag-status').textContent.includes('bread rising'));
  assert.equal((await hits(page, 'bm25'))[0].title, 'Sourdough bread');
  assert.ok((await page.locator('#kv-pages .page.shared').count()) > 0);
  const chartWidth = Number(await page.getAttribute('#sim-ttft svg', 'width'));
  assert.ok(chartWidth > 250 && chartWidth <= 370, `chart drawn at the phone's width (${chartWidth})`);
  await page.screenshot({ path: `${artifacts}demo-390.png`, fullPage: true });
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);
  await page.close();
});

test('?embedder= plugs in a custom embedder; only same-origin modules', async () => {
  const { page, errors, foreign } = await openDemo(1280, '?embedder=/tests/browser/demo-embedder.mjs');
  assert.equal(await page.getAttribute('body', 'data-ready'), 'true');
  assert.match(await page.textContent('#rag-embedder'), /test bag-of-words embedder/);
  assert.match(await page.textContent('#rag-info'), /64-dimensional/);
  await search(page, 'sourdough bread');
  assert.equal((await hits(page, 'dense'))[0].title, 'Sourdough bread');
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);
  await page.close();

  const bad = await openDemo(1280, '?embedder=https://example.com/embed.mjs');
  assert.equal(await bad.page.getAttribute('body', 'data-ready'), 'error');
  assert.match(await bad.page.textContent('#rag-status'), /must name a module on this origin/);
  assert.deepEqual(bad.foreign, []);
  assert.equal(bad.errors.length, 1); // the panel's failure is reported once
  assert.ok((await bad.page.locator('#kv-pages .page.shared').count()) > 0, 'the other panels still work');
  await bad.page.close();
});

/**
 * Runs in the page, in any engine: waits for the panels, then searches, attaches and forks a KV
 * sequence, runs the decoder's two requests and the simulator through the page's own controls;
 * returns what it saw.
 */
async function demoSmoke() {
  const $ = (sel) => document.querySelector(sel);
  const until = async (what, ok) => {
    for (const end = Date.now() + 15000; !ok(); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > end) throw new Error(`demo smoke: timed out waiting for ${what}`);
    }
  };
  await until('body[data-ready]', () => document.body.dataset.ready);
  const out = { ready: document.body.dataset.ready, engine: $('#engine').textContent, isolated: crossOriginIsolated };
  if (out.ready !== 'true') return out;

  $('#rag-query').value = 'caching prompts';
  $('#rag-form').requestSubmit();
  await until('the search', () => $('#rag-status').textContent.includes('caching prompts'));
  out.top = Object.fromEntries(['bm25', 'dense', 'hybrid'].map((c) => [c, $(`#rag-${c} li[data-doc] strong`)?.textContent]));

  const stat = (name) => Number($(`#kv-stats [data-stat=${name}]`).textContent);
  $('#kv button[data-op=reset]').click();
  $('#kv-seq').value = '1';
  $('#kv-tokens').value = '1..20';
  $('#kv button[data-op=attach]').click();
  $('#kv-target').value = '2';
  $('#kv button[data-op=fork]').click();
  out.kv = { usedPages: stat('usedPages'), sharedPages: stat('sharedPages'), sequences: document.querySelectorAll('#kv-sequences tbody th').length };

  $('#decoder button[type=submit]').click();
  await until('the decoder', () => $('#dec-status').textContent.startsWith('Done'));
  const row = (r) => [...$(`#dec-requests tr[data-request=${r.split(' ')[0]}][data-sharing=${r.split(' ')[1]}]`).querySelectorAll('td[data-col]')]
    .reduce((o, td) => ({ ...o, [td.dataset.col]: td.textContent }), {});
  out.decoder = { cachedTokens: Number(row('B on').cachedTokens), same: row('B on').answer === row('B off').answer && $('#dec-check').dataset.same === 'true' };

  $('#sim-form').requestSubmit();
  out.sim = { rows: document.querySelectorAll('#sim-summary tbody tr').length, charts: document.querySelectorAll('#sim svg.chart').length };
  return out;
}

for (const engine of engines.filter((e) => e.id !== 'chromium')) {
  describe(`${engine.name}: smoke`, { skip: engine.skip }, () => {
    let driver, other;
    before(async () => {
      driver = await engine.load();
      other = await driver.launch();
    });
    after(() => other?.close());

    test('the demo loads without errors; search, KV cache, decoder and simulator work', async () => {
      const { page, errors } = await driver.open(other, `${base}/demo/`);
      const r = await page.evaluate(demoSmoke);
      assert.equal(r.ready, 'true', `the demo did not start: ${JSON.stringify(errors)}`);
      assert.match(r.engine, /wasm/);
      assert.equal(r.isolated, true);
      assert.deepEqual(r.top, { bm25: 'Prompt caching', dense: 'Prompt caching', hybrid: 'Prompt caching' });
      assert.deepEqual(r.kv, { usedPages: 3, sharedPages: 3, sequences: 2 });
      assert.deepEqual(r.decoder, { cachedTokens: 448, same: true });
      assert.deepEqual(r.sim, { rows: 4, charts: 3 });
      assert.deepEqual(errors, []);
      await page.close();
    });
  });
}
