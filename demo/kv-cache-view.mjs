// SPDX-License-Identifier: MIT
// KV cache visualiser: drive a small KVCache and draw its sequences, page map and stats.
const PAGE_SIZE = 8;
const MAX_PAGES = 48;

export function mountKVCache(root, { KVCache, LlmdsError }) {
  const $ = (sel) => root.querySelector(sel);
  let cache = new KVCache({ pageSize: PAGE_SIZE, maxPages: MAX_PAGES });
  const seqIds = new Set();
  $('#kv-page-size').textContent = String(PAGE_SIZE);

  const parseTokens = () => $('#kv-tokens').value.trim().split(/[\s,]+/).filter(Boolean).map(Number);
  const say = (text, isError = false) => {
    $('#kv-message').textContent = text;
    $('#kv-message').classList.toggle('error', isError);
  };

  const ops = {
    attach: (seq) => (cache.attach(seq, parseTokens()), seqIds.add(seq), `attached seq ${seq}`),
    append: (seq) => (cache.append(seq, parseTokens()), `appended to seq ${seq}`),
    fork: (seq) => {
      const target = Number($('#kv-target').value);
      cache.fork(seq, target);
      seqIds.add(target);
      return `forked seq ${seq} into seq ${target}`;
    },
    detach: (seq) => (cache.detach(seq), seqIds.delete(seq), `detached seq ${seq}`),
    reset: () => {
      cache.dispose();
      cache = new KVCache({ pageSize: PAGE_SIZE, maxPages: MAX_PAGES });
      seqIds.clear();
      return 'reset';
    },
  };

  function run(op) {
    try {
      say(ops[op](Number($('#kv-seq').value)));
    } catch (e) {
      if (!(e instanceof LlmdsError)) throw e;
      say(`${e.code}: ${e.message}`, true);
    }
    render();
  }

  function render() {
    const rows = [];
    for (const id of [...seqIds].sort((a, b) => a - b)) {
      const tokens = cache.get(id);
      if (!tokens) continue;
      const table = cache.blockTable(id);
      rows.push(`<tr><th scope="row">${id}</th><td class="tokens">${tokens.join(' ')}</td><td>${table.join(', ')}</td></tr>`);
    }
    root.querySelector('#kv-sequences tbody').innerHTML = rows.join('');
    const stats = cache.stats();
    const states = cache.pageStates();
    const cells = [];
    for (let p = 0; p < MAX_PAGES; p++) {
      const n = states[p] ?? 0;
      const kind = n > 1 ? 'shared' : n === 1 ? 'used' : n < 0 ? 'cached' : 'free';
      const label = n > 1 ? `${p}×${n}` : String(p);
      const title = n < 0 ? `page ${p}: cached prefix (evicted least-recently-used first)` : `page ${p}: refcount ${n}`;
      cells.push(`<div class="page ${kind}" title="${title}">${label}</div>`);
    }
    const map = $('#kv-pages');
    map.innerHTML = cells.join('');
    map.setAttribute('aria-label', `page map: ${stats.usedPages} used, ${stats.sharedPages} shared, ${stats.cachedPages} cached, of ${stats.totalPages}`);
    $('#kv-stats').innerHTML = Object.entries(stats)
      .map(([k, v]) => `<div><dt>${k}</dt><dd data-stat="${k}">${v}</dd></div>`)
      .join('');
  }

  root.querySelector('#kv-form').addEventListener('submit', (e) => {
    e.preventDefault();
    run('attach');
  });
  for (const b of root.querySelectorAll('button[data-op]:not([type=submit])')) b.addEventListener('click', () => run(b.dataset.op));
  render();
}
