// SPDX-License-Identifier: MIT
// The demo's default embedder: hashed character n-grams. No model, no network, deterministic.
//
// Words are the lower-cased runs of Unicode letters and digits; a short list of English
// function words is skipped (they would dominate every vector). Each word contributes its
// character 3- and 4-grams with boundary marks ("<cache>" gives "<ca", "cac", ..., "he>") and
// itself as a whole-word feature. Every feature is hashed (FNV-1a) into one of `dim` buckets
// with a hashed sign, counts are damped (1 + ln count) and the vector is L2-normalised.
// Shared n-grams make "caching", "cached" and the typo "cashing" land near "cache": lexical
// fuzziness, not meaning. Plug in a real embedding model for semantics (see demo/README.md).

const STOP_WORDS = new Set(
  ('a an and are as at be by can do does for from has have how i in into is it its of on or so ' +
    'that the their them then there these they this to was were what when where which while who ' +
    'why will with you your').split(' '),
);

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The features of one text: a Map feature -> count. */
export function features(text) {
  const counts = new Map();
  const add = (f) => counts.set(f, (counts.get(f) ?? 0) + 1);
  for (const [word] of text.toLowerCase().matchAll(/[\p{L}\p{M}\p{Nd}]+/gu)) {
    if (STOP_WORDS.has(word)) continue;
    add(`w:${word}`);
    const w = `<${word}>`;
    for (const n of [3, 4]) for (let i = 0; i + n <= w.length; i++) add(w.slice(i, i + n));
  }
  return counts;
}

/**
 * An embedder `{ name, dim, embed(texts) → Float32Array[] }`, the same shape as a custom one.
 * A text without any feature embeds to the zero vector (the page then skips the dense search).
 */
export function hashEmbedder({ dim = 384 } = {}) {
  const embedOne = (text) => {
    const v = new Float32Array(dim);
    for (const [f, c] of features(text)) {
      const h = fnv1a(f);
      v[h % dim] += (h & 0x80000000 ? -1 : 1) * (1 + Math.log(c));
    }
    let norm = 0;
    for (const x of v) norm += x * x;
    if (norm > 0) {
      const s = 1 / Math.sqrt(norm);
      for (let i = 0; i < dim; i++) v[i] *= s;
    }
    return v;
  };
  return { name: `hashed character 3/4-grams, ${dim} dims`, dim, builtin: true, embed: (texts) => texts.map(embedOne) };
}
