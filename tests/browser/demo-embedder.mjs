// SPDX-License-Identifier: MIT
// A stand-in custom embedder for the demo test: exercises the page's ?embedder= hook (async
// embed, a different dimension) without any model. Bag of words hashed into 64 dimensions.
export const name = 'test bag-of-words embedder';

export async function embed(texts) {
  return texts.map((text) => {
    const v = new Float32Array(64);
    for (const [w] of text.toLowerCase().matchAll(/\p{L}+/gu)) {
      let h = 7;
      for (const c of w) h = (h * 31 + c.codePointAt(0)) >>> 0;
      v[h % 64] += 1;
    }
    return v;
  });
}
