// Streamed Hub import in the page against the Hub stand-in (scripts/hub_standin.mjs:
// weights by a 302 to a second port, Range, ETag, X-Repo-Commit):
//  - a DialoGPT-medium-shaped fp16 pytorch_model.bin (random weights, the real legacy
//    layout with lm_head.weight and attn.bias buffers, made here by
//    scripts/make_checkpoint.py) loads with Chromium's RSS within 1 GB of the idle
//    page, while the stand-in drops the connection once mid-file (the download
//    resumes with Range); a cancel during download leaves no cache entry;
//  - the unchanged repo then loads from the cache without touching the CDN;
//  - a changed repo (main moved) downloads again; a cache entry can be deleted;
//  - a server without Range: an interrupted download, and a zip .bin, fail with
//    messages that say so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { open, REPO, wasmHasApi, chromiumRss } from './harness.mjs';

const FIX = path.join(REPO, 'tests', 'fixtures');
const GB = 1e9;
const hasTorch = () => spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API' : !hasTorch() ? 'python3-torch is missing (scripts/make_checkpoint.py)' : false;

let hubRoot;
const repoDir = (name) => path.join(hubRoot, 'org', name);

function publishTiny(name, src, weights) {
  fs.mkdirSync(repoDir(name), { recursive: true });
  for (const f of ['config.json', 'vocab.json', 'merges.txt', weights]) fs.copyFileSync(path.join(src, f), path.join(repoDir(name), f));
}

