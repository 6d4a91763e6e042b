// Shared set-up of the browser tests: our server on a free port, Debian's Chromium
// headless through playwright-core with a fresh profile, console errors collected.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer } from '../../scripts/serve.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(REPO, 'tests', 'artifacts');
export const WASM_DIR = path.resolve(REPO, process.env.LPL_WASM_BUILD_DIR || 'build-wasm');

export const CHROME_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage'];
/** CHROME_ARGS with WebGPU on SwiftShader (a CPU emulator) instead of --disable-gpu. */
export const WEBGPU_ARGS = [...CHROME_ARGS.filter((a) => a !== '--disable-gpu'), '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];

/** True if the wasm build has the lab API (lab_ablate_step exported). */
export function wasmHasApi() {
  const js = path.join(WASM_DIR, 'loralab_mt.js');
  return fs.existsSync(js) && fs.readFileSync(js, 'utf8').includes('_lab_ablate_step');
}

/**
 * The bundled model the page should load: $LPL_TEST_MODEL, models/lab-small.q8_0.gguf,
 * any GGUF in models/, else the tiny fixture checkpoint converted to Q8_0 with the
 * native CLI ($LPL_BUILD_DIR/loralab convert). Returns {dir, file} or null.
 */
export function findModel() {
  const env = process.env.LPL_TEST_MODEL;
  if (env) return { dir: path.dirname(path.resolve(env)), file: path.basename(env) };
  const models = path.join(REPO, 'models');
  if (fs.existsSync(models)) {
    const files = fs.readdirSync(models).filter((f) => f.endsWith('.gguf')).sort();
    const pick = files.includes('lab-small.q8_0.gguf') ? 'lab-small.q8_0.gguf' : files[0];
    if (pick) return { dir: models, file: pick };
  }
  const dir = path.join(os.tmpdir(), `lpl-browser-model-${process.pid}`);
  const file = 'tiny-gpt2.q8_0.gguf';
  if (fs.existsSync(path.join(dir, file))) return { dir, file };
  for (const b of [process.env.LPL_BUILD_DIR, path.join(REPO, 'build')].filter(Boolean)) {
    const exe = path.join(path.resolve(b), 'loralab');
    if (!fs.existsSync(exe)) continue;
    fs.mkdirSync(dir, { recursive: true });
    const r = spawnSync(exe, ['convert', '--from', path.join(REPO, 'tests', 'fixtures', 'tiny-gpt2'),
                              '--to', path.join(dir, file), '--type', 'q8_0', '--quiet'], { encoding: 'utf8' });
    if (r.status === 0 && fs.existsSync(path.join(dir, file))) {
      process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
      return { dir, file };
    }
  }
  return null;
}

/**
 * Starts server + browser. opts: server options (isolation, modelsDir, hubRoot, ...).
 * Returns {url, page, context, browser, consoleErrors, close()}.
 */
export async function open(opts = {}) {
  const { webgpu, ...serverOpts } = opts;  // webgpu: launch Chromium with WEBGPU_ARGS
  const server = await startServer({ port: 0, wasmDir: WASM_DIR, ...serverOpts });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium', headless: true, args: webgpu ? WEBGPU_ARGS : CHROME_ARGS,
    viewport: { width: 1280, height: 900 }, acceptDownloads: true,
  });
  const page = context.pages()[0] || await context.newPage();
  const consoleErrors = collectErrors(page, context);
  return {
    url: server.url, page, context, consoleErrors, server, userDataDir,
    async close() {
      await context.close().catch(() => {});
      await server.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** The processes of ps -eo pid,ppid,rss,args: [{pid, ppid, rss (bytes), args}]. */
function processes() {
  const r = spawnSync('ps', ['-eo', 'pid=,ppid=,rss=,args='], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map((l) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(l);
    return m && { pid: +m[1], ppid: +m[2], rss: +m[3] * 1024, args: m[4] };
  }).filter(Boolean);
}

/** The Chromium started with userDataDir: its browser process and every descendant, from procs. */
function chromiumTree(procs, userDataDir) {
  const roots = procs.filter((p) => p.args.includes(`--user-data-dir=${userDataDir}`) &&
                                    !p.args.includes('--type='));
  const ids = new Set(roots.map((p) => p.pid));
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) if (!ids.has(p.pid) && ids.has(p.ppid)) { ids.add(p.pid); grew = true; }
  }
  return procs.filter((p) => ids.has(p.pid));
}

