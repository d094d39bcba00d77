// SPDX-License-Identifier: MIT
// Drives WebKit (Debian's WebKitGTK MiniBrowser) through WebKitWebDriver, the W3C WebDriver HTTP
// API, with plain fetch() calls. MiniBrowser has no headless mode: it runs on a private Xvfb
// display. Same interface as chromium.mjs: launch(), open(browser, url) -> { page, errors },
// result(page); page.evaluate(fn, arg) runs fn in the page (awaiting a returned promise).
//
// Classic WebDriver reports no console messages, so every HTML response reaches MiniBrowser
// through a loopback proxy that puts a recorder of page errors, unhandled rejections, failed
// resource loads and console.error calls in front of the page's own scripts; `errors` is
// refreshed from it after every evaluate().
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, request } from 'node:http';

const driverPath = process.env.WEBKIT_WEBDRIVER_PATH ?? '/usr/bin/WebKitWebDriver';
const browserPath = process.env.MINIBROWSER_PATH ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

const recorder = `<script>(() => {
  const errors = (window.__llmdsErrors = []);
  addEventListener('error', (e) => errors.push(e.target === window ? \`pageerror: \${e.message}\`
    : \`failed to load \${e.target.src || e.target.href}\`), true);
  addEventListener('unhandledrejection', (e) => errors.push(\`unhandled rejection: \${e.reason}\`));
  const error = console.error.bind(console);
  console.error = (...args) => (errors.push(args.map(String).join(' ')), error(...args));
})();</script>`;

function fail(what, detail) {
  throw new Error(`WebKit: ${what}${detail ? `: ${detail}` : ''}`);
}

/** Spawns a child; rejects if it exits before ready() resolves. */
function child(cmd, args, options, ready) {
  const proc = spawn(cmd, args, options);
  let stderr = '';
  proc.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  const exited = new Promise((_, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code, signal) => reject(new Error(`${cmd} exited (${signal ?? code}): ${stderr.trim()}`)));
  });
  exited.catch(() => {});
  return { proc, ready: Promise.race([ready(proc), exited]) };
}

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  }).on('error', reject);
});

/** A loopback proxy to `origin` that injects the recorder into every HTML response. */
async function proxyTo(origin) {
  const target = new URL(origin);
  const server = createServer((req, res) => {
    const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method,
      headers: { ...req.headers, host: target.host, 'accept-encoding': 'identity' } }, (r) => {
      if (!String(r.headers['content-type']).startsWith('text/html')) {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
        return;
      }
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        // After the doctype (before it would switch the page to quirks mode), before any script.
        const html = Buffer.concat(chunks).toString('utf8').replace(/^(\s*<!doctype[^>]*>)?/i, (d) => d + recorder);
        const headers = { ...r.headers };
        delete headers['content-length'];
        res.writeHead(r.statusCode, headers).end(html);
      });
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

export async function launch() {
  for (const [path, pkg, env] of [[driverPath, 'webkit2gtk-driver', 'WEBKIT_WEBDRIVER_PATH'],
    [browserPath, 'libwebkit2gtk-4.1-0', 'MINIBROWSER_PATH']]) {
    if (!existsSync(path)) {
      fail(`${path} not found`, `run \`bash scripts/setup.sh\` (installs the ${pkg} package), set ${env}, ` +
        'or set LLMDS_SKIP_ENGINES=webkit to skip the WebKit tests');
    }
  }
  const procs = [];
  const proxies = new Map();
  const running = () => procs.filter((p) => p.exitCode === null && p.signalCode === null);
  // SIGTERM lets Xvfb remove its lock file and socket; SIGKILL only for a process that hangs.
  const kill = () => running().forEach((p) => p.kill('SIGTERM'));
  process.once('exit', kill);
  let session, driver;
  const close = async () => {
    if (session) await call('DELETE', `/session/${session}`).catch(() => {});
    session = undefined;
    const exits = running().map((p) => new Promise((r) => p.once('exit', r)));
    kill();
    const timer = setTimeout(() => running().forEach((p) => p.kill('SIGKILL')), 3000);
    await Promise.all(exits);
    clearTimeout(timer);
    process.off('exit', kill);
    for (const { server } of proxies.values()) server.close();
  };

  async function call(method, path, body) {
    const res = await fetch(`${driver}${path}`, { method, headers: { 'content-type': 'application/json' },
      body: body && JSON.stringify(body), signal: AbortSignal.timeout(60000) });
    const { value } = await res.json();
    if (!res.ok) fail(`${method} ${path.replace(/^\/session\/[^/]+/, '')}: ${value?.error}`, value?.message);
    return value;
  }

  try {
    // Xvfb picks a free display number itself and writes it to fd 3.
    if (!existsSync('/usr/bin/Xvfb')) fail('/usr/bin/Xvfb not found', 'run `bash scripts/setup.sh` (installs the xvfb package)');
    const xvfb = child('/usr/bin/Xvfb', ['-displayfd', '3', '-nolisten', 'tcp', '-screen', '0', '1280x1024x24'],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] },
      (p) => new Promise((resolve) => { let s = ''; p.stdio[3].on('data', (d) => (s += d).includes('\n') && resolve(`:${s.trim()}`)); }));
    procs.push(xvfb.proc);
    const display = await xvfb.ready;

    const port = await freePort();
    driver = `http://127.0.0.1:${port}`;
    const wd = child(driverPath, [`--port=${port}`, '--host=127.0.0.1'],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DISPLAY: display } },
      async (p) => {
        for (const end = Date.now() + 15000; p.exitCode === null && p.signalCode === null; await new Promise((r) => setTimeout(r, 50))) {
          try { if ((await (await fetch(`${driver}/status`)).json()).value.ready) return; } catch {}
          if (Date.now() > end) fail('WebKitWebDriver did not answer on its port in 15 s');
        }
      });
    procs.push(wd.proc);
    await wd.ready;

    ({ sessionId: session } = await call('POST', '/session', { capabilities: { alwaysMatch: {
      'webkitgtk:browserOptions': { binary: browserPath, args: ['--automation'] } } } }));
    await call('POST', `/session/${session}/timeouts`, { script: 30000, pageLoad: 30000 });
  } catch (e) {
    await close();
    throw e;
  }

  async function proxied(url) {
    const u = new URL(url);
    if (!proxies.has(u.origin)) proxies.set(u.origin, await proxyTo(u.origin));
    return proxies.get(u.origin).url + u.pathname + u.search + u.hash;
  }

  return { call, session: () => session, proxied, close };
}

/** Navigates the browser's window to url (one page at a time); returns { page, errors }. */
export async function open(browser, url) {
  const errors = [];
  const path = `/session/${browser.session()}`;
  await browser.call('POST', `${path}/url`, { url: await browser.proxied(url) });
  const page = {
    async evaluate(fn, arg) {
      const { value, recorded } = await browser.call('POST', `${path}/execute/sync`, {
        script: `return Promise.resolve((${fn})(arguments[0])).then((value) => ({ value, recorded: window.__llmdsErrors }))`,
        args: [arg ?? null],
      });
      errors.splice(0, errors.length, ...(recorded ?? ['the error recorder is missing from this page']));
      return value;
    },
    close: async () => {},
  };
  return { page, errors };
}

/** Waits for the page to publish window.__result. */
export async function result(page, timeout = 20000) {
  return page.evaluate(async (ms) => {
    for (const end = Date.now() + ms; window.__result === undefined; await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > end) throw new Error(`no window.__result after ${ms} ms`);
    }
    return window.__result;
  }, timeout);
}
