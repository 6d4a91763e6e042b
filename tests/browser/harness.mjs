// Shared set-up of the browser tests: our server on a free port, Debian's Chromium
// headless through playwright-core with a fresh profile, console errors collected.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../../scripts/serve.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(REPO, 'tests', 'artifacts');
export const WASM_DIR = path.resolve(REPO, process.env.LPL_WASM_BUILD_DIR || 'build-wasm');

const CHROME_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage'];

/** True if the wasm build has the lab API (lab_ablate_step exported). */
export function wasmHasApi() {
  const js = path.join(WASM_DIR, 'loralab_mt.js');
  return fs.existsSync(js) && fs.readFileSync(js, 'utf8').includes('_lab_ablate_step');
}

/**
 * The bundled model the page should load: models/lab-small.q8_0.gguf if present,
 * else the first GGUF in models/ or tests/fixtures/. Returns {dir, file} or null.
 */
export function findModel() {
  const env = process.env.LPL_TEST_MODEL;
  if (env) return { dir: path.dirname(path.resolve(env)), file: path.basename(env) };
  for (const dir of [path.join(REPO, 'models'), path.join(REPO, 'tests', 'fixtures')]) {
    if (!fs.existsSync(dir)) continue;
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.gguf')).sort();
    const pick = files.includes('lab-small.q8_0.gguf') ? 'lab-small.q8_0.gguf' : files[0];
    if (pick) return { dir, file: pick };
  }
  return null;
}

/**
 * Starts server + browser. opts: server options (isolation, modelsDir, hubRoot, ...).
 * Returns {url, page, context, browser, consoleErrors, close()}.
 */
export async function open(opts = {}) {
  const server = await startServer({ port: 0, wasmDir: WASM_DIR, ...opts });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium', headless: true, args: CHROME_ARGS,
    viewport: { width: 1280, height: 900 }, acceptDownloads: true,
  });
  const page = context.pages()[0] || await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  context.on('weberror', (e) => consoleErrors.push(`weberror: ${e.error().message}`));
  return {
    url: server.url, page, context, consoleErrors,
    async close() {
      await context.close().catch(() => {});
      await server.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export function artifact(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}
