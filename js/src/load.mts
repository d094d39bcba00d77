// SPDX-License-Identifier: MIT
// The default loader for Node, Deno, browsers, bundlers and Web Workers: picks the SIMD or the
// portable build and compiles its .wasm from wherever the options or the package put it.
import type { RawModuleBase } from './engine.mjs';
import { LlmdsError } from './errors.mjs';
import { glue, wantsSimd } from './glue.mjs';
import { instantiate, loadFailed, type InitOptions, type WasmSource } from './init.mjs';
import { show } from './validate.mjs';

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
  const where = response.url || 'the wasm Response';
  if (!response.ok) throw new LlmdsError('load_failed', `llmds: fetching ${where} failed with HTTP ${response.status}`);
  const type = response.headers.get('content-type') ?? '';
  if (type.startsWith('text/html')) {
    throw new LlmdsError('load_failed', `llmds: ${where} is an HTML page, not the .wasm module (a wrong URL or a server fallback page?)`);
  }
  const streaming = typeof WebAssembly.compileStreaming === 'function' && type.startsWith('application/wasm');
  return step(`compiling ${where}`, async () =>
    streaming ? WebAssembly.compileStreaming(response) : WebAssembly.compile(await response.arrayBuffer()),
  );
}

/** Runs one loading step; its failure becomes `load_failed` naming the step, with the cause. */
async function step<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw loadFailed(`llmds: ${what} failed`, error);
  }
}

const compileBytes = (bytes: BufferSource, where: string) => step(`compiling ${where}`, () => WebAssembly.compile(bytes));

async function compile(source: WasmSource): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer) return compileBytes(source, 'the wasm bytes');
  if (ArrayBuffer.isView(source)) {
    return compileBytes(new Uint8Array(source.buffer, source.byteOffset, source.byteLength).slice(), 'the wasm bytes');
  }
  if (typeof Response !== 'undefined' && source instanceof Response) return compileResponse(source);
  if (typeof source !== 'string' && !(source instanceof URL)) {
    throw new LlmdsError('invalid_argument', `init option wasm must be a URL, a path, the module's bytes, a WebAssembly.Module or a Response, got ${show(source)}`);
  }
  const url = source instanceof URL ? source : toUrl(source);
  if (url.protocol !== 'file:') return compileResponse(await step(`fetching ${url.href}`, () => fetch(url)));
  const bytes = await step(`reading ${url.href}`, () => readFileUrl(url));
  return compileBytes(bytes.slice().buffer, url.href);
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
