// SPDX-License-Identifier: MIT
// Turns bench/results/hnsw.json (node bench/hnsw/hnsw.mjs) into bench/hnsw-recall-qps.svg: one
// recall@10 vs QPS panel (log scale) per data set. Hand-written SVG, no dependencies.
//   node bench/hnsw/plot.mjs [results.json] [out.svg]
//   node bench/hnsw/plot.mjs --markdown [results.json]   (prints the bench/README.md tables instead)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const markdown = process.argv.includes('--markdown');
const args = process.argv.slice(2).filter((a) => a !== '--markdown');
const input = args[0] ?? fileURLToPath(new URL('../results/hnsw.json', import.meta.url));
const output = args[1] ?? fileURLToPath(new URL('../hnsw-recall-qps.svg', import.meta.url));
const data = JSON.parse(readFileSync(input, 'utf8'));
const basis = data.params.basis ?? 'cpu';
const qpsOf = (p) => (basis === 'cpu' ? p.cpuQps : p.qps);

const STYLE = {
  llmds: { label: 'llmds (wasm, JS API)', color: '#d62728', width: 2.5 },
  llmdsNative: { label: 'llmds (native C++)', color: '#d62728', width: 1.5, dash: '6 4', hollow: true },
  hnswlibWasm: { label: 'hnswlib-wasm 0.8.2', color: '#1f77b4', width: 2 },
  hnswlibNode: { label: 'hnswlib-node 3.0.0 (native)', color: '#2ca02c', width: 2 },
  bruteForce: { label: 'plain-JS brute force', color: '#555555', width: 0 }, // text only
};

const W = 520, H = 460; // one panel
const PAD = { left: 70, right: 20, top: 48, bottom: 56 };
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v) => (v >= 1000 ? `${v / 1000}k` : String(v));

function panel(set, ox) {
  // The axes fit the HNSW curves; the brute force (orders of magnitude slower) is noted in text.
  const libs = set.libraries.filter((l) => STYLE[l.library] && l.library !== 'bruteForce');
  const bf = set.libraries.find((l) => l.library === 'bruteForce')?.points[0];
  const pts = libs.flatMap((l) => l.points);
  const minRecall = Math.min(...pts.map((p) => p.recall));
  const x0 = Math.max(0, Math.floor(minRecall * 100) / 100 - 0.005), x1 = 1.002;
  const qs = pts.map(qpsOf);
  const y0 = Math.log10(Math.min(...qs) / 1.4), y1 = Math.log10(Math.max(...qs) * 1.4);
  const pw = W - PAD.left - PAD.right, ph = H - PAD.top - PAD.bottom;
  const sx = (r) => ox + PAD.left + ((r - x0) / (x1 - x0)) * pw;
  const sy = (q) => PAD.top + ph - ((Math.log10(q) - y0) / (y1 - y0)) * ph;
  const out = [];
  out.push(`<text x="${ox + W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(set.label)} — ${set.nBase.toLocaleString('en-US')} × ${set.dim}, ${set.metric}</text>`);
  // grid: recall every 0.01 (labels every 0.02 or 0.01), QPS decades with 2 and 5
  const step = x1 - x0 > 0.12 ? 0.02 : 0.01;
  for (let r = Math.ceil(x0 / 0.01) * 0.01; r <= 1.0001; r += 0.01) {
    const x = sx(r).toFixed(1);
    const major = Math.abs(r / step - Math.round(r / step)) < 1e-6;
    out.push(`<line x1="${x}" y1="${PAD.top}" x2="${x}" y2="${PAD.top + ph}" stroke="#ddd" stroke-width="${major ? 1 : 0.5}"/>`);
    if (major) out.push(`<text x="${x}" y="${PAD.top + ph + 18}" text-anchor="middle" font-size="11">${r.toFixed(2)}</text>`);
  }
  for (let e = Math.floor(y0); e <= Math.ceil(y1); e++) {
    for (const m of [1, 2, 5]) {
      const q = m * 10 ** e;
      if (Math.log10(q) > y1 || Math.log10(q) < y0) continue;
      const y = sy(q).toFixed(1);
      out.push(`<line x1="${ox + PAD.left}" y1="${y}" x2="${ox + PAD.left + pw}" y2="${y}" stroke="#ddd" stroke-width="${m === 1 ? 1 : 0.5}"/>`);
      out.push(`<text x="${ox + PAD.left - 6}" y="${(+y + 4).toFixed(1)}" text-anchor="end" font-size="11">${fmt(q)}</text>`);
    }
  }
  out.push(`<rect x="${ox + PAD.left}" y="${PAD.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${ox + PAD.left + pw / 2}" y="${H - 14}" text-anchor="middle" font-size="12">recall@${data.params.k}</text>`);
  out.push(`<text transform="translate(${ox + 16} ${PAD.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">queries per ${basis === 'cpu' ? 'CPU ' : ''}second (log)</text>`);
  if (bf) {
    out.push(`<text x="${ox + PAD.left + 8}" y="${PAD.top + ph - 8}" font-size="11" fill="${STYLE.bruteForce.color}">plain-JS brute force: ${qpsOf(bf).toFixed(1)} QPS at recall ${bf.recall.toFixed(3)}</text>`);
  }
  for (const l of libs) {
    const st = STYLE[l.library];
    const ps = l.points.slice().sort((a, b) => (a.efSearch ?? 0) - (b.efSearch ?? 0));
    if (ps.length > 1) {
      const d = ps.map((p, i) => `${i ? 'L' : 'M'}${sx(p.recall).toFixed(1)},${sy(qpsOf(p)).toFixed(1)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${st.color}" stroke-width="${st.width}"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/>`);
    }
    for (const p of ps) {
      const x = sx(p.recall).toFixed(1), y = sy(qpsOf(p)).toFixed(1);
      out.push(`<circle cx="${x}" cy="${y}" r="3.2" fill="${st.hollow ? 'white' : st.color}" stroke="${st.color}" stroke-width="1.3"><title>${esc(st.label)} efSearch ${p.efSearch}: recall ${p.recall.toFixed(4)}, ${Math.round(qpsOf(p))} QPS</title></circle>`);
    }
    if (l.library === 'llmds') {
      for (const p of ps) {
        out.push(`<text x="${(sx(p.recall) + 5).toFixed(1)}" y="${(sy(qpsOf(p)) - 6).toFixed(1)}" font-size="9" fill="${st.color}">${p.efSearch}</text>`);
      }
    }
  }
  return out.join('\n');
}

