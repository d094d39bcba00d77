// SPDX-License-Identifier: MIT
// The package in workerd (the Cloudflare Workers runtime), served on loopback.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { llmds } from '../js/llmds.mjs';
import { root } from '../pack.mjs';
import { runScenario } from '../scenario.mjs';
import { startWorkerd } from './workerd.mjs';

let server, base, expected;

before(async () => {
  server = await startWorkerd(join(root, 'tests/edge/worker.mjs'));
  base = server.base;
  await llmds.init();
  expected = JSON.parse(JSON.stringify(await runScenario(llmds)));
});

after(() => server?.stop());

test('workerd runs the shared scenario with the same result as Node', async () => {
  const r = await (await fetch(`${base}/scenario`)).json();
  assert.equal(r.features.simd, true);
  assert.deepEqual(r.scenario, expected);
});

test('workerd keeps a KV cache across requests and reuses prefixes', async () => {
  const first = await (await fetch(`${base}/kv?seq=1&tokens=1,2,3,4,5,6,7,8,9`)).json();
  assert.equal(first.reused, 0);
  const second = await (await fetch(`${base}/kv?seq=2&tokens=1,2,3,4,5,6,7,8,42`)).json();
  assert.equal(second.reused, 8);
  assert.equal(second.stats.sharedPages, 2);
  const bad = await fetch(`${base}/kv?seq=-1&tokens=1`);
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error, 'invalid_argument');
});

test('workerd answers hybrid search requests with a RetrievalPipeline', async () => {
  const r = await (await fetch(`${base}/search?q=kv%20cache%20blocks`)).json();
  assert.equal(r.hits.length, 3);
  assert.equal(r.hits[0][0], 0);
  assert.ok(r.hits[0][1] > r.hits[1][1]);
  const again = await (await fetch(`${base}/search?q=kv%20cache%20blocks`)).json();
  assert.deepEqual(again.hits, r.hits);
  assert.equal(again.stats.cacheHits, 1);
  const bad = await fetch(`${base}/search?q=x&k=0`);
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error, 'invalid_argument');
});
