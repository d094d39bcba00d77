// SPDX-License-Identifier: MIT
// Packs the package once per process and installs the tarball into a fresh consumer project,
// so tests exercise exactly what `npm install llmds` gives users.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));
let tarball;

function pack() {
  if (!tarball) {
    const dir = mkdtempSync(join(tmpdir(), 'llmds-tarball-'));
    execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz')));
  }
  return tarball;
}

/** A new temporary project with the packed llmds installed; returns its directory. */
export function consumerProject(prefix = 'llmds-consumer-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', pack()], { cwd: dir, stdio: 'ignore' });
  return dir;
}
