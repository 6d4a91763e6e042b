// The deployable site: scripts/site writes a static folder; a plain static server
// written here (no COOP/COEP, no CSP, no special headers at all) serves it under a
// sub-path, as a static host would. In Chromium the page must become cross-origin
// isolated through its service worker (one reload), load the threaded build and train
// a short run on the bundled model; with service workers blocked it must fall back
// to the single-thread build and still train.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { REPO, WASM_DIR, wasmHasApi, findModel, launchChromium, collectErrors, waitLoaded, setHp,
         choosePlacements, runToEnd } from './harness.mjs';

const MODEL = findModel();
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API yet (src/wasm/api.c)'
  : !MODEL ? 'no GGUF model in models/ or tests/fixtures/' : false;
const T = { timeout: 180000 };
const MOUNT = '/lab/';          // a sub-path, as on a project page of a static host

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
                '.wasm': 'application/wasm' };

let tmp, site, server, base, browser, isolatingServer, isolatingBase;

// A static file server and nothing more: GET/HEAD of files under MOUNT with a
// Content-Type and a length. No isolation headers, no CSP, no Range — unless
// `extra` headers are given (a host that can send COOP/COEP).
function plainStaticServer(root, extra = {}) {
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let rel = decodeURIComponent(url.pathname);
    if (!rel.startsWith(MOUNT) || rel.split('/').includes('..')) { res.writeHead(404); return res.end(); }
    rel = rel.slice(MOUNT.length) || 'index.html';
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.join(root, rel);
    let st;
    try { st = fs.statSync(file); } catch { st = null; }
    if (!st || !st.isFile()) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { ...extra, 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
                         'Content-Length': st.size });
    if (req.method === 'HEAD') return res.end();
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

