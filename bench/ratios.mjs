// SPDX-License-Identifier: MIT
// wasm (through the JS API) / native C++ ratios: runs the native CLI (bench/cpp/llmds_bench) on the
// same workloads as the Node benchmarks and pairs its figures with theirs.
//
//   import { nativeRatios } from './ratios.mjs';
//   const rows = await nativeRatios({ quick, js }); // js: { kv, attention, hnsw, bm25, retrieval, serving }
//   printTable('wasm / native', rows);
//
// `js` holds what the Node benchmarks returned (any subset): kv = runKVCacheBench(), attention =
// runAttentionBench() (its native figures come from its own run of the CLI), hnsw =
// runHnswBench(), bm25 = the object bench/bm25/bm25.mjs writes to results/bm25.json, retrieval =
// runRetrievalBench() (or benchmarkRetrieval()), serving = runServingBench(). Each present one gets
// rows { component, workload, wasm, native, unit, ratio }, where ratio is always wasm time / native
// time: > 1 means wasm is slower (for rates: native rate / wasm rate). `quick` must be the mode the
// JS benchmarks ran in (it selects the CLI's --quick sizes for kv and serving; bm25 and retrieval
// sizes come from `js`, hnsw's native figures from its own run). The CLI is $LLMDS_BENCH, else
// build-native/llmds_bench; without it nativeRatios returns [] and says so.
//
// Same data on both sides: kv and serving generate theirs with mulberry32 in C++ (the same
// seeds and draw order as bench/lib.mjs's rng); bm25 and retrieval read files written here
// (writeBm25Files, writeRetrievalFile) from the same generators; hnsw reads the vector files
// bench/hnsw/hnsw.mjs wrote.
//
//   node bench/ratios.mjs [--quick]   ratios against the latest bench/results/*.json of each
//                                     benchmark (run them first, in the same mode)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { llmds, rng, printTable, writeResults, isMain, quick as quickArg } from './lib.mjs';

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));

/** The native CLI: $LLMDS_BENCH, else build-native/llmds_bench (null when absent). */
export function nativeCli() {
  const cli = process.env.LLMDS_BENCH || fileURLToPath(new URL('../build-native/llmds_bench', import.meta.url));
  return existsSync(cli) ? cli : null;
}

