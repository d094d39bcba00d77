// SPDX-License-Identifier: MIT
// Size budgets for what users download (raw and gzip -9). The budgets are in README.md; raise
// them only on purpose.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { distUrl } from './llmds.mjs';

const KiB = 1024;
const GLUE = ['llmds.mjs', 'llmds-nosimd.mjs', 'llmds-noeval.mjs'];
const budgets = [
  { name: 'llmds.wasm (SIMD)', files: ['llmds.wasm'], raw: 576 * KiB, gzip: 224 * KiB },
  { name: 'llmds-nosimd.wasm (portable)', files: ['llmds-nosimd.wasm'], raw: 576 * KiB, gzip: 224 * KiB },
  { name: 'Emscripten glue (each)', files: GLUE, raw: 96 * KiB, gzip: 24 * KiB, each: true },
  {
    name: 'TypeScript wrapper (all other .mjs)',
    files: readdirSync(distUrl).filter((f) => f.endsWith('.mjs') && !GLUE.includes(f) && !f.includes('.inline.')),
    raw: 160 * KiB,
    gzip: 56 * KiB,
  },
];

test('download sizes stay within budget', () => {
  const rows = [];
  for (const b of budgets) {
    const sizes = b.files.map((f) => {
      const bytes = readFileSync(new URL(f, distUrl));
      return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
    });
    const measured = b.each
      ? { raw: Math.max(...sizes.map((s) => s.raw)), gzip: Math.max(...sizes.map((s) => s.gzip)) }
      : sizes.reduce((a, s) => ({ raw: a.raw + s.raw, gzip: a.gzip + s.gzip }), { raw: 0, gzip: 0 });
    rows.push(`${b.name}: ${(measured.raw / KiB).toFixed(1)} KiB raw (budget ${b.raw / KiB}), ${(measured.gzip / KiB).toFixed(1)} KiB gzip (budget ${b.gzip / KiB})`);
    assert.ok(measured.raw <= b.raw, `${b.name} is ${measured.raw} bytes, budget ${b.raw}`);
    assert.ok(measured.gzip <= b.gzip, `${b.name} is ${measured.gzip} bytes gzipped, budget ${b.gzip}`);
  }
  console.log(rows.join('\n'));
});
