// SPDX-License-Identifier: MIT
// Serving simulator panel: run the simulation for all four policies, tabulate them, and chart
// the selected one (TTFT, goodput, queue length).
import { chart } from './charts.mjs';
import { duration, h } from './dom.mjs';
import { POLICIES, simulate } from './simulator.mjs';

const pct = (x) => `${(x * 100).toFixed(0)} %`;

/** Moving average over `w` bins. */
const smooth = (ys, w) => ys.map((_, i) => {
  const lo = Math.max(0, i - w + 1);
  return ys.slice(lo, i + 1).reduce((a, b) => a + b, 0) / (i + 1 - lo);
});

export function mountSimulator(root, llmds) {
  const $ = (sel) => root.querySelector(sel);
  let last = null;

  function params() {
    const num = (id) => Number($(id).value);
    return {
      rate: num('#sim-rate'),
      sloMs: num('#sim-slo'),
      batchSize: num('#sim-batch'),
      maxWaitMs: num('#sim-wait'),
      policy: $('#sim-policy').value,
      qpsLimit: num('#sim-qps'),
      seed: num('#sim-seed'),
    };
  }

  function run() {
    const form = $('#sim-form');
    if (!form.reportValidity()) return;
    const p = params();
    const t0 = performance.now();
    const runs = Object.fromEntries(Object.keys(POLICIES).map((policy) => [policy, simulate(llmds, { ...p, policy })]));
    const wall = performance.now() - t0;
    last = { p, runs };
    const rows = Object.entries(runs).map(([policy, { summary: s }]) =>
      h(
        'tr',
        { class: policy === p.policy ? 'selected' : null, 'aria-current': policy === p.policy ? 'true' : null },
        h('th', { scope: 'row' }, POLICIES[policy].label),
        h('td', null, pct(s.sloAttainment)),
        h('td', null, s.goodput.toFixed(2)),
        h('td', null, duration(s.ttftP50)),
        h('td', null, duration(s.ttftP95)),
        h('td', null, String(s.late)),
        h('td', null, String(s.expired)),
        h('td', null, String(s.rejected)),
        h('td', null, s.avgBatchSize.toFixed(1)),
      ),
    );
    $('#sim-summary tbody').replaceChildren(...rows);
    const s = runs[p.policy].summary;
    $('#sim-status').textContent =
      `Simulated ${(s.simulatedMs / 1000).toFixed(1)} s of traffic (${s.offered} requests, ${s.batches} batches) ` +
      `${Object.keys(runs).length} times in ${duration(wall)}. ${POLICIES[p.policy].label.replace(/^./, (c) => c.toUpperCase())}: ${pct(s.sloAttainment)} met their SLO, goodput ${s.goodput.toFixed(2)} req/s.`;
    draw();
  }

  function draw() {
    if (!last) return;
    const { p, runs } = last;
    const r = runs[p.policy];
    const xMax = r.bins.length; // seconds, until the last request finished
    const widthOf = (el) => Math.max(260, Math.floor(el.clientWidth));

    const done = r.requests.filter((q) => q.ttftMs !== undefined);
    const pts = (keep) => done.filter(keep).map((q) => [q.arrivalMs / 1000, q.ttftMs / 1000]);
    const ttftBox = $('#sim-ttft');
    ttftBox.replaceChildren(
      chart({
        title: 'Time to first token by arrival time',
        desc: `${done.length} requests got a first token; median ${duration(r.summary.ttftP50)}, p95 ${duration(r.summary.ttftP95)}; ${r.summary.late} finished after their deadline. The dashed line is the chat deadline.`,
        width: widthOf(ttftBox),
        xMax,
        yMax: Math.max(...done.map((q) => q.ttftMs / 1000), 0.1),
        xLabel: 'arrival time (s)',
        yLabel: 'TTFT (s)',
        hlines: [{ y: p.sloMs / 1000, label: 'chat deadline', cls: 'slo' }],
        series: [
          { kind: 'dots', points: pts((q) => q.outcome === 'met' && q.kind === 'doc'), cls: 'doc' },
          { kind: 'dots', points: pts((q) => q.outcome === 'met' && q.kind === 'chat'), cls: 'met' },
          { kind: 'dots', points: pts((q) => q.outcome !== 'met'), cls: 'late' },
        ],
      }),
    );

    const line = (ys) => ys.map((y, i) => [i + 0.5, y]);
    const offered = smooth(r.bins.map((b) => b.offered), 5);
    const completed = smooth(r.bins.map((b) => b.completed), 5);
    const goodput = smooth(r.bins.map((b) => b.goodput), 5);
    const gBox = $('#sim-goodput');
    gBox.replaceChildren(
      chart({
        title: 'Goodput over time',
        desc: `Goodput averaged ${r.summary.goodput.toFixed(2)} requests per second against ${(r.summary.offered / r.params.durationS).toFixed(2)} offered.`,
        width: widthOf(gBox),
        xMax,
        yMax: Math.max(...offered, ...completed, ...goodput, 1),
        xLabel: 'time (s)',
        yLabel: 'req/s',
        series: [
          { kind: 'line', points: line(offered), cls: 'offered' },
          { kind: 'line', points: line(completed), cls: 'completed' },
          { kind: 'line', points: line(goodput), cls: 'goodput' },
        ],
      }),
    );

    const qBox = $('#sim-queue');
    const queue = r.queue.map(([t, n]) => [t / 1000, n]);
    qBox.replaceChildren(
      chart({
        title: 'Queue length over time',
        desc: `At most ${Math.max(...queue.map((q) => q[1]))} requests waited in the Scheduler at once.`,
        width: widthOf(qBox),
        xMax,
        yMax: Math.max(...queue.map((q) => q[1]), 1),
        xLabel: 'time (s)',
        yLabel: 'queued',
        series: [{ kind: 'step', points: queue, cls: 'queue' }],
      }),
    );
  }

  $('#sim-form').addEventListener('submit', (e) => (e.preventDefault(), run()));
  $('#sim-policy').addEventListener('change', run);
  let lastWidth = 0;
  new ResizeObserver(([entry]) => {
    const w = Math.round(entry.contentRect.width);
    if (w !== lastWidth) (lastWidth = w), draw();
  }).observe($('.charts'));
  run();
  return { run };
}
