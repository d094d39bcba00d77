// SPDX-License-Identifier: MIT
// Launches Debian's Chromium through playwright-core (no browser download) and collects every
// console error and page error, which the tests require to be none.
import { chromium } from 'playwright-core';

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** Opens url in a new page; returns { page, errors } where errors collects console errors. */
export async function open(browser, url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  return { page, errors };
}

/** Waits for the page to publish window.__result. */
export async function result(page, timeout = 20000) {
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout });
  return page.evaluate(() => window.__result);
}
