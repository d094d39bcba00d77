// SPDX-License-Identifier: MIT
// A small SVG line / step / scatter chart drawn at the container's pixel width (so text stays
// readable on a phone), with a title and description for screen readers.
import { s } from './dom.mjs';

/** Round "nice" tick step for a range. */
function niceStep(max, ticks) {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? raw;
}

/**
 * chart({ title, desc, width, height, xMax, yMax, xLabel, yLabel, series, hlines })
 * series: [{ label, kind: 'line' | 'step' | 'dots', points: [[x, y]], cls }]
 * hlines: [{ y, label, cls }]. Returns an <svg role="img">.
 */
export function chart({ title, desc, width = 600, height = 220, xMax, yMax, xLabel, yLabel, series, hlines = [] }) {
  const m = { l: 44, r: 12, t: 10, b: 34 };
  const w = Math.max(120, width - m.l - m.r);
  const hgt = height - m.t - m.b;
  const yTop = Math.max(yMax, ...hlines.map((l) => l.y * 1.1)) || 1;
  const x = (v) => m.l + (v / xMax) * w;
  const y = (v) => m.t + hgt - (Math.min(v, yTop) / yTop) * hgt;
  const id = `c${Math.random().toString(36).slice(2, 8)}`;
  const grid = [];
  const yStep = niceStep(yTop, 4);
  for (let v = 0; v <= yTop + 1e-9; v += yStep) {
    grid.push(s('line', { class: 'grid', x1: m.l, x2: m.l + w, y1: y(v), y2: y(v) }));
    grid.push(s('text', { class: 'tick', x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, +v.toFixed(2)));
  }
  const xStep = niceStep(xMax, Math.max(2, Math.floor(w / 80)));
  for (let v = 0; v <= xMax + 1e-9; v += xStep) {
    grid.push(s('text', { class: 'tick', x: x(v), y: m.t + hgt + 16, 'text-anchor': 'middle' }, +v.toFixed(2)));
  }
  const marks = series.map(({ kind, points, cls }) => {
    if (kind === 'dots') return s('g', { class: `dots ${cls ?? ''}` }, points.map(([px, py]) => s('circle', { cx: x(px).toFixed(1), cy: y(py).toFixed(1), r: 2.5 })));
    let d = '';
    points.forEach(([px, py], i) => {
      if (i === 0) d += `M${x(px).toFixed(1)},${y(py).toFixed(1)}`;
      else d += kind === 'step' ? `H${x(px).toFixed(1)}V${y(py).toFixed(1)}` : `L${x(px).toFixed(1)},${y(py).toFixed(1)}`;
    });
    return s('path', { class: `series ${cls ?? ''}`, d });
  });
  const lines = hlines.map((l) => [
    s('line', { class: `hline ${l.cls ?? ''}`, x1: m.l, x2: m.l + w, y1: y(l.y), y2: y(l.y) }),
    s('text', { class: 'hlabel', x: m.l + w - 4, y: y(l.y) - 4, 'text-anchor': 'end' }, l.label),
  ]);
  return s(
    'svg',
    { class: 'chart', role: 'img', width, height, viewBox: `0 0 ${width} ${height}`, 'aria-labelledby': `${id}-t ${id}-d` },
    s('title', { id: `${id}-t` }, title),
    s('desc', { id: `${id}-d` }, desc),
    grid,
    s('line', { class: 'axis', x1: m.l, x2: m.l + w, y1: m.t + hgt, y2: m.t + hgt }),
    s('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: m.t + hgt }),
    s('text', { class: 'label', x: m.l + w / 2, y: height - 4, 'text-anchor': 'middle' }, xLabel),
    s('text', { class: 'label', x: 12, y: m.t + hgt / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${m.t + hgt / 2})` }, yLabel),
    lines,
    marks,
  );
}