/** `u32 count`, then per string `u32 bytes` and its UTF-8 (what the CLI's read_string_list reads). */
function stringListBuffer(strings) {
  const encoded = strings.map((s) => Buffer.from(s, 'utf8'));
  const buf = Buffer.alloc(4 + encoded.reduce((a, b) => a + 4 + b.length, 0));
  let o = buf.writeUInt32LE(encoded.length, 0);
  for (const b of encoded) {
    o = buf.writeUInt32LE(b.length, o);
    o += b.copy(buf, o);
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------
// BM25: the corpus and queries come from bench/bm25/bm25.mjs's own loader and generator;
// writeBm25Files still checks them against what bm25.mjs reported (document count, bytes, first
// queries) before anything is compared.

/**
 * Writes the fortunes corpus and bm25.mjs's `queryCount` queries (seed 42) for
 * `llmds_bench --suite bm25 --bm25-corpus <corpus> --bm25-queries <queries>`.
 * @returns {{ corpus: string, queries: string, documents: number, bytes: number, examples: string[] }}
 */
export async function writeBm25Files({ queryCount = 2000 } = {}) {
  // The same loader and query generator as bm25.mjs (importing it runs nothing).
  const { loadFortunes, makeQueries } = await import('./bm25/bm25.mjs');
  const docs = loadFortunes();
  const queries = makeQueries(docs, queryCount, 42);
  mkdirSync(resultsDir, { recursive: true });
  const corpus = `${resultsDir}bm25-fortunes-docs.bin`;
  const queryFile = `${resultsDir}bm25-fortunes-q${queryCount}-s42.bin`;
  writeFileSync(corpus, stringListBuffer(docs));
  writeFileSync(queryFile, stringListBuffer(queries));
  return {
    corpus, queries: queryFile, documents: docs.length,
    bytes: docs.reduce((a, d) => a + Buffer.byteLength(d), 0), examples: queries.slice(0, 5),
  };
}

// ---------------------------------------------------------------------------------------------
// Retrieval: the corpus and queries of bench/retrieval.mjs, from its exported hybridCorpus().

/**
 * Writes retrieval.mjs's corpus (hybridCorpus({ docs, dim }), seed 1) and its first `queries`
 * queries for `llmds_bench --suite retrieval --retrieval-data <file>`; `seed` is the pipeline's
 * HNSW seed (retrieval.mjs uses 3).
 * @returns {Promise<string>} the file
 */
export async function writeRetrievalFile({ docs, dim = 384, queries, topK = 10, seed = 3 }) {
  const { hybridCorpus } = await import('./retrieval.mjs');
  const { documents, query } = hybridCorpus({ docs, dim });
  const qs = Array.from({ length: queries }, query);
  const texts = [...documents.map((d) => Buffer.from(d.text, 'utf8')), ...qs.map((q) => Buffer.from(q.text, 'utf8'))];
  const size = 20 + documents.length * 4 + texts.reduce((a, t) => a + 4 + t.length + dim * 4, 0);
  const buf = Buffer.alloc(size);
  let o = 0;
  for (const v of [documents.length, dim, qs.length, topK, seed]) o = buf.writeUInt32LE(v, o);
  const item = (text, embedding, id) => {
    if (id !== undefined) o = buf.writeUInt32LE(id, o);
    o = buf.writeUInt32LE(text.length, o);
    o += text.copy(buf, o);
    for (let j = 0; j < dim; j++) o = buf.writeFloatLE(embedding[j], o); // exact: already float32
  };
  documents.forEach((d, i) => item(texts[i], d.embedding, d.id));
  qs.forEach((q, i) => item(texts[documents.length + i], q.embedding));
  mkdirSync(resultsDir, { recursive: true });
  const file = `${resultsDir}retrieval-${documents.length}-d${dim}-q${qs.length}-k${topK}-s${seed}.bin`;
  writeFileSync(file, buf);
  return file;
}

// ---------------------------------------------------------------------------------------------

function runCli(cli, suite, quick, args = []) {
  const out = `${resultsDir}native-${suite}.json`;
  const argv = ['--suite', suite, '--json', out, ...(quick ? ['--quick'] : []), ...args];
  const r = spawnSync(cli, argv, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cli} ${argv.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(readFileSync(out, 'utf8'));
}

/** A row; `rate`: higher is better (the ratio is then native / wasm, still wasm time / native time). */
function row(component, workload, wasm, native, unit, rate = false) {
  return { component, workload, wasm, native, unit, ratio: rate ? native / wasm : wasm / native };
}

function warnIf(cond, msg) {
  if (cond) console.warn(`nativeRatios: ${msg}`);
}

/**
 * wasm / native ratios of every benchmark in `js` (see the file comment).
 * @param {{ quick?: boolean, js?: object }} options
 * @returns {Promise<Array<{ component: string, workload: string, wasm: number, native: number, unit: string, ratio: number }>>}
 */
export async function nativeRatios({ quick = false, js = {} } = {}) {
  const cli = nativeCli();
  if (!cli) {
    console.log('\n(native ratios skipped: set LLMDS_BENCH or build build-native/llmds_bench)');
    return [];
  }
  const rows = [];

  if (js.kv) {
    const n = runCli(cli, 'kv', quick);
    const us = (ms) => ms * 1000;
    for (const w of js.kv.latency) {
      const nat = n.kvLatency.find((r) => r.pageSize === w.pageSize);
      warnIf(nat.numSequences !== w.numSequences, `kv: ${w.numSequences} sequences in JS, ${nat.numSequences} native (quick mismatch?)`);
      for (const op of ['attach', 'get', 'detach']) {
        rows.push(row('kv', `${op} p50, page ${w.pageSize}`, us(w[`${op}P50Ms`]), us(nat[`${op}P50Ms`]), 'µs'));
      }
    }
    for (const w of js.kv.match) {
      const nat = n.kvMatch.find((r) => r.pageSize === w.pageSize);
      rows.push(row('kv', `matchPrefix ${w.tokens} tokens, page ${w.pageSize}`, w.nsPerToken, nat.nsPerToken, 'ns/token'));
    }
  }

  if (js.attention?.rows) {
    // attention.mjs runs `llmds_bench --suite attention` itself, in the same process run.
    for (const r of js.attention.rows) {
      if (r.nativeUsPerStep) rows.push(row('attention', `decode step, ${r.dtype}, context ${r.context}`, r.usPerStep, r.nativeUsPerStep, 'µs'));
    }
  }

  if (js.hnsw?.sets) {
    // hnsw.mjs runs the native CLI itself (same data files, interleaving aside); use those
    // figures, or run it here on the same files when that run had no CLI.
    const basis = js.hnsw.params?.basis ?? 'cpu';
    const k = js.hnsw.params?.k ?? 10;
    const efs = js.hnsw.params?.efSearch;
    let ran = null;
    if (js.hnsw.sets.some((s) => !s.libraries.some((l) => l.library === 'llmdsNative')) && efs) {
      const manifest = `${resultsDir}ratios-hnsw-sets.txt`;
      writeFileSync(manifest, js.hnsw.sets.map((s) => [s.name, s.metric, s.files.base, s.files.query, s.files.truth, k, efs.join(',')].join(' ')).join('\n') + '\n');
      ran = runCli(cli, 'hnsw', quick, ['--hnsw-manifest', manifest]);
    }
    js.hnsw.sets.forEach((set, i) => {
      const ours = set.libraries.find((l) => l.library === 'llmds');
      let nat = set.libraries.find((l) => l.library === 'llmdsNative');
      if (!nat && ran) {
        const b = ran.hnswBuild.find((r) => r.set === i);
        nat = { build: { vectorsPerSecond: b.vectorsPerSecond, vectorsPerCpuSecond: b.vectorsPerCpuSecond },
          points: ran.hnswSearch.filter((r) => r.set === i) };
      }
      if (!ours || !nat) return;
      const cpu = basis === 'cpu';
      const per = cpu ? 'CPU s' : 's';
      rows.push(row('hnsw', `${set.name}: build`, cpu ? ours.build.vectorsPerCpuSecond : ours.build.vectorsPerSecond,
        cpu ? nat.build.vectorsPerCpuSecond : nat.build.vectorsPerSecond, `vectors/${per}`, true));
      for (const p of ours.points) {
        const q = nat.points.find((x) => x.efSearch === p.efSearch);
        if (!q) continue;
        warnIf(Math.abs(q.recall - p.recall) > 1e-9, `hnsw ${set.name} ef ${p.efSearch}: recall ${p.recall} (wasm) vs ${q.recall} (native)`);
        rows.push(row('hnsw', `${set.name}: search ef ${p.efSearch}`, cpu ? p.cpuQps : p.qps, cpu ? q.cpuQps : q.qps, `QPS (per ${per})`, true));
      }
    });
  }

  if (js.bm25?.rows) {
    const files = await writeBm25Files({ queryCount: js.bm25.queries.count });
    const same = files.documents === js.bm25.corpus.documents && files.bytes === js.bm25.corpus.bytes &&
      JSON.stringify(files.examples) === JSON.stringify(js.bm25.queries.examples);
    if (!same) throw new Error('nativeRatios: the bm25 corpus or queries differ from bm25.mjs\'s (update writeBm25Files to match bench/bm25/bm25.mjs)');
    const n = runCli(cli, 'bm25', quick, ['--bm25-corpus', files.corpus, '--bm25-queries', files.queries]).bm25[0];
    const w = js.bm25.rows.find((r) => r.engine.startsWith('llmds'));
    warnIf(n.overlapAt10 !== 1, `bm25: native top-10 overlap with exhaustive scoring ${n.overlapAt10}`);
    rows.push(row('bm25', `index ${n.documents} fortunes`, w.docsPerSec, n.docsPerSec, 'docs/s', true));
    rows.push(row('bm25', `search top-10, ${n.queries} queries`, w.qps, n.qps, 'QPS', true));
  }

  if (js.retrieval) {
    const r = js.retrieval;
    const file = await writeRetrievalFile({ docs: r.docs, dim: r.dim, queries: r.queries, topK: r.topK });
    const n = runCli(cli, 'retrieval', quick, ['--retrieval-data', file]).retrieval[0];
    // The same graph and index give the same results: the overlaps should agree.
    warnIf(Math.abs(n.overlapWeighted - r.overlapWeighted) > 1e-9 || Math.abs(n.overlapRrf - r.overlapRrf) > 1e-9,
      `retrieval: overlap@${r.topK} ${r.overlapWeighted}/${r.overlapRrf} (wasm) vs ${n.overlapWeighted}/${n.overlapRrf} (native)`);
    const what = `${r.docs} docs × ${r.dim}-d, top-${r.topK}`;
    rows.push(row('retrieval', `build, ${what}`, r.buildDocsPerSec, n.buildDocsPerSec, 'docs/s', true));
    rows.push(row('retrieval', `hybrid search, cache miss, ${r.queries} queries`, r.hybridQps, n.hybridQps, 'QPS', true));
    rows.push(row('retrieval', 'hybrid search, cache hit', r.cachedQps, n.cachedQps, 'QPS', true));
    rows.push(row('retrieval', 'BM25-only search, cache miss', r.bm25OnlyQps, n.bm25OnlyQps, 'QPS', true));
  }

  if (js.serving) {
    const s = js.serving;
    const n = runCli(cli, 'serving', quick);
    // serving.mjs's variants and cases, in its order (the CLI numbers them the same way).
    s.submit.forEach((w, i) => {
      const nat = n.servingSubmit.find((r) => r.variant === i);
      if (!nat) return; // a JS-only variant (the deadline order)
      warnIf(nat.requests !== w.requests, `serving submit: ${w.requests} requests in JS, ${nat.requests} native (quick mismatch?)`);
      const label = i === 2 ? 'Scheduler.submit, priority function (FCFS; native priority_fn)' : `Scheduler.submit, ${w.variant}`;
      rows.push(row('serving', label, w.nsPerSubmit, nat.nsPerSubmit, 'ns/op'));
    });
    const g = s.getBatch;
    const ng = n.servingGetBatch[0];
    warnIf(ng.samples !== g.samples, `serving getBatch: ${g.samples} samples in JS, ${ng.samples} native`);
    rows.push(row('serving', `Scheduler.getBatch(${g.batch}), ${g.queued} queued, p50`, g.getBatchP50Ms * 1000, ng.getBatchP50Ms * 1000, 'µs'));
    rows.push(row('serving', `Scheduler.completeBatch(${g.batch}), p50`, g.completeBatchP50Ms * 1000, ng.completeBatchP50Ms * 1000, 'µs'));
    s.admission.forEach((w, i) => {
      const nat = n.servingAdmission.find((r) => r.case === i);
      rows.push(row('serving', `AdmissionController.shouldAdmit, ${w.case}`, w.nsPerCall, nat.nsPerCall, 'ns/op'));
    });
    for (const w of s.heap) {
      const nat = n.servingHeap.find((r) => r.size === w.size);
      if (!nat) {
        warnIf(true, `serving: no native IndexedHeap of size ${w.size} (quick mismatch?)`);
        continue;
      }
      for (const op of ['push', 'update', 'pop']) rows.push(row('serving', `IndexedHeap.${op}, ${w.size} ids`, w[`${op}Ns`], nat[`${op}Ns`], 'ns/op'));
    }
  }
  return rows;
}

/** The latest JSON results of the Node benchmarks in bench/results/, keyed as nativeRatios wants. */
export function loadJsResults() {
  const files = { kv: 'kv-cache', attention: 'attention', hnsw: 'hnsw', bm25: 'bm25', retrieval: 'retrieval', serving: 'serving' };
  const js = {};
  for (const [key, name] of Object.entries(files)) {
    const file = `${resultsDir}${name}.json`;
    if (existsSync(file)) js[key] = JSON.parse(readFileSync(file, 'utf8'));
  }
  return js;
}

if (isMain(import.meta)) {
  const js = loadJsResults();
  for (const [key, r] of Object.entries(js)) {
    if (r.meta && r.meta.quick !== quickArg) console.warn(`note: results/${key} was run ${r.meta.quick ? 'with' : 'without'} --quick`);
  }
  const rows = await nativeRatios({ quick: quickArg, js });
  if (rows.length) {
    printTable('wasm (through the JS API) / native C++, same workloads (ratio = wasm time / native time)', rows);
    await llmds.init(); // writeResults records llmds.features()
    const file = await writeResults('ratios', { rows });
    console.log(`\nwritten ${file.pathname}`);
  }
}
