// The page as a user meets it, besides running: its Quick settings and generation
// defaults are the CLI's (one source, lab_presets = loralab count --presets), it
// fits a 390 px wide phone without sideways scrolling, and an accessibility audit
// (axe-core, run inside the page) finds no violations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { open, wasmHasApi, findModel, waitLoaded, setHp, REPO } from './harness.mjs';

const MODEL = findModel();
const LORALAB = path.resolve(process.env.LPL_BUILD_DIR || path.join(REPO, 'build'), 'loralab');
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API yet (src/wasm/api.c)'
  : !MODEL ? 'no GGUF model in models/ or tests/fixtures/'
    : !fs.existsSync(LORALAB) ? `no native ${LORALAB} to compare with` : false;
const T = { timeout: 150000 };
const AXE = path.join(REPO, 'node_modules', 'axe-core', 'axe.min.js');

async function openLab(query = '', viewport = null) {
  const h = await open({ modelsDir: MODEL.dir });
  if (viewport) await h.page.setViewportSize(viewport);   // a phone from the start, as a phone opens it
  await h.page.goto(`${h.url}?model=${encodeURIComponent(MODEL.file)}&test=1${query}`);
  await h.page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
  return h;
}

const readHp = (page) => page.$$eval('[data-hp]', (els) => Object.fromEntries(els.map((e) =>
  [e.dataset.hp, e.tagName === 'SELECT' || e.dataset.hp === 'base_dropout' ? e.value : Number(e.value)])));

test('Study and Quick are the CLI\'s defaults and --quick; generation uses the CLI\'s defaults', { ...T, skip: SKIP }, async () => {
  const r = spawnSync(LORALAB, ['count', '--presets'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const cli = JSON.parse(r.stdout);
  const h = await openLab('&autoload=0');
  const { page } = h;
  try {
    const keys = ['r', 'alpha', 'dropout', 'base_dropout', 'epochs', 'batch_size', 'lr', 'schedule', 'warmup_steps',
                  'n_train', 'n_eval', 'max_len', 'seed', 'seeds', 'compute', 'device'];
    const pick = (o) => Object.fromEntries(keys.map((k) => [k, o[k]]));
    assert.deepEqual(await readHp(page), pick(cli.study), 'the page opens on the study settings');
    await page.click('#hp-quick');
    assert.deepEqual(await readHp(page), pick(cli.quick), 'Quick = loralab --quick');
    await page.click('#hp-study');
    assert.deepEqual(await readHp(page), pick(cli.study));
    assert.equal(Number(await page.inputValue('#gen-tokens')), cli.generate.max_new_tokens);
    const presets = await page.$$eval('#presets input', (els) => els.map((e) => [e.value, e.checked]));
    assert.deepEqual(presets, cli.placements.map((p) => [p.name, p.study]), 'placements listed and ticked as the CLI');
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

test('base dropout: a bad value is refused with a message naming it; "config" and 0 are taken', { ...T, skip: SKIP }, async () => {
  const h = await openLab();
  const { page } = h;
  try {
    await waitLoaded(page);
    await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 20000 });
    // max_len's default fits the loaded model: its context, at most 256.
    const nCtx = await page.evaluate(() => window.__lab.state.model.n_ctx);
    assert.equal(Number(await page.inputValue('[data-hp="max_len"]')), Math.min(256, nCtx));
    for (const bad of ['abc', '1.5', '-0.1']) {
      await setHp(page, { base_dropout: bad });
      await page.click('#run');
      await page.waitForSelector('#error:not([hidden])');
      assert.match(await page.textContent('#error-text'), /base dropout must be "config" or a number in \[0, 1\)/, bad);
      assert.equal(await page.evaluate(() => window.__lab.state.running), false, `${bad}: no run started`);
      await page.click('#error-close');
    }
    const hp = await import(path.join(REPO, 'web', 'panels', 'hp.js'));
    assert.equal(hp.baseDropoutValue(' config '), 'config');
    assert.equal(hp.baseDropoutValue('0'), 0);
    const ok = { r: 1, epochs: 1, batch_size: 1, n_train: 1, n_eval: 1, max_len: 8, warmup_steps: 0, seed: 0, seeds: 1,
                 lr: 1, alpha: 1, dropout: 0 };
    assert.deepEqual(hp.checkHp({ ...ok, base_dropout: 0 }), []);
    assert.deepEqual(hp.checkHp({ ...ok, base_dropout: 'config' }), []);
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

test('a 390 px wide phone: no sideways scrolling, every card inside the viewport', { ...T, skip: SKIP }, async () => {
  const h = await openLab('', { width: 390, height: 844 });
  const { page } = h;
  try {
    await waitLoaded(page);
    await page.waitForFunction(() => window.__lab.state.counts.length > 0, null, { timeout: 20000 });
    const m = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
      // Wide tables scroll inside their own box (.scroll); everything else must fit.
      wide: [...document.querySelectorAll('main > section, header, main input, main select, main button, main textarea')]
        .filter((e) => !e.closest('.scroll'))
        .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
        .map((e) => `${e.tagName.toLowerCase()}#${e.id || e.className} right=${Math.round(e.getBoundingClientRect().right)}`),
    }));
    assert.ok(m.scroll <= m.client, `page is ${m.scroll} px wide in a ${m.client} px viewport`);
    assert.deepEqual(m.wide, [], 'elements past the right edge');
  } finally {
    await h.close();
  }
});

test('axe-core finds no accessibility violations', { ...T, skip: SKIP }, async () => {
  const h = await openLab();
  const { page } = h;
  try {
    await waitLoaded(page);
    await page.waitForFunction(() => window.__lab.state.counts.length > 0, null, { timeout: 20000 });
    // evaluate() is not subject to the page's script CSP, unlike an injected <script>.
    await page.evaluate(fs.readFileSync(AXE, 'utf8'));
    const violations = await page.evaluate(async () => (await window.axe.run(document)).violations
      .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) })));
    assert.deepEqual(violations, []);
  } finally {
    await h.close();
  }
});
