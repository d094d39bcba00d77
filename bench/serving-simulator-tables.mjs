// SPDX-License-Identifier: MIT
// Markdown tables for bench/README.md "Serving simulator" from the results of
//   node bench/serving-simulator.mjs [--quick] --seeds 1,2,3            (bench/results/serving-simulator.json)
//   node bench/serving-simulator.mjs [--quick] --candidates --seeds 1,2,3 (…-candidates.json)
//   node bench/serving-simulator-tables.mjs
import { readFileSync, existsSync } from 'node:fs';
import { summarizeSweep, meetsTargets } from './serving-simulator.mjs';

// JSON has no Infinity: a TTFT percentile stored as null was Infinity (clients left without an
// answer), and the ratios against FCFS are recomputed from the rows.
function revive(rows) {
  for (const x of rows) for (const k of ['chatTtftP50Ms', 'chatTtftP95Ms', 'chatTtftP99Ms']) if (x[k] === null) x[k] = Infinity;
  const key = (x) => [x.workload, x.variant, x.engine, x.load, x.seed].join('|');
  const fcfs = new Map(rows.filter((x) => x.policy === 'fcfs').map((x) => [key(x), x]));
  for (const x of rows) {
    const f = fcfs.get(key(x));
    if (!f) continue;
    x.goodputVsFcfs = x.goodputPerS / f.goodputPerS;
    x.p95VsFcfs = x.chatTtftP95Ms / f.chatTtftP95Ms;
    x.p99VsFcfs = x.chatTtftP99Ms / f.chatTtftP99Ms;
  }
  return rows;
}
const read = (name) => {
  const url = new URL(`./results/${name}.json`, import.meta.url);
  if (!existsSync(url)) return null;
  const r = JSON.parse(readFileSync(url, 'utf8'));
  if (r.rows) revive(r.rows);
  if (r.sweep) revive(r.sweep.rows);
  return r;
};
const ENGINES = ['server: continuous, 32 slots', 'server: static batches of 8', 'edge: continuous, 4 slots'];
const SHORT = ['server 32', 'static 8', 'edge 4'];
const f2 = (v) => (v === Infinity ? '∞' : Number.isNaN(v) ? '–' : v.toFixed(2));
const s1 = (v) => (v === Infinity ? '∞' : (v / 1000).toFixed(1));
const table = (head, rows) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

function candidates(c) {
  const sum = summarizeSweep(c.rows);
  const out = [];
  for (const workload of ['synthetic sessions', 'mooncake trace']) {
    for (const load of [0.9, 1.2]) {
      const of = (policy, engine) => sum.find((x) => x.workload === workload && x.policy === policy && x.engine === engine && x.load === load);
      const policies = [...new Set(sum.filter((x) => x.workload === workload).map((x) => x.policy))];
      out.push(`${workload}, ${load} load (${workload === 'mooncake trace' ? 'one run' : `worst of seeds ${c.seeds.join(', ')}`}): goodput / FCFS, chat TTFT p95 / FCFS, p99 / FCFS`);
      out.push('');
      out.push(table(['policy', ...SHORT], policies.map((p) => [p, ...ENGINES.map((e) => {
        const x = of(p, e);
        return x ? `${f2(x.goodputVsFcfsMin)} / ${f2(x.p95VsFcfsMax)} / ${f2(x.p99VsFcfsMax)}` : '';
      })])));
      out.push('');
    }
  }
  return out.join('\n');
}

