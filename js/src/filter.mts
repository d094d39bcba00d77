// SPDX-License-Identifier: MIT
// Search filters, shared by HNSW, InvertedIndex and RetrievalPipeline: every form becomes one
// list of allowed ids before the engine call (README "HNSW semantics", "Filtered search").
import { LlmdsError } from './errors.mjs';
import * as v from './validate.mjs';

/**
 * Which ids a search may return: an allowed-id set (`Uint32Array`, `Set<number>` or
 * `number[]`; ids not in the index are ignored) or a predicate `(id) => boolean` (truthy
 * allows). The result is the k best among the allowed ids, not the allowed part of an
 * unfiltered top k.
 *
 * A predicate is called once per live id of the index, in insertion order, before the search
 * starts (so it never runs while the engine is in the middle of a call); a predicate that
 * throws fails the search with `LlmdsError` `invalid_argument` whose `cause` is what it threw.
 * A `Uint32Array` is passed to the engine as is: the fastest form for large sets.
 * @example
 * index.search(q, 10, { filter: new Uint32Array([3, 7, 42]) });
 * index.search(q, 10, { filter: (id) => owner.get(id) === user });
 */
export type IdFilter = Uint32Array | ReadonlySet<number> | readonly number[] | ((id: number) => unknown);

const U32_LIMIT = 0xffffffff; // ids are u32s: not an engine limit

function idAt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > U32_LIMIT) {
    v.fail(`${name} must be an integer id in [0, 2^32), got ${v.show(value)}`);
  }
  return value;
}

/**
 * @internal The allowed ids of `filter` (validated; a predicate evaluated over `liveIds()`).
 * Throws invalid_argument for anything else.
 */
export function allowedIds(filter: unknown, liveIds: () => Uint32Array): Uint32Array {
  if (filter instanceof Uint32Array) return v.attached(filter, 'filter');
  if (typeof filter === 'function') {
    const ids = liveIds();
    const out = new Uint32Array(ids.length);
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      let keep: unknown;
      try {
        keep = filter(id);
      } catch (e) {
        throw new LlmdsError('invalid_argument', `filter predicate threw for id ${id}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      if (keep) out[n++] = id;
    }
    return out.subarray(0, n);
  }
  if (Array.isArray(filter)) {
    const out = new Uint32Array(filter.length);
    for (let i = 0; i < filter.length; i++) out[i] = idAt(filter[i], `filter[${i}]`);
    return out;
  }
  if (filter instanceof Set) {
    const out = new Uint32Array(filter.size);
    let i = 0;
    for (const id of filter) out[i++] = idAt(id, 'filter element');
    return out;
  }
  return v.fail(`filter must be a Uint32Array, a Set of ids, an array of ids or a function (id) => boolean, got ${v.show(filter)}`);
}
