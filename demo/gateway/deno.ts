// SPDX-License-Identifier: MIT
// The KV-aware gateway (gateway.mjs) as a Deno.serve server. The router's index is snapshotted
// to a file every `--snapshot-ms` when it changed, and on SIGINT / SIGTERM, and restored from it
// on start; an unreadable snapshot is logged and the gateway starts empty.
//
//   deno run --allow-net --allow-read --allow-write --allow-env deno.ts --port 8787 \
//     --backends http://127.0.0.1:8001,http://127.0.0.1:8002 [--mode precise] [--snapshot router.snapshot]
import { init, KVRouter } from 'llmds';
import { createGateway, parseBackends } from './gateway.mjs';
import { tokenize } from './tokenizer.mjs';

function flag(name: string, fallback: string): string {
  const at = Deno.args.indexOf(`--${name}`);
  return at >= 0 && at + 1 < Deno.args.length ? Deno.args[at + 1]! : fallback;
}

const port = Number(flag('port', '8787'));
const mode = flag('mode', 'approximate') as 'approximate' | 'precise';
const policy = flag('policy', 'cache-aware') as 'cache-aware' | 'sglang' | 'least-loaded' | 'round-robin';
const backends = flag('backends', '');
const snapshotFile = flag('snapshot', '');
const snapshotMs = Number(flag('snapshot-ms', '5000'));

await init(); // reads the .wasm from the package: needs --allow-read

let router: KVRouter | undefined;
let restored = 'none';
if (snapshotFile) {
  try {
    router = KVRouter.deserialize(await Deno.readFile(snapshotFile));
    restored = 'snapshot';
    if (router.mode !== mode || router.blockSize !== 16) {
      // A snapshot of another configuration would route by the wrong index.
      console.error(`llmds gateway: ignoring snapshot ${snapshotFile} (a ${router.mode} router); starting empty`);
      router.dispose();
      router = undefined;
      restored = 'options_mismatch';
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      restored = (e as { code?: string }).code ?? 'error';
      console.error(`llmds gateway: ignoring snapshot ${snapshotFile} (${restored}); starting empty`);
    }
  }
}
router ??= new KVRouter({ blockSize: 16, mode, policy });

let dirty = false;
let saves = 0;
const gateway = createGateway({
  router,
  backends: parseBackends(backends ? backends.split(',') : []),
  tokenize: mode === 'precise' ? tokenize : undefined,
  onChange: () => (dirty = true),
  extraStats: () => ({ snapshot: { file: snapshotFile || null, restored, dirty, saves } }),
});

/** Writes the snapshot if the index changed (temp file + rename: a crash never leaves half a file). */
function snapshot(): void {
  if (!snapshotFile || !dirty) return;
  dirty = false;
  Deno.writeFileSync(`${snapshotFile}.tmp`, router!.serialize());
  Deno.renameSync(`${snapshotFile}.tmp`, snapshotFile);
  saves++;
}
const timer = setInterval(snapshot, snapshotMs);

const server = Deno.serve({ port, hostname: '127.0.0.1', onListen: ({ port }) => console.log(`llmds gateway on http://127.0.0.1:${port} (${restored}, ${mode})`) }, (request) =>
  gateway.handle(request),
);

async function shutdown(): Promise<void> {
  clearInterval(timer);
  await server.shutdown();
  snapshot();
  router!.dispose();
  Deno.exit(0);
}
Deno.addSignalListener('SIGINT', shutdown);
Deno.addSignalListener('SIGTERM', shutdown);