function targets(r) {
  const sum = summarizeSweep(r.sweep.rows);
  const out = [];
  for (const workload of ['synthetic sessions', 'mooncake trace']) {
    const loads = [...new Set(sum.filter((x) => x.workload === workload && x.variant === 'admission').map((x) => x.load))];
    out.push(`${workload} (${workload === 'mooncake trace' ? 'one run' : `seeds ${r.sweep.seeds.join(', ')}: goodput mean, ratios worst`}), admission at 1.1× capacity`);
    out.push('');
    const rows = [];
    for (const [i, e] of ENGINES.entries()) {
      for (const load of loads) {
        const of = (p) => sum.find((x) => x.workload === workload && x.variant === 'admission' && x.engine === e && x.load === load && x.policy === p);
        const d = of('default');
        const fc = of('fcfs');
        rows.push([SHORT[i], load, fc.goodputPerS.toFixed(2), d.goodputPerS.toFixed(2), f2(d.goodputVsFcfsMin), `${s1(fc.chatTtftP95Ms)} / ${s1(fc.chatTtftP99Ms)}`, `${s1(d.chatTtftP95Ms)} / ${s1(d.chatTtftP99Ms)}`, f2(d.p95VsFcfsMax), f2(d.p99VsFcfsMax), load === 0.9 ? (meetsTargets(d) ? 'met' : '**not met**') : '', `${f2(of('shortest').goodputVsFcfsMin)} / ${f2(of('shortest').p95VsFcfsMax)}`, `${f2(of('deadline').goodputVsFcfsMin)} / ${f2(of('deadline').p95VsFcfsMax)}`]);
      }
    }
    out.push(table(['engine', 'load', 'FCFS goodput/s', 'default goodput/s', 'default / FCFS', 'FCFS chat p95 / p99 s', 'default chat p95 / p99 s', 'p95 / FCFS', 'p99 / FCFS', 'targets', 'shortest: goodput, p95 / FCFS', 'deadline: goodput, p95 / FCFS'], rows));
    out.push('');
    // Overload: the admission controller's effect.
    const over = [];
    for (const [i, e] of ENGINES.entries()) {
      for (const policy of ['default', 'fcfs', 'shortest', 'deadline']) {
        const cell = (variant) => {
          const x = sum.find((y) => y.workload === workload && y.variant === variant && y.engine === e && y.load === 1.2 && y.policy === policy);
          return x ? `${x.goodputPerS.toFixed(2)} (${s1(x.chatTtftP95Ms)} s)` : '';
        };
        over.push([SHORT[i], policy, cell('no admission'), cell('admission'), cell('admission 0.9x')]);
      }
    }
    out.push(`${workload} at 1.2 load: goodput/s (chat TTFT p95) without admission control, admitting 1.1× and 0.9× capacity`);
    out.push('');
    out.push(table(['engine', 'policy', 'no admission', 'admit 1.1×', 'admit 0.9×'], over));
    out.push('');
    // Give up and retry.
    const gu = [];
    for (const [i, e] of ENGINES.entries()) {
      for (const load of [0.9, 1.2]) {
        for (const policy of ['default', 'fcfs', 'shortest', 'deadline']) {
          const x = sum.find((y) => y.workload === workload && y.variant === 'give up' && y.engine === e && y.load === load && y.policy === policy);
          if (!x) continue;
          gu.push([SHORT[i], load, policy, x.goodputPerS.toFixed(2), f2(x.goodputVsFcfsMin), `${s1(x.chatTtftP95Ms)} / ${s1(x.chatTtftP99Ms)}`, (x.gaveUpShare * 100).toFixed(1), (x.wastedPrefillShare * 100).toFixed(1), Math.round(x.retries)]);
        }
      }
    }
    out.push(`${workload}, clients that give up (chat 10 s, documents 30 s, background 120 s) and retry once`);
    out.push('');
    out.push(table(['engine', 'load', 'policy', 'goodput/s', 'vs FCFS (worst)', 'chat TTFT p95 / p99 s (user, ∞ = no answer)', 'no answer %', 'wasted prefill %', 'retries'], gu));
    out.push('');
  }
  return out.join('\n');
}

const c = read('serving-simulator-candidates');
const r = read('serving-simulator');
if (c) console.log(candidates(c));
if (r?.sweep) console.log(targets(r));