before(async () => {
  if (SKIP) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-site-'));
  site = path.join(tmp, 'site');
  const r = spawnSync(path.join(REPO, 'scripts', 'site'), [site, '--wasm-dir', WASM_DIR,
    '--model', path.join(MODEL.dir, MODEL.file)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  server = await plainStaticServer(site);
  base = `http://127.0.0.1:${server.address().port}${MOUNT}`;
  isolatingServer = await plainStaticServer(site, { 'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin' });
  isolatingBase = `http://127.0.0.1:${isolatingServer.address().port}${MOUNT}`;
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  for (const srv of [server, isolatingServer].filter(Boolean)) {
    await new Promise((ok) => { srv.closeAllConnections(); srv.close(ok); });
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function openSite(contextOptions, at = base) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const errors = collectErrors(page, context);
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
  await page.goto(`${at}?model=${encodeURIComponent(MODEL.file)}&quick=1&test=1`);
  await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 60000 });
  return { context, page, errors, navigations: () => navigations };
}

async function shortRun(page) {
  await waitLoaded(page);
  await choosePlacements(page, ['ffn']);
  await setHp(page, { n_train: 2, n_eval: 2, epochs: 1 });
  await runToEnd(page);
  const s = await page.evaluate(() => ({ errors: window.__lab.state.errors, json: window.__lab.state.resultsJson }));
  assert.deepEqual(s.errors, []);
  const [p] = JSON.parse(s.json).trainings;
  assert.equal(p.name, 'ffn');
  assert.equal(p.steps_done, 2, 'two optimizer steps: 2 examples, 1 epoch, batch 1');
  assert.equal(p.steps.loss.length, 2);
  for (const v of [...p.steps.loss, p.eval_loss_before, p.eval_loss]) assert.ok(Number.isFinite(v) && v > 0, `loss ${v}`);
  assert.notEqual(p.eval_loss, p.eval_loss_before, 'training changed the model');
}

test('scripts/site writes the page, all three builds, model, data and charts, with a manifest', { skip: SKIP }, () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(site, 'site.json'), 'utf8'));
  const files = manifest.files.map((f) => f.path);
  for (const f of ['index.html', 'boot.js', 'coi-sw.js', 'app.js', 'worker.js', 'build-wasm/loralab_mt.js',
                   'build-wasm/loralab_mt.wasm', 'build-wasm/loralab_mt.worker.js', 'build-wasm/loralab_st.js',
                   'build-wasm/loralab_st.wasm', 'build-wasm/loralab_rx.js', 'build-wasm/loralab_rx.wasm',
                   'build-wasm/loralab_rx.worker.js', 'relaxed_probe.js', `models/${MODEL.file}`, 'data/alpaca_train.json',
                   'data/alpaca_eval.json', 'vendor/uplot/uPlot.esm.js', 'vendor/uplot/uPlot.min.css']) {
    assert.ok(files.includes(f), f);
    assert.ok(fs.existsSync(path.join(site, f)), f);
  }
  for (const f of manifest.files) assert.equal(fs.statSync(path.join(site, f.path)).size, f.bytes, f.path);
  assert.ok(fs.readFileSync(path.join(site, `models/${MODEL.file}`)).equals(fs.readFileSync(path.join(MODEL.dir, MODEL.file))));
  const index = fs.readFileSync(path.join(site, 'index.html'), 'utf8');
  assert.match(index, /<script src="boot.js"><\/script>/);
  assert.doesNotMatch(index, /src="app.js"/);
  assert.match(index, /<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self' 'wasm-unsafe-eval'/);
  // Nothing absolute: the site works under any path.
  assert.doesNotMatch(index, /(href|src)="\//);
});

test('without COOP/COEP from the host, the service worker isolates the page: threads, and a short run trains',
  { ...T, skip: SKIP }, async () => {
    const h = await openSite({});
    try {
      const s = await h.page.evaluate(() => ({ coi: self.crossOriginIsolated, how: document.documentElement.dataset.isolation,
                                               controlled: !!navigator.serviceWorker.controller, engine: window.__lab.state.engine }));
      assert.equal(s.coi, true);
      assert.equal(s.how, 'service-worker');
      assert.equal(s.controlled, true);
      assert.equal(s.engine.variant, 'rx');
      assert.equal(s.engine.isolated, true);
      assert.match(s.engine.version, /threads/);
      assert.equal(h.navigations(), 2, 'one reload after the service worker took control');
      await shortRun(h.page);
      assert.deepEqual(h.errors, []);

      // A second visit is isolated from the start: no reload.
      const page2 = await h.context.newPage();
      let navs = 0;
      page2.on('framenavigated', (f) => { if (f === page2.mainFrame()) navs++; });
      await page2.goto(`${base}?model=${encodeURIComponent(MODEL.file)}&quick=1&test=1&autoload=0`);
      await page2.waitForFunction(() => window.__lab && window.__lab.ready && window.__lab.state.engine, null, { timeout: 60000 });
      assert.equal(await page2.evaluate(() => self.crossOriginIsolated), true);
      assert.equal(navs, 1);
    } finally {
      await h.context.close();
    }
  });

test('with service workers blocked, the page runs the single-thread build and trains', { ...T, skip: SKIP }, async () => {
  const h = await openSite({ serviceWorkers: 'block' });
  try {
    const s = await h.page.evaluate(() => ({ coi: self.crossOriginIsolated, how: document.documentElement.dataset.isolation,
                                             engine: window.__lab.state.engine }));
    assert.equal(s.coi, false);
    assert.match(s.how, /^single-thread: /);
    assert.equal(s.engine.variant, 'st');
    assert.match(s.engine.version, /single-thread/);
    assert.equal(h.navigations(), 1, 'no reload loop');
    await shortRun(h.page);
    // The only console message allowed is boot.js's warning, which is not an error.
    assert.deepEqual(h.errors, []);
  } finally {
    await h.context.close();
  }
});

test('a host that sends COOP/COEP itself: threads at once, no service worker, no reload', { ...T, skip: SKIP }, async () => {
  const h = await openSite({}, isolatingBase);
  try {
    await h.page.waitForFunction(() => window.__lab.state.engine, null, { timeout: 60000 });
    const s = await h.page.evaluate(async () => ({ coi: self.crossOriginIsolated, how: document.documentElement.dataset.isolation,
                                                   registrations: (await navigator.serviceWorker.getRegistrations()).length,
                                                   engine: window.__lab.state.engine }));
    assert.equal(s.coi, true);
    assert.equal(s.how, 'headers');
    assert.equal(s.registrations, 0);
    assert.equal(s.engine.variant, 'rx');
    assert.equal(h.navigations(), 1);
    await waitLoaded(h.page);
    assert.deepEqual(h.errors, []);
  } finally {
    await h.context.close();
  }
});
