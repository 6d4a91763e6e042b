// Driving the lab page in the browser tests (tests/browser/*.test.mjs): open it on the
// bundled model with the test hooks, wait for model and data, set hyper-parameters,
// tick placements, run to the end.
import assert from 'node:assert/strict';
import { open, findModel } from './harness.mjs';

export const MODEL = findModel();

/** Server + Chromium with the lab page on MODEL (quick settings, ?test=1) and query appended. */
export async function openLab(opts = {}, query = '') {
  const h = await open({ modelsDir: MODEL.dir, ...opts });
  await h.page.goto(labUrl(h, query));
  await waitReady(h.page);
  return h;
}

export const labUrl = (h, query = '') => `${h.url}?model=${encodeURIComponent(MODEL.file)}&quick=1&test=1${query}`;

export async function waitReady(page) {
  await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
}

/** Waits for the model and data to load, failing on any error shown on the page. */
export async function waitLoaded(page) {
  await page.waitForFunction(() => {
    const s = window.__lab.state;
    return (s.model && s.data) || s.errors.length > 0;
  }, null, { timeout: 60000 });
  const errors = await page.evaluate(() => window.__lab.state.errors);
  assert.deepEqual(errors, [], 'loading the bundled model and data');
}

export async function setHp(page, values) {
  for (const [k, v] of Object.entries(values)) await page.fill(`[data-hp="${k}"]`, String(v));
}

/** Ticks exactly the preset placements in names (and waits for their counts). */
export async function choosePlacements(page, names) {
  const all = await page.$$eval('#presets input[type=checkbox]', (els) => els.map((e) => e.value));
  for (const v of all) {
    // The list is redrawn after every change: look the box up afresh each time.
    await page.locator(`#presets input[value="${v}"]`).setChecked(names.includes(v));
  }
  await page.waitForFunction((n) => window.__lab.state.counts.length === n, names.length, { timeout: 20000 });
}

export async function runToEnd(page, timeout = 120000) {
  await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 20000 });
  await page.click('#run');
  await page.waitForFunction(() => window.__lab.state.running, null, { timeout: 10000 }).catch(() => {});
  await page.waitForFunction(() => !window.__lab.state.running, null, { timeout });
}
