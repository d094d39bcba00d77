// SPDX-License-Identifier: MIT
/**
 * Stable error codes. The engine reports them as numbers (llmds::Errc); the order of
 * ENGINE_CODES is that enum's and must never change.
 */
export type ErrorCode =
  | 'invalid_argument'
  | 'out_of_memory'
  | 'capacity_exceeded'
  | 'not_found'
  | 'duplicate_id'
  | 'dimension_mismatch'
  | 'corrupt_data'
  | 'version_mismatch'
  | 'disposed'
  | 'not_initialized';

const ENGINE_CODES: readonly ErrorCode[] = [
  'invalid_argument', // placeholder for Errc::ok (0), never thrown
  'invalid_argument',
  'out_of_memory',
  'capacity_exceeded',
  'not_found',
  'duplicate_id',
  'dimension_mismatch',
  'corrupt_data',
  'version_mismatch',
];

/**
 * The only error llmds throws. `code` is stable across versions; `message` names the argument
 * and the value that caused it.
 * @example
 * try { cache.fork(1, 2); } catch (e) { if (e instanceof LlmdsError && e.code === 'not_found') ... }
 */
export class LlmdsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'LlmdsError';
    this.code = code;
  }
}

/** @internal Maps an engine status code to its name. */
export function engineErrorCode(rc: number): ErrorCode {
  return ENGINE_CODES[rc] ?? 'invalid_argument';
}
