// SPDX-License-Identifier: MIT
// RAG playground panel: index the corpus at load, then show BM25, dense and hybrid results side
// by side with scores and per-query timings.
import { buildRetriever } from './retrieval.mjs';
import { bytes, duration, h } from './dom.mjs';

/** The text with the query's words (and their variants sharing 4+ leading letters) marked. */
function highlight(text, query) {
  const stems = [...query.toLowerCase().matchAll(/[\p{L}\p{Nd}]+/gu)].map(([w]) => w.slice(0, 4)).filter((w) => w.length >= 3);
  if (!stems.length) return [text];
  return text.split(/([\p{L}\p{Nd}]+)/u).map((part) => (stems.some((st) => part.toLowerCase().startsWith(st)) ? h('mark', null, part) : part));
}

function hitList(ol, items, query, kind) {
  ol.replaceChildren(
    ...items.map((it) =>
      h(
        'li',
        { 'data-doc': it.id },
        h('div', { class: 'hit-head' }, h('strong', null, it.title), h('span', { class: 'score', title: kind === 'dense' ? 'cosine similarity' : 'score' }, it.score.toFixed(kind === 'hybrid' && it.score < 0.1 ? 4 : 3))),
        h('p', null, highlight(it.text, query)),
        h(
          'p',
          { class: 'meta' },
          h('span', { class: 'topic' }, it.topic),
          kind === 'hybrid' && [
            it.bm25Rank ? h('span', { class: 'src bm25', title: `rank ${it.bm25Rank} in BM25` }, `BM25 #${it.bm25Rank}`) : null,
            it.denseRank ? h('span', { class: 'src dense', title: `rank ${it.denseRank} in dense` }, `dense #${it.denseRank}`) : null,
          ],
        ),
      ),
    ),
  );
  if (!items.length) ol.replaceChildren(h('li', { class: 'none' }, kind === 'dense' ? 'No dense results (the query has no embeddable words).' : 'No matching documents.'));
}

export async function mountRAG(root, llmds, { corpus, embedder }) {
  const $ = (sel) => root.querySelector(sel);
  const status = $('#rag-status');
  $('#rag-count').textContent = String(corpus.length);
  $('#rag-embedder').textContent = embedder.builtin ? `the built-in embedder (${embedder.name})` : `${embedder.name ?? 'a custom embedder'}`;

  const retriever = await buildRetriever(llmds, corpus, embedder, { onProgress: (msg) => (status.textContent = msg) });
  const { info } = retriever;
  $('#rag-hybrid-how').textContent = info.hybrid === 'RetrievalPipeline' ? 'RetrievalPipeline' : 'fused in the page';
  const t = info.timings;
  $('#rag-info').textContent =
    `Indexed ${info.documents} documents (${info.dim}-dimensional vectors) at load: embedding ${duration(t.embedMs)}, ` +
    `BM25 ${duration(t.bm25Ms)} (${bytes(info.bm25Bytes)}), HNSW ${duration(t.hnswMs)} (${bytes(info.hnswBytes)})` +
    (t.pipelineMs !== undefined ? `, RetrievalPipeline ${duration(t.pipelineMs)}` : '') +
    `. Hybrid: ${info.hybrid === 'RetrievalPipeline' ? 'the package’s RetrievalPipeline' : 'the BM25 and dense top 50 fused in the page (scores divided by each list’s best)'}.` +
    (info.pipelineError ? ` (RetrievalPipeline failed: ${info.pipelineError}; using the page’s fusion.)` : '') +
    (info.hybrid === 'RetrievalPipeline'
      ? ' BM25 and dense timings are means over repeated runs; the hybrid one is the query’s first run (a repeat is answered by the pipeline’s result cache).'
      : ' Timings are means over repeated runs.');

  const alpha = $('#rag-alpha');
  let seq = 0;
  async function run() {
    const query = $('#rag-query').value.trim();
    const mine = ++seq;
    if (!query) {
      for (const k of ['bm25', 'dense', 'hybrid']) $(`#rag-${k}`).replaceChildren(), ($(`#rag-${k}-time`).textContent = '');
      status.textContent = 'Type a query.';
      return;
    }
    const opts = { topK: Number($('#rag-k').value), alpha: Number(alpha.value), method: $('#rag-fusion').value };
    let r;
    try {
      r = await retriever.search(query, opts);
    } catch (e) {
      status.textContent = `Search failed: ${e.message}`;
      throw e;
    }
    if (mine !== seq) return; // a newer query is already running
    hitList($('#rag-bm25'), r.bm25.items, query, 'bm25');
    hitList($('#rag-dense'), r.dense.items, query, 'dense');
    hitList($('#rag-hybrid'), r.hybrid.items, query, 'hybrid');
    $('#rag-bm25-time').textContent = duration(r.bm25.ms);
    $('#rag-dense-time').textContent = `${duration(r.dense.embedMs + r.dense.ms)}`;
    $('#rag-dense-time').title = `embed ${duration(r.dense.embedMs)} + HNSW search ${duration(r.dense.ms)}`;
    const cached = r.hybrid.cachedMs !== undefined ? `, repeated query ${duration(r.hybrid.cachedMs)} from the result cache` : '';
    $('#rag-hybrid-time').textContent = duration(r.hybrid.ms);
    $('#rag-hybrid-time').title = `embed + both searches + fusion${cached}`;
    status.textContent = `“${query}”: BM25 ${duration(r.bm25.ms)}; dense ${duration(r.dense.embedMs)} embed + ${duration(r.dense.ms)} HNSW search; hybrid ${duration(r.hybrid.ms)} in total${cached}.`;
  }

  let timer;
  const soon = () => (clearTimeout(timer), (timer = setTimeout(run, 150)));
  $('#rag-form').addEventListener('submit', (e) => (e.preventDefault(), clearTimeout(timer), run()));
  $('#rag-query').addEventListener('input', soon);
  for (const el of [$('#rag-k'), $('#rag-fusion')]) el.addEventListener('change', run);
  alpha.addEventListener('input', () => (($('#rag-alpha-out').textContent = Number(alpha.value).toFixed(1)), soon()));
  for (const b of root.querySelectorAll('button[data-query]')) {
    b.addEventListener('click', () => (($('#rag-query').value = b.dataset.query), clearTimeout(timer), run()));
  }
  await run();
  return retriever;
}
