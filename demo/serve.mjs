// SPDX-License-Identifier: MIT
// A tiny static server for the demo page: serves the repository root on loopback, so the page
// imports the built package from /dist/ exactly as a browser app would.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const types = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
};

/** Starts the server; resolves to its base URL. Port 0 picks a free port. */
export function serve({ port = 0, host = '127.0.0.1' } = {}) {
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      let file = normalize(join(root, path));
      if (!file.startsWith(root.endsWith(sep) ? root : root + sep) && file !== root) throw new Error('outside root');
      if ((await stat(file)).isDirectory()) {
        if (!path.endsWith('/')) {
          // /demo -> /demo/, so the page's relative URLs resolve inside the folder.
          res.writeHead(301, { location: `${path}/${new URL(req.url, 'http://x').search}` }).end();
          return;
        }
        file = join(file, 'index.html');
      }
      const body = await readFile(file);
      const headers = { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' };
      // The demo page is cross-origin isolated: its performance.now() then ticks in µs, not 0.1 ms.
      if (path.startsWith('/demo/')) Object.assign(headers, { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
      res.writeHead(200, headers);
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve({ server, url: `http://${host}:${server.address().port}` })));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 8080);
  const { url } = await serve({ port });
  console.log(`llmds demo: ${url}/demo/  (Ctrl+C to stop)`);
}
