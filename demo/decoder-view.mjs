// SPDX-License-Identifier: MIT
// Decoder panel: the Llama-style decoder of demo/decoder/ (seeded weights) keeps its K/V in a
// KVCache and answers two requests that share a system prompt. The second reuses the first's
// pages; the same request on a cache without prefix sharing is the reference (same logits,
// same answer, more prefill). The page map fills with K/V as the requests run.
import { Decoder, argmax, mulberry32 } from './decoder/dist/index.mjs';
import { duration, h } from './dom.mjs';

/** Small enough to answer in a fraction of a second, big enough that prefill is what costs. */
const CONFIG = { vocab: 512, dim: 128, layers: 4, heads: 8, kvHeads: 2, headDim: 16, hidden: 256, ropeTheta: 10000, eps: 1e-5 };
const SEED = 13;
const PAGE_SIZE = 16;
const MAX_PAGES = 80;
const A = 1; // sequence ids of the two requests
const B = 2;

const tokens = (n, seed) => {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => Math.floor(r() * CONFIG.vocab));
};

/** Lets the browser paint between phases, so the page map visibly fills. */
const frame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

function maxDelta(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

export function mountDecoder(root, { KVCache }) {
  const $ = (sel) => root.querySelector(sel);
  const model = Decoder.fromSeed(CONFIG, SEED);
  const makeCache = (sharing = true) => new KVCache({ pageSize: PAGE_SIZE, maxPages: MAX_PAGES, enablePrefixSharing: sharing, kv: model.kvOptions() });
  let cache = makeCache();
  let running = false;
  $('#dec-config').textContent = `dim ${CONFIG.dim}, ${CONFIG.layers} layers, ${CONFIG.heads} query / ${CONFIG.kvHeads} KV heads, vocabulary ${CONFIG.vocab}, pages of ${PAGE_SIZE} tokens`;
  const say = (text, isError = false) => {
    $('#dec-status').textContent = text;
    $('#dec-status').classList.toggle('error', isError);
  };

  const read = (id, min, max) => {
    const n = Number($(id).value);
    if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`${$(id).labels[0].firstChild.textContent.trim()} must be an integer in [${min}, ${max}]`);
    return n;
  };

  /** Prefill (timed) then greedy decode of `maxNew` tokens; `paint` after each phase. */
  async function answer(session, seq, prompt, maxNew, paint) {
    const t0 = performance.now();
    const first = session.prefill(seq, prompt);
    const prefillMs = performance.now() - t0;
    const out = [argmax(first.logits)];
    const logits = [first.logits];
    await paint();
    while (out.length < maxNew) {
      const step = session.decodeStep(seq, out.at(-1));
      logits.push(step.logits);
      out.push(argmax(step.logits));
      if (out.length % 4 === 0) await paint();
    }
    await paint();
    return { plan: first.plan, computed: first.computed, prefillMs, tokens: out, logits };
  }

  async function run() {
    if (running) return null;
    running = true;
    try {
      const system = tokens(read('#dec-system', PAGE_SIZE, 1024), 1);
      const userLength = read('#dec-user', 1, 256);
      const maxNew = read('#dec-new', 1, 32);
      const prompts = { [A]: [...system, ...tokens(userLength, 2)], [B]: [...system, ...tokens(userLength, 3)] };
      const need = Math.ceil((prompts[A].length + maxNew) / PAGE_SIZE) * 2;
      if (need > MAX_PAGES) throw new RangeError(`two requests of ${prompts[A].length + maxNew} tokens need up to ${need} pages; the cache has ${MAX_PAGES}`);
      cache.dispose();
      cache = makeCache();
      const session = model.session(cache);
      const paint = async () => (renderPages(), await frame());
      $('#dec-requests tbody').replaceChildren();
      say('Request A: prefill of every position…');
      const a = await answer(session, A, prompts[A], maxNew, paint);
      addRow('A', 'on', a);
      say('Request B: reuses A\'s system prompt pages…');
      const b = await answer(session, B, prompts[B], maxNew, paint);
      addRow('B', 'on', b);
      say('Request B again, on a cache without prefix sharing…');
      await frame();
      const plain = makeCache(false);
      let ref;
      try {
        ref = await answer(model.session(plain), B, prompts[B], maxNew, frame);
      } finally {
        plain.dispose();
      }
      addRow('B', 'off', ref);
      const delta = Math.max(...b.logits.map((l, i) => maxDelta(l, ref.logits[i])));
      const same = b.tokens.join() === ref.tokens.join();
      const check = $('#dec-check');
      check.dataset.same = String(same);
      check.dataset.maxDelta = String(delta);
      check.textContent = `Request B with and without the prefix cache: ${same ? 'the same answer' : 'DIFFERENT answers'}, max |Δlogit| ${delta.toExponential(1)} over ${maxNew} steps.`;
      check.classList.toggle('error', !same);
      say(`Done: B skipped the prefill of ${b.plan.cachedTokens} of ${prompts[B].length} prompt tokens; its prefill took ${duration(b.prefillMs)} against ${duration(ref.prefillMs)} (${(ref.prefillMs / b.prefillMs).toFixed(1)}×).`);
      return { a, b, ref, delta, same };
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      say(e.message, true);
      return null;
    } finally {
      running = false;
    }
  }

  function addRow(name, sharing, r) {
    const { plan } = r;
    const copies = [];
    for (let i = 0; i < plan.copies.length; i += 2) copies.push(`${plan.copies[i]}→${plan.copies[i + 1]}`);
    const cells = {
      cachedTokens: plan.cachedTokens,
      computeFrom: plan.computeFrom,
      newPages: plan.newPages.length ? `${plan.newPages.length} (p${plan.newPages[0]}…p${plan.newPages.at(-1)})` : '0',
      copies: copies.join(' ') || 'none',
      computed: r.computed,
      prefill: duration(r.prefillMs),
      answer: r.tokens.join(' '),
    };
    $('#dec-requests tbody').append(
      h('tr', { 'data-request': name, 'data-sharing': sharing, class: sharing === 'off' ? 'reference' : null },
        h('th', { scope: 'row' }, name), h('td', null, sharing),
        Object.entries(cells).map(([k, v]) => h('td', { 'data-col': k, class: k === 'answer' ? 'answer' : null }, String(v)))),
    );
  }

  /** Pages coloured by owner (A, B, both), filled in proportion to the positions they hold. */
  function renderPages() {
    const owners = new Map();
    for (const seq of [A, B]) {
      if (!cache.has(seq)) continue;
      const length = cache.get(seq).length;
      cache.blockTable(seq).forEach((p, i) => {
        const o = owners.get(p) ?? { seqs: [], fill: 0 };
        o.seqs.push(seq);
        o.fill = Math.max(o.fill, Math.min(PAGE_SIZE, length - i * PAGE_SIZE));
        owners.set(p, o);
      });
    }
    const cells = [];
    for (let p = 0; p < MAX_PAGES; p++) {
      const o = owners.get(p);
      const kind = !o ? 'free' : o.seqs.length > 1 ? 'shared' : o.seqs[0] === A ? 'owner-a' : 'owner-b';
      const title = !o ? `page ${p}: free` : `page ${p}: ${o.fill} of ${PAGE_SIZE} positions of K/V, request${o.seqs.length > 1 ? 's A and B' : o.seqs[0] === A ? ' A' : ' B'}`;
      const fill = o ? Math.round((100 * o.fill) / PAGE_SIZE) : 0;
      cells.push(h('div', { class: `page ${kind}`, title, style: `--fill: ${fill}%` }, h('span', null, String(p))));
    }
    const stats = cache.stats();
    const map = $('#dec-pages');
    map.replaceChildren(...cells);
    map.setAttribute('aria-label', `Page map: ${owners.size} pages hold K/V, ${stats.sharedPages} shared by both requests; ${(stats.payloadBytes / 1024).toFixed(0)} KB of K/V allocated.`);
    $('#dec-payload').textContent = `${stats.usedPages} pages in use, ${stats.sharedPages} shared; payloadBytes ${(stats.payloadBytes / 1024).toFixed(0)} KB`;
  }

  $('#dec-form').addEventListener('submit', (e) => {
    e.preventDefault();
    run().catch(reportError);
  });
  renderPages();
  say('Press “Run both requests”: request A, then B sharing its system prompt, then B on a cache without prefix sharing.');
  return { run, model, get cache() { return cache; } };
}
