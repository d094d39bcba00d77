// SPDX-License-Identifier: MIT
// Launches Debian's Firefox ESR through puppeteer-core over WebDriver BiDi (no browser download)
// and collects every console error and page error, which the tests require to be none. Same
// interface as chromium.mjs: launch(), open(browser, url) -> { page, errors }, result(page).
import { existsSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const executablePath = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';

export async function launch() {
  if (!existsSync(executablePath)) {
    throw new Error(`Firefox ESR not found at ${executablePath}: run \`bash scripts/setup.sh\` (installs the ` +
      'firefox-esr package), set FIREFOX_PATH, or set LLMDS_SKIP_ENGINES=firefox to skip the Firefox tests');
  }
  return puppeteer.launch({ browser: 'firefox', executablePath, headless: true, protocolTimeout: 30000 });
}

// puppeteer's Page has the same goto/on('console')/on('pageerror') as playwright's.
export { open } from './chromium.mjs';

/** Waits for the page to publish window.__result. */
export async function result(page, timeout = 20000) {
  await page.waitForFunction(() => window.__result !== undefined, { timeout, polling: 50 });
  return page.evaluate(() => window.__result);
}
