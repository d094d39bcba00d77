// SPDX-License-Identifier: MIT
/**
 * Stable error codes. The engine's codes (all but the last three) are llmds::Errc's names, read
 * from the engine at init; `disposed`, `not_initialized` and `load_failed` come from the JS layer.
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
  | 'not_initialized'
  | 'load_failed';

/**
 * The only error llmds throws. `code` is stable across versions; `message` names the argument
 * and the value that caused it; `cause` holds the underlying error where there is one (e.g. why
 * the `.wasm` failed to load).
 * @example
 * try { cache.fork(1, 2); } catch (e) { if (e instanceof LlmdsError && e.code === 'not_found') ... }
 */
export class LlmdsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LlmdsError';
    this.code = code;
  }
}