const sets = data.sets;
if (markdown) {
  printMarkdown();
  process.exit(0);
}
const totalW = W * sets.length;
const legendY = H + 8;
const legend = Object.entries(STYLE).filter(([k]) => k !== 'bruteForce').map(([, st], i) => {
  const x = 20 + (i % 4) * 260, y = legendY + 18 + Math.floor(i / 4) * 20;
  const mark = `<line x1="${x}" y1="${y}" x2="${x + 30}" y2="${y}" stroke="${st.color}" stroke-width="${st.width}"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/><circle cx="${x + 15}" cy="${y}" r="3.2" fill="${st.hollow ? 'white' : st.color}" stroke="${st.color}"/>`;
  return `${mark}<text x="${x + 38}" y="${y + 4}" font-size="12">${esc(st.label)}</text>`;
}).join('\n');
const m = data.meta ?? {};
const note = `M=${data.params.M}, efConstruction=${data.params.efConstruction}, efSearch ${data.params.efSearch.join(', ')} (numbers by the llmds points); ` +
  `single-threaded, ${basis === 'cpu' ? 'QPS per CPU second of the benchmark process' : 'wall-clock QPS'}; Node ${m.node ?? '?'}, ${m.date ? m.date.slice(0, 10) : ''}${m.quick ? ', --quick' : ''}`;
const totalH = legendY + 56;
const svg = `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${totalW}" height="${totalH}" viewBox="0 0 ${totalW} ${totalH}" font-family="Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="white"/>
${sets.map((s, i) => panel(s, i * W)).join('\n')}
${legend}
<text x="20" y="${totalH - 8}" font-size="11" fill="#444">${esc(note)}</text>
</svg>
`;
writeFileSync(output, svg);
console.log(`written ${output}`);

