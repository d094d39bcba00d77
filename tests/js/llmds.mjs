// SPDX-License-Identifier: MIT
// The package under test: `llmds` as a consumer imports it (the package's own exports), or the
// build in $LLMDS_DIST when a developer tests an out-of-tree build.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = process.env.LLMDS_DIST;
export const llmds = await import(dist ? pathToFileURL(resolve(dist, 'index.mjs')).href : 'llmds');
export const distUrl = dist ? pathToFileURL(resolve(dist) + '/') : new URL('../../dist/', import.meta.url);
