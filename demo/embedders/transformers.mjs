// SPDX-License-Identifier: MIT
// An example embedder for the demo page: a real sentence-embedding model through transformers.js.
// Open http://127.0.0.1:8080/demo/?embedder=./embedders/transformers.mjs
//
// This one needs the network on first use: it imports transformers.js from the jsDelivr CDN
// and downloads the model (all-MiniLM-L6-v2, 384 dimensions, ~23 MB quantized) from the
// Hugging Face Hub; the browser caches both afterwards. The default page never loads it.
import { pipeline } from 'https://cdn.jsdelivr.net/npm/@huggingface/transformers@3';

export const name = 'all-MiniLM-L6-v2 (transformers.js)';

const extractor = await pipeline('feature-extraction', 'Xenova/all-MiniLM-L6-v2');

/** One L2-normalised, mean-pooled 384-dimensional vector per text. */
export async function embed(texts) {
  const out = await extractor(texts, { pooling: 'mean', normalize: true });
  const [n, dim] = out.dims;
  return Array.from({ length: n }, (_, i) => out.data.slice(i * dim, (i + 1) * dim));
}