/** The README tables: build, recall/QPS per efSearch, targets, from one results file. */
function printMarkdown() {
  const n = (v, d = 0) => (v === undefined || v === null ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
  const x = (v) => (v === undefined || v === null ? '–' : `${v.toFixed(2)}×`);
  const by = (set, key) => set.libraries.find((l) => l.library === key);
  const names = ['llmds', 'hnswlibWasm', 'hnswlibNode', 'llmdsNative'];
  const lines = [];
  lines.push(`| library | ${sets.map((s) => `${s.label}: vectors/CPU s (wall s)`).join(' | ')} |`);
  lines.push(`|---|${sets.map(() => '---|').join('')}`);
  for (const key of names) {
    lines.push(`| ${STYLE[key].label} | ${sets.map((s) => {
      const b = by(s, key)?.build;
      return b ? `${n(b.vectorsPerCpuSecond)} (${n(b.seconds, 1)})` : '–';
    }).join(' | ')} |`);
  }
  for (const s of sets) {
    lines.push('', `${s.label} (${n(s.nBase)} × ${s.dim}, ${s.metric}, ${n(s.nQueries)} queries): recall@${data.params.k} / QPS per CPU second`, '');
    lines.push('| efSearch | llmds (wasm, JS API) | searchBatch | hnswlib-wasm | hnswlib-node | llmds native |');
    lines.push('|---|---|---|---|---|---|');
    for (const ef of data.params.efSearch) {
      const p = (key) => by(s, key)?.points.find((q) => q.efSearch === ef);
      const cell = (q) => (q ? `${q.recall.toFixed(4)} / ${n(qpsOf(q))}` : '–');
      const b = p('llmds');
      lines.push(`| ${ef} | ${cell(b)} | ${b ? n(basis === 'cpu' ? b.batchCpuQps : b.batchQps) : '–'} | ${cell(p('hnswlibWasm'))} | ${cell(p('hnswlibNode'))} | ${cell(p('llmdsNative'))} |`);
    }
    const bf = by(s, 'bruteForce')?.points[0];
    if (bf) lines.push(`| brute force (plain JS) | ${bf.recall.toFixed(4)} / ${n(qpsOf(bf), 1)} | | | | |`);
  }
  lines.push('', `| target (llmds through the JS API vs hnswlib-wasm, same run) | ${sets.map((s) => s.label).join(' | ')} |`);
  lines.push(`|---|${sets.map(() => '---|').join('')}`);
  const row = (label, f) => lines.push(`| ${label} | ${sets.map((s) => f(s.targets)).join(' | ')} |`);
  const ok = (b) => (b ? 'met' : '**not met**');
  row('build rate ≥ 1.5×', (t) => `${x(t.vsHnswlibWasm.build.ratio)} (${n(t.vsHnswlibWasm.build.llmds)} vs ${n(t.vsHnswlibWasm.build.hnswlibWasm)}/s): ${ok(t.vsHnswlibWasm.build.ratio >= 1.5)}`);
  for (const rc of ['0.9', '0.95', '0.99']) {
    row(`QPS ≥ 2× at recall ${rc}`, (t) => {
      const q = t.vsHnswlibWasm.qps[rc];
      return q ? `${x(q.ratio)} (${n(q.a)} vs ${n(q.b)})${q.atLeast ? '¹' : ''}: ${ok(q.ratio >= 2)}` : 'not reached';
    });
  }
  row('memory: `stats().bytes` ≤ 1.2× (vectors + links)', (t) => `${x(t.memory.statsRatio)} (${n(t.memory.statsBytes / 2 ** 20, 1)} MiB): ${ok(t.memory.statsRatio <= 1.2)}`);
  row('memory: wasm heap growth ≤ 1.2× (vectors + links)', (t) => `${x(t.memory.heapRatio)} (${n(t.memory.wasmHeapGrowthBytes / 2 ** 20, 1)} MiB): ${ok(t.memory.heapRatio <= 1.2)}`);
  row('(vectors + links)', (t) => `${n((t.memory.rawVectorBytes + t.memory.linkBytes) / 2 ** 20, 1)} MiB`);
  row('hnswlib-wasm heap growth (info)', (t) => `${x(t.memory.hnswlibWasmHeapRatio)} (${n(t.memory.hnswlibWasmHeapGrowthBytes / 2 ** 20, 1)} MiB)`);
  row('vs hnswlib-node (native): build / QPS at 0.95 / 0.99', (t) => `${x(t.vsHnswlibNode?.build.ratio)} / ${x(t.vsHnswlibNode?.qps['0.95']?.ratio)} / ${x(t.vsHnswlibNode?.qps['0.99']?.ratio)}`);
  row('llmds wasm / native time: build / per query (range over efSearch)', (t) => {
    const v = Object.values(t.wasmOverNative?.search ?? {}).filter((y) => y !== null);
    return t.wasmOverNative ? `${x(t.wasmOverNative.build)} / ${x(Math.min(...v))}–${x(Math.max(...v))}` : '–';
  });
  row('wall-clock QPS ratio vs hnswlib-wasm at 0.95 / 0.99 (info)', (t) => `${x(t.vsHnswlibWasm.wallQps['0.95'])} / ${x(t.vsHnswlibWasm.wallQps['0.99'])}`);
  console.log(lines.join('\n'));
}
