// SPDX-License-Identifier: MIT
// Argument checks shared by every class: each failure names the argument and the value.
import { LlmdsError } from './errors.mjs';

/** @internal A short printable form of any value for error messages. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'number' && Object.is(value, -0)) return '-0';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (value === null || typeof value !== 'object') return String(value);
  return 'an object';
}

/** @internal */
export function fail(message: string): never {
  throw new LlmdsError('invalid_argument', message);
}

/** @internal An integer in [min, max]. */
export function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max || Object.is(value, -0) && min > 0) {
    fail(`${name} must be an integer in [${min}, ${max}], got ${show(value)}`);
  }
  return value;
}

/** @internal A non-negative integer id below 2^32. */
export function id(value: unknown, name: string): number {
  return integer(value, name, 0, 0xffffffff);
}

/** @internal A finite number, optionally strictly positive. */
export function finite(value: unknown, name: string, { positive = false } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (positive && value <= 0)) {
    fail(`${name} must be a finite${positive ? ' positive' : ''} number, got ${show(value)}`);
  }
  return value;
}

/** @internal A string argument. */
export function text(value: unknown, name: string): string {
  if (typeof value !== 'string') fail(`${name} must be a string, got ${show(value)}`);
  return value;
}

/** @internal */
export function boolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') fail(`${name} must be a boolean, got ${show(value)}`);
  return value;
}

/**
 * @internal The options object of a constructor or method: undefined means `{}`; anything
 * that is not a plain object, and any key the callee does not know (usually a typo), is rejected.
 */
export function options<K extends string>(value: unknown, name: string, known: readonly K[]): Partial<Record<K, unknown>> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`${name} must be an object, got ${show(value)}`);
  for (const key of Object.keys(value)) {
    if (!(known as readonly string[]).includes(key)) fail(`${name} has an unknown option ${JSON.stringify(key)}; known: ${known.join(', ')}`);
  }
  return value as Partial<Record<K, unknown>>;
}

/**
 * @internal Rejects a typed array whose buffer was transferred away: every read of it would
 * throw a TypeError deep inside a call instead of a clear LlmdsError up front.
 */
export function attached<T extends ArrayBufferView>(view: T, name: string): T {
  if (view.byteLength === 0 && isDetached(view.buffer)) fail(`${name} is a view on a detached ArrayBuffer`);
  return view;
}

/** @internal True when a buffer was transferred away (Node 20 lacks ArrayBuffer.prototype.detached). */
function isDetached(buffer: ArrayBufferLike): boolean {
  const b = buffer as ArrayBufferLike & { detached?: boolean };
  if (b.detached !== undefined) return b.detached;
  if (b.byteLength !== 0) return false;
  try {
    b.slice(0, 0);
    return false;
  } catch {
    return true;
  }
}

/** @internal Serialized bytes for a deserialize(): a Uint8Array or an ArrayBuffer, not detached. */
export function bytes(value: unknown, name: string): Uint8Array {
  if (value instanceof Uint8Array) return attached(value, name);
  if (value instanceof ArrayBuffer) {
    if (isDetached(value)) fail(`${name} is a detached ArrayBuffer`);
    return new Uint8Array(value);
  }
  return fail(`${name} must be a Uint8Array or an ArrayBuffer, got ${show(value)}`);
}

/** @internal A vector as a Float32Array; number[] elements are checked one by one. */
export function vector(value: unknown, name: string): Float32Array {
  if (value instanceof Float32Array) return attached(value, name); // NaN/Infinity: the engine reports them
  if (!Array.isArray(value)) fail(`${name} must be a number[] or Float32Array, got ${show(value)}`);
  const out = new Float32Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const x: unknown = value[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) fail(`${name}[${i}] must be a finite number, got ${show(x)}`);
    out[i] = x;
    if (!Number.isFinite(out[i])) fail(`${name}[${i}] = ${x} is outside the float32 range`);
  }
  return out;
}

const TOKEN_LIMIT = 0x7fffffff;

/**
 * @internal Token ids as an Int32Array: accepts number[], Int32Array or Uint32Array whose
 * values are integers in [0, 2^31).
 */
export function tokens(value: unknown, name: string, kind = 'token id', engineChecksSign = false): Int32Array {
  if (value instanceof Int32Array || value instanceof Uint32Array) attached(value, name);
  // The engine rejects negative ids itself with the same message, in one vectorised pass: a
  // second pass here would cost more than the call (KVCache attach of long prompts).
  if (value instanceof Int32Array && engineChecksSign) return value;
  if (value instanceof Int32Array) {
    for (let i = 0; i < value.length; i++) {
      if (value[i]! < 0) fail(`${name}[${i}] must be a ${kind} in [0, 2^31), got ${value[i]}`);
    }
    return value;
  }
  if (value instanceof Uint32Array) {
    for (let i = 0; i < value.length; i++) {
      if (value[i]! > TOKEN_LIMIT) fail(`${name}[${i}] must be a ${kind} in [0, 2^31), got ${value[i]}`);
    }
    return new Int32Array(value.buffer, value.byteOffset, value.length);
  }
  if (!Array.isArray(value)) fail(`${name} must be an array of ${kind}s (number[], Int32Array or Uint32Array), got ${show(value)}`);
  const out = new Int32Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const t: unknown = value[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > TOKEN_LIMIT) {
      fail(`${name}[${i}] must be a ${kind} (an integer in [0, 2^31)), got ${show(t)}`);
    }
    out[i] = t;
  }
  return out;
}