before(() => {
  if (SKIP) return;
  hubRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-import-hub-'));
  const r = spawnSync('/usr/bin/python3', [path.join(REPO, 'scripts', 'make_checkpoint.py'), '--shape', 'medium',
    '--format', 'bin16', '--out', repoDir('medium')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  publishTiny('tiny', path.join(FIX, 'tiny-gpt2'), 'model.safetensors');
  publishTiny('tinyzip', path.join(FIX, 'tiny-gpt2-bin16'), 'pytorch_model.bin');
});
after(() => { if (hubRoot) fs.rmSync(hubRoot, { recursive: true, force: true }); });

async function startLoad(page, repo) {
  await page.check('input[name=model-kind][value=hub]');
  await page.fill('#hub-repo', repo);
  await page.fill('#hub-rev', 'main');
  await page.evaluate(() => { const s = window.__lab.state; s.errors = []; s.model = null; s.progress = []; });
  await page.click('#load-model');
}

async function settle(page) {
  await page.waitForFunction(() => window.__lab.state.model || window.__lab.state.errors.length, null, { timeout: 900000 })
    .catch(async (e) => { throw new Error(`${e.message}; the page says: ${await page.textContent('#model-status')}`); });
  await page.waitForFunction(() => document.querySelector('#cancel-load').hidden, null, { timeout: 60000 });
  return page.evaluate(() => ({ model: window.__lab.state.model, errors: window.__lab.state.errors,
    status: document.querySelector('#model-status').textContent, progress: window.__lab.state.progress,
    cached: window.__lab.state.cached }));
}

async function loadHub(page, repo) {
  await startLoad(page, repo);
  return settle(page);
}

const T = { timeout: 1500000, skip: SKIP };

test('medium fp16 .bin through the redirecting Hub: resumed, within 1 GB of the idle page, then from the cache', T, async () => {
  const medium = path.join(repoDir('medium'), 'pytorch_model.bin');
  const size = fs.statSync(medium).size;
  const h = await open({ hubRoot, hubDropOnce: Math.floor(size * 0.4) });
  const { page } = h;
  try {
    await page.goto(`${h.url}?hub=/hub&autoload=0&test=1`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 60000 });
    await new Promise((ok) => setTimeout(ok, 3000));
    let idle = 0;
    for (let i = 0; i < 5; i++) { idle = Math.max(idle, chromiumRss(h.userDataDir)); await new Promise((ok) => setTimeout(ok, 200)); }
    assert.ok(idle > 0, 'Chromium processes found');

    // Cancel during the download: an error saying so, no cache entry.
    await startLoad(page, 'org/medium');
    await page.waitForFunction(() => window.__lab.state.progress.some((p) => p.phase === 'download' && p.loaded > 50e6),
                               null, { timeout: 120000 });
    await page.click('#cancel-load');
    const c = await settle(page);
    assert.equal(c.model, null);
    assert.match(c.errors.join('\n'), /cancelled/);
    assert.deepEqual(c.cached.filter((e) => e.repo === 'org/medium'), []);
    assert.equal(h.server.hub.stats.drops, 0, 'the cancel came before the drop');

    // The whole import, sampling RSS; the connection is dropped once at 40%.
    let peak = 0;
    const timer = setInterval(() => { peak = Math.max(peak, chromiumRss(h.userDataDir)); }, 250);
    const t0 = Date.now();
    const r = await loadHub(page, 'org/medium').finally(() => clearInterval(timer));
    const secs = (Date.now() - t0) / 1000;
    assert.deepEqual(r.errors, []);
    assert.equal(r.model.n_layer, 24);
    assert.equal(r.model.n_embd, 1024);
    assert.match(r.model.matrix_type, /q8_0/i);
    assert.match(r.status, /converted from pytorch_model\.bin, cached in OPFS/);
    assert.equal(h.server.hub.stats.drops, 1, 'the stand-in dropped the connection once');
    assert.ok(h.server.hub.stats.rangeGets >= 1, 'the download resumed with Range');
    const dl = r.progress.filter((p) => p.phase === 'download');
    assert.equal(dl[dl.length - 1].loaded, size);
    assert.ok(dl.some((p) => /MB\/s/.test(p.text) && /tensor \d+ of 292/.test(p.text)), 'rate and tensor progress shown');
    const growth = peak - idle;
    console.log(`medium .bin import: ${secs.toFixed(1)} s, Chromium RSS idle ${(idle / GB).toFixed(2)} GB, ` +
                `peak ${(peak / GB).toFixed(2)} GB, growth ${(growth / GB).toFixed(2)} GB`);
    assert.ok(growth <= 1 * GB, `RSS grew by ${(growth / GB).toFixed(2)} GB over the idle page (target 1 GB)`);
    const entry = r.cached.find((e) => e.repo === 'org/medium');
    assert.ok(entry && entry.bytes > 300e6, 'listed in the cache with its size');

    // Unchanged main: from the cache, the CDN untouched, the same model.
    const gets = h.server.hub.stats.cdnGets;
    const again = await loadHub(page, 'org/medium');
    assert.deepEqual(again.errors, []);
    assert.match(again.status, /from the browser cache/);
    assert.equal(again.model.sha256, r.model.sha256);
    assert.equal(h.server.hub.stats.cdnGets, gets, 'no download');
    assert.deepEqual(h.consoleErrors.filter((e) => !/net::ERR|Failed to load resource/.test(e)), []);
  } finally {
    await h.close();
  }
});

test('a moved main downloads again; a cache entry can be deleted', T, async () => {
  const h = await open({ hubRoot });
  const { page } = h;
  try {
    await page.goto(`${h.url}?hub=/hub&autoload=0&test=1`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 60000 });
    const first = await loadHub(page, 'org/tiny');
    assert.deepEqual(first.errors, []);
    assert.match(first.status, /converted from model\.safetensors, cached in OPFS/);
    const same = await loadHub(page, 'org/tiny');
    assert.match(same.status, /from the browser cache/);
    assert.equal(same.model.sha256, first.model.sha256);

    // main moves: new weights (the fp16 .bin of the same model) replace the old ones
    fs.rmSync(path.join(repoDir('tiny'), 'model.safetensors'));
    fs.copyFileSync(path.join(FIX, 'tiny-gpt2-bin16', 'pytorch_model.bin'), path.join(repoDir('tiny'), 'pytorch_model.bin'));
    const moved = await loadHub(page, 'org/tiny');
    assert.deepEqual(moved.errors, []);
    assert.match(moved.status, /converted from pytorch_model\.bin, cached in OPFS/);
    assert.notEqual(moved.model.sha256, first.model.sha256);
    const tinies = moved.cached.filter((e) => e.repo === 'org/tiny');
    assert.equal(tinies.length, 2, 'one entry per commit');

    await page.click('#cache-details summary');
    const before = await page.locator('#cached-models tr').count();
    await page.locator('#cached-models tr button').first().click();
    await page.waitForFunction((n) => document.querySelectorAll('#cached-models tr').length === n - 1, before, { timeout: 10000 });
    assert.match(await page.textContent('#cached-models caption'), /1 model\(s\)/);
  } finally {
    await h.close();
  }
});

test('a server without Range: clear messages for an interrupted download and a zip .bin', T, async () => {
  const h = await open({ hubRoot, hubNoRange: true, hubDropOnce: 400000 });
  const { page } = h;
  try {
    await page.goto(`${h.url}?hub=/hub&autoload=0&test=1`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 60000 });
    fs.rmSync(repoDir('tiny'), { recursive: true, force: true });
    publishTiny('tiny', path.join(FIX, 'tiny-gpt2'), 'model.safetensors');
    const cut = await loadHub(page, 'org/tiny');
    assert.equal(cut.model, null);
    assert.match(cut.errors.join('\n'), /broke off after .* the server does not support resuming it \(HTTP Range requests\)/);
    const zip = await loadHub(page, 'org/tinyzip');
    assert.equal(zip.model, null);
    assert.match(zip.errors.join('\n'), /directory at the end of the file; the streamed import needs that end first \(HTTP Range/);
    assert.equal(zip.cached.length, 0, 'nothing cached');
  } finally {
    await h.close();
  }
});