/**
 * RSS in bytes of the Chromium started with userDataDir: its browser process and every
 * descendant (renderers, the GPU and utility processes), from /proc via ps.
 */
export function chromiumRss(userDataDir) {
  return chromiumTree(processes(), userDataDir).reduce((a, p) => a + p.rss, 0);
}

/**
 * Pss of one process in bytes (/proc/PID/smaps_rollup: pages shared by n processes
 * count 1/n), or 0 when it has gone or cannot be read.
 */
function pssOf(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? +m[1] * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * RSS and PSS in bytes of the same process tree as chromiumRss, from one ps listing:
 * {rss, pss}. Summed RSS counts shared pages (the zygote's, shared memory between the
 * renderer and the GPU process) once per process; summed PSS counts them once.
 */
export function chromiumMemory(userDataDir) {
  const tree = chromiumTree(processes(), userDataDir);
  return { rss: tree.reduce((a, p) => a + p.rss, 0), pss: tree.reduce((a, p) => a + pssOf(p.pid), 0) };
}

export function artifact(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

/** Launches headless Chromium (no profile): for tests that need several contexts. */
export function launchChromium() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROME_ARGS });
}

/** Collects a page's console errors, page errors and worker errors into a list. */
export function collectErrors(page, context = page.context()) {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  context.on('weberror', (e) => errors.push(`weberror: ${e.error().message}`));
  return errors;
}

// ---------------------------------------------------------------- driving the lab page (?test=1)

/** The lab page on a bundled model ({dir, file} of findModel) with quick settings and ?test=1, query appended. */
export function labUrl(h, model, query = '') {
  return `${h.url}?model=${encodeURIComponent(model.file)}&quick=1&test=1${query}`;
}

/** Waits until the page's test hooks are up (window.__lab.ready). */
export async function waitReady(page) {
  await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
}

/** Server + Chromium with the lab page on model (see labUrl). */
export async function openLab(model, opts = {}, query = '') {
  const h = await open({ modelsDir: model.dir, ...opts });
  await h.page.goto(labUrl(h, model, query));
  await waitReady(h.page);
  return h;
}

/** Waits until the model and data are loaded (autoload) and asserts no error was shown. */
export async function waitLoaded(page) {
  await page.waitForFunction(() => {
    const s = window.__lab.state;
    return (s.model && s.data) || s.errors.length > 0;
  }, null, { timeout: 60000 });
  const errors = await page.evaluate(() => window.__lab.state.errors);
  assert.deepEqual(errors, [], 'loading the bundled model and data');
}

/** Types hyper-parameters into their fields: {n_train: 2, epochs: 1, ...}. */
export async function setHp(page, values) {
  for (const [k, v] of Object.entries(values)) await page.fill(`[data-hp="${k}"]`, String(v));
}

/** Ticks exactly the named placements and waits for their parameter counts. */
export async function choosePlacements(page, names) {
  const all = await page.$$eval('#presets input[type=checkbox]', (els) => els.map((e) => e.value));
  for (const v of all) {
    // The list is redrawn after every change: look the box up afresh each time.
    await page.locator(`#presets input[value="${v}"]`).setChecked(names.includes(v));
  }
  await page.waitForFunction((n) => window.__lab.state.counts.length === n, names.length, { timeout: 20000 });
}

/** Clicks Run and waits until the run has ended. */
export async function runToEnd(page, timeout = 120000) {
  await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 20000 });
  await page.click('#run');
  await page.waitForFunction(() => window.__lab.state.running, null, { timeout: 10000 }).catch(() => {});
  await page.waitForFunction(() => !window.__lab.state.running, null, { timeout });
}
