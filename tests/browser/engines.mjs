// SPDX-License-Identifier: MIT
// The browser engines the browser tests run in, each driven by a launcher module with the same
// interface (launch, open, result). Firefox ESR and WebKit come from Debian packages installed by
// scripts/setup-toolchain.sh; a missing one fails its tests unless it is skipped explicitly with
// LLMDS_SKIP_ENGINES=firefox,webkit (or =1 for both). Chromium is always required.
const skipList = (process.env.LLMDS_SKIP_ENGINES ?? '').toLowerCase();
const skipped = (id) => ['1', 'all'].includes(skipList) || skipList.split(/[\s,]+/).includes(id);

export const engines = [
  { id: 'chromium', name: 'Chromium', load: () => import('./chromium.mjs') },
  { id: 'firefox', name: 'Firefox ESR', load: () => import('./firefox.mjs') },
  { id: 'webkit', name: 'WebKit', load: () => import('./webkit.mjs') },
].map((e) => ({ ...e, skip: e.id !== 'chromium' && skipped(e.id) ? `LLMDS_SKIP_ENGINES=${skipList}` : false }));
