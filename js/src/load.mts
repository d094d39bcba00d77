// SPDX-License-Identifier: MIT
// The default loader for Node, Deno, browsers, bundlers and Web Workers: picks the SIMD or the
// portable build and compiles its .wasm from wherever the options or the package put it.
import type { RawModuleBase } from './engine.mjs';
import { LlmdsError } from './errors.mjs';
import { glue, wantsSimd } from './glue.mjs';
import { instantiate, type InitOptions, type WasmSource } from './init.mjs';

declare const Deno: { readFile(path: URL | string): Promise<Uint8Array<ArrayBuffer>> } | undefined;

function packagedWasm(simd: boolean): URL {
  // Literal `new URL(..., import.meta.url)`: the form bundlers recognise as an asset.
  return simd ? new URL('./llmds.wasm', import.meta.url) : new URL('./llmds-nosimd.wasm', import.meta.url);
}

async function readFileUrl(url: URL): Promise<Uint8Array> {
  if (typeof Deno !== 'undefined') return Deno.readFile(url);
  const fsName = 'node:fs/promises'; // not a literal: keeps browser bundlers from resolving it
  const fs = (await import(/* @vite-ignore */ fsName)) as { readFile(path: URL): Promise<Uint8Array> };
  return fs.readFile(url);
}

async function compileResponse(response: Response): Promise<WebAssembly.Module> {
  if (!response.ok) throw new LlmdsError('not_initialized', `llmds: fetching ${response.url} failed with HTTP ${response.status}`);
  if (typeof WebAssembly.compileStreaming === 'function' && response.headers.get('content-type')?.startsWith('application/wasm')) {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

async function compile(source: WasmSource): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer) return WebAssembly.compile(source);
  if (ArrayBuffer.isView(source)) {
    return WebAssembly.compile(new Uint8Array(source.buffer, source.byteOffset, source.byteLength).slice());
  }
  if (typeof source !== 'string' && !(source instanceof URL)) return compileResponse(source);
  const url = source instanceof URL ? source : toUrl(source);
  if (url.protocol === 'file:') return WebAssembly.compile((await readFileUrl(url)).slice().buffer);
  return compileResponse(await fetch(url));
}

function toUrl(path: string): URL {
  try {
    return new URL(path);
  } catch {
    // A relative path or URL: against the page in browsers, the working directory elsewhere.
    const base = (globalThis as { location?: { href: string } }).location?.href ?? `file://${cwd()}/`;
    return new URL(path, base);
  }
}

function cwd(): string {
  const proc = (globalThis as { process?: { cwd(): string } }).process;
  const deno = typeof Deno !== 'undefined' ? (Deno as unknown as { cwd(): string }) : undefined;
  return proc?.cwd() ?? deno?.cwd() ?? '';
}

/** @internal Compiles a user-supplied wasm source. */
export { compile };

/** @internal */
export async function loadDefault(options: InitOptions): Promise<RawModuleBase> {
  const simd = wantsSimd(options);
  const [factory, module] = await Promise.all([glue(simd), compile(options.wasm ?? packagedWasm(simd))]);
  return instantiate(factory, module);
}
