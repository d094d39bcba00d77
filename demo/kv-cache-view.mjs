// SPDX-License-Identifier: MIT
// KV cache visualiser: drive a small KVCache and draw its sequences, page map and stats.
import { h } from './dom.mjs';

const PAGE_SIZE = 8;
const MAX_PAGES = 48;
const LOG_LINES = 12;

/** "1..4 9" -> [1, 2, 3, 4, 9]. Throws a RangeError naming the bad part. */
export function parseTokens(text) {
  const out = [];
  for (const part of text.trim().split(/[\s,]+/).filter(Boolean)) {
    const m = /^(\d+)(?:\.\.(\d+))?$/.exec(part);
    if (!m) throw new RangeError(`"${part}" is not a token id or a range a..b`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (b < a || b - a > 4096) throw new RangeError(`range "${part}" must be increasing and at most 4096 long`);
    for (let t = a; t <= b; t++) out.push(t);
  }
  return out;
}

/** [1, 2, 3, 9] -> "1..3 9": how the log shows token lists. */
function compact(tokens) {
  const parts = [];
  for (let i = 0; i < tokens.length; ) {
    let j = i;
    while (j + 1 < tokens.length && tokens[j + 1] === tokens[j] + 1) j++;
    parts.push(j - i >= 2 ? `${tokens[i]}..${tokens[j]}` : tokens.slice(i, j + 1).join(' '));
    i = j + 1;
  }
  return parts.join(' ');
}

const nTokens = (n) => `${n} token${n === 1 ? '' : 's'}`;
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const SYSTEM = range(1, 24); // a 24-token "system prompt": three full pages

/** Scenarios: lists of [op, seq, tokens | target], each with a caption shown before it runs. */
const SCENARIOS = {
  shared: {
    caption: 'Three requests share a 24-token system prompt: its 3 pages are stored once, refcount 3.',
    steps: [
      ['attach', 1, [...SYSTEM, ...range(101, 106)]],
      ['attach', 2, [...SYSTEM, ...range(201, 204)]],
      ['attach', 3, [...SYSTEM, ...range(301, 310)]],
      ['match', 4, [...SYSTEM, 999]],
    ],
  },
  fork: {
    caption: 'Parallel sampling: fork shares every page; appending to the fork copies only the shared tail page.',
    steps: [
      ['attach', 1, range(1, 20)],
      ['fork', 1, 2],
      ['fork', 1, 3],
      ['append', 2, [501, 502]],
      ['append', 3, [601]],
    ],
  },
  evict: {
    caption: 'Finished requests leave their pages cached; a large new request evicts the least recently used ones.',
    steps: [
      ['attach', 1, range(1000, 1119)],
      ['attach', 2, range(2000, 2119)],
      ['attach', 3, range(3000, 3079)],
      ['detach', 1],
      ['detach', 2],
      ['match', 9, range(2000, 2119)],
      ['attach', 4, range(4000, 4199)],
    ],
  },
};

export function mountKVCache(root, { KVCache, LlmdsError }) {
  const $ = (sel) => root.querySelector(sel);
  const make = () => new KVCache({ pageSize: PAGE_SIZE, maxPages: MAX_PAGES });
  let cache = make();
  let seqIds = new Set();
  let before = { states: new Int32Array(0), stats: cache.stats() };
  $('#kv-page-size').textContent = String(PAGE_SIZE);
  $('#kv-max-pages').textContent = String(MAX_PAGES);

  const say = (text, isError = false) => {
    $('#kv-message').textContent = text;
    $('#kv-message').classList.toggle('error', isError);
  };
  let calls = 0;
  const log = (line, isError = false) => {
    const ol = $('#kv-log');
    ol.prepend(h('li', { class: isError ? 'error' : null, value: isError ? null : ++calls }, h('code', null, line)));
    while (ol.children.length > LOG_LINES) ol.lastChild.remove();
  };

  /** Runs one operation; returns the message. Errors from the cache propagate. */
  function apply(op, seq, arg) {
    switch (op) {
      case 'attach':
        log(`cache.attach(${seq}, [${compact(arg)}])`);
        cache.attach(seq, arg);
        seqIds.add(seq);
        return `Attached ${nTokens(arg.length)} as sequence ${seq}.`;
      case 'append':
        log(`cache.append(${seq}, [${compact(arg)}])`);
        cache.append(seq, arg);
        return `Appended ${nTokens(arg.length)} to sequence ${seq}.`;
      case 'fork':
        log(`cache.fork(${seq}, ${arg})`);
        cache.fork(seq, arg);
        seqIds.add(arg);
        return `Forked sequence ${seq} into ${arg}: no tokens copied.`;
      case 'detach':
        log(`cache.detach(${seq})`);
        cache.detach(seq);
        seqIds.delete(seq);
        return `Detached sequence ${seq}; its full pages stay cached as prefixes.`;
      case 'match': {
        const n = cache.matchPrefix(arg);
        log(`cache.matchPrefix([${compact(arg)}]) → ${n}`);
        return `${n} of these ${nTokens(arg.length)} are already cached: prefill can skip them.`;
      }
      case 'reset':
        log('cache.dispose(); new KVCache({ pageSize: 8, maxPages: 48 })');
        cache.dispose();
        cache = make();
        seqIds = new Set();
        return 'Reset: an empty cache.';
      default:
        throw new Error(`unknown op ${op}`);
    }
  }

  function run(op, seq, arg) {
    const snapshot = { states: cache.pageStates(), stats: cache.stats() };
    try {
      say(apply(op, seq, arg));
    } catch (e) {
      if (!(e instanceof LlmdsError) && !(e instanceof RangeError)) throw e;
      const msg = e instanceof LlmdsError ? `${e.code}: ${e.message}` : e.message;
      log(`  ✗ ${msg}`, true);
      say(msg, true);
    }
    before = op === 'reset' ? { states: new Int32Array(0), stats: cache.stats() } : snapshot;
    render();
  }

  /** The form's operation, reading its fields. */
  function runForm(op) {
    const seq = Number($('#kv-seq').value);
    try {
      if (op === 'attach' || op === 'append' || op === 'match') return run(op, seq, parseTokens($('#kv-tokens').value));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      say(e.message, true);
      return;
    }
    run(op, seq, op === 'fork' ? Number($('#kv-target').value) : undefined);
  }

  function runScenario(name) {
    const sc = SCENARIOS[name];
    run('reset');
    for (const [op, seq, arg] of sc.steps) run(op, seq, arg);
    say(`${sc.caption} ${$('#kv-message').textContent}`);
  }

  function render() {
    const states = cache.pageStates();
    const owners = new Map();
    const rows = [];
    for (const id of [...seqIds].sort((a, b) => a - b)) {
      const tokens = cache.get(id);
      if (!tokens) continue;
      const table = cache.blockTable(id);
      table.forEach((p) => owners.set(p, [...(owners.get(p) ?? []), id]));
      const pages = [...table].map((p, i) =>
        h('span', { class: `pg ${kindOf(states[p])}` }, h('b', { title: `page ${p}` }, `p${p}`), ' ', compact([...tokens.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)])),
      );
      rows.push(h('tr', null, h('th', { scope: 'row' }, String(id)), h('td', { class: 'tokens' }, pages)));
    }
    $('#kv-sequences tbody').replaceChildren(...rows);
    $('#kv-empty').hidden = rows.length > 0;

    const cells = [];
    for (let p = 0; p < MAX_PAGES; p++) {
      const n = states[p] ?? 0;
      const kind = kindOf(n);
      const changed = n !== (before.states[p] ?? 0);
      const who = owners.get(p);
      const title =
        n < 0 ? `page ${p}: cached prefix, no sequence (evicted least recently used first)`
        : n === 0 ? `page ${p}: free`
        : `page ${p}: refcount ${n}, sequence${who?.length > 1 ? 's' : ''} ${who?.join(', ') ?? '?'}`;
      cells.push(h('div', { class: `page ${kind}${changed ? ' changed' : ''}`, title }, h('span', null, String(p)), n > 1 ? h('small', null, `×${n}`) : null));
    }
    const stats = cache.stats();
    const map = $('#kv-pages');
    map.replaceChildren(...cells);
    map.setAttribute('aria-label', `Page map of ${stats.totalPages} pages: ${stats.usedPages} in use, of which ${stats.sharedPages} shared; ${stats.cachedPages} cached prefixes; ${stats.freePages - stats.cachedPages} free.`);

    $('#kv-stats').replaceChildren(
      ...Object.entries(stats).map(([k, v]) =>
        h('div', { class: v !== before.stats[k] ? 'changed' : null }, h('dt', null, k), h('dd', { 'data-stat': k }, String(v))),
      ),
    );
  }

  $('#kv-form').addEventListener('submit', (e) => (e.preventDefault(), runForm('attach')));
  for (const b of root.querySelectorAll('#kv-form button[data-op]:not([type=submit])')) b.addEventListener('click', () => runForm(b.dataset.op));
  for (const b of root.querySelectorAll('button[data-scenario]')) b.addEventListener('click', () => runScenario(b.dataset.scenario));
  runScenario('shared');
  return { run, runScenario, get cache() { return cache; } };
}

function kindOf(n) {
  return n > 1 ? 'shared' : n === 1 ? 'used' : n < 0 ? 'cached' : 'free';
}
