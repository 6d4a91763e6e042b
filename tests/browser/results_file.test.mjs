// The page reads a results.json collected from a grid's units (loralab ablate --plan,
// --unit, collect with the native CLI, as a cluster would leave it): the table holds
// every training's numbers exactly as the file has them, the charts one curve per
// training with every step and eval, the efficiency chart and heatmap every training;
// a file that is not a results document gives a readable error and changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { open, REPO, wasmHasApi } from './harness.mjs';

const EXE = path.join(path.resolve(process.env.LPL_BUILD_DIR || path.join(REPO, 'build')), 'loralab');
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API' : !fs.existsSync(EXE) ? `no native ${EXE}` : false;

function cli(args) {
  const r = spawnSync(EXE, args, { cwd: REPO, encoding: 'utf8' });
  assert.equal(r.status, 0, `loralab ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A grid of 2 placements x 2 seeds on the tiny fixture, run as units and collected. */
function collectedGrid(dir) {
  const model = path.join(dir, 'tiny.gguf');
  cli(['convert', '--from', path.join(REPO, 'tests/fixtures/tiny-gpt2'), '--to', model, '--type', 'f32', '--quiet']);
  const out = path.join(dir, 'grid');
  const units = cli(['ablate', '--plan', '--out', out, '--model', model, '--train', path.join(REPO, 'data/alpaca_train.json'),
    '--eval', path.join(REPO, 'data/alpaca_eval.json'), '--n-train', '3', '--n-eval', '2', '--max-len', '40',
    '--epochs', '2', '--lr', '5e-3', '--r', '2', '--alpha', '4', '--placements', 'baseline,ffn', '--seeds', '2',
    '--quiet']).trim().split('\n');
  assert.equal(units.length, 4);
  for (const line of units) cli(['ablate', '--unit', line.split('\t')[0], '--out', out, '--threads', '1', '--quiet']);
  cli(['collect', out, '--quiet']);
  return path.join(out, 'results.json');
}

test('a collected results.json opens in the page: same table and charts', { timeout: 120000, skip: SKIP }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-results-file-'));
  const h = await open();
  try {
    const file = collectedGrid(dir);
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(doc.collected.units, 4);
    const { page } = h;
    await page.goto(`${h.url}?test=1&autoload=0`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });

    // Not a results document: an error, nothing shown.
    const bad = path.join(dir, 'plan.json');
    fs.copyFileSync(path.join(dir, 'grid', 'plan.json'), bad);
    await page.setInputFiles('#open-results', bad);
    await page.waitForFunction(() => window.__lab.state.errors.length > 0, null, { timeout: 10000 });
    const errors = await page.evaluate(() => window.__lab.state.errors);
    assert.match(errors[0], /plan\.json is not a loralab results\.json/);
    assert.equal(await page.evaluate(() => window.__lab.state.results), null);

    await page.setInputFiles('#open-results', file);
    await page.waitForFunction(() => /4 training\(s\), 4 done, collected from 4 units/.test(
      document.querySelector('#open-status').textContent), null, { timeout: 10000 });
    assert.equal(await page.$eval('#error', (e) => e.hidden), true, 'the error box is cleared');

    const names = doc.trainings.map((p) => `${p.name} s${p.seed}`);
    assert.deepEqual(names, ['baseline s42', 'ffn s42', 'baseline s43', 'ffn s43']);
    const head = await page.$$eval('#results-table thead th', (ths) => ths.slice(1).map((t) => t.textContent));
    assert.deepEqual(head, names);
    const rows = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#results-table tbody tr')]
      .map((tr) => [tr.dataset.key, [...tr.querySelectorAll('td')].map((td) => td.dataset.value ?? td.textContent)])));
    for (const key of ['eval_loss_before', 'eval_loss', 'perplexity', 'trainable', 'vs_baseline_pct']) {
      assert.deepEqual(rows[key], doc.trainings.map((p) => String(p[key])), `row ${key} = results.json`);
    }
    assert.deepEqual(rows.modules, doc.trainings.map((p) => p.modules));

    const series = await page.evaluate(() => window.__lab.series());
    assert.deepEqual(series.map((s) => s.name), names);
    series.forEach((s, i) => assert.equal(s.points, doc.trainings[i].steps.loss.length, `${s.name}: every step`));
    const evals = await page.evaluate(() => window.__lab.evalSeries());
    evals.forEach((s, i) => assert.equal(s.points, doc.trainings[i].evals.length, `${s.name}: every eval`));
    const heat = await page.$$eval('#heatmap-placement option', (os) => os.map((o) => o.textContent));
    assert.deepEqual(heat, names);

    // A results.json written before issue 25 calls its trainings "placements": the page
    // shows it as the new file, and keeps it under "trainings".
    assert.equal(doc.placements, undefined, 'new files have no top-level "placements"');
    const { trainings, ...rest } = doc;
    const oldFile = path.join(dir, 'old-results.json');
    fs.writeFileSync(oldFile, JSON.stringify({ ...rest, placements: trainings }));
    await page.setInputFiles('#open-results', oldFile);
    await page.waitForFunction(() => /old-results\.json: 4 training\(s\), 4 done/.test(
      document.querySelector('#open-status').textContent), null, { timeout: 10000 });
    assert.deepEqual(await page.$$eval('#results-table thead th', (ths) => ths.slice(1).map((t) => t.textContent)), names);
    const oldRows = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#results-table tbody tr')]
      .map((tr) => [tr.dataset.key, [...tr.querySelectorAll('td')].map((td) => td.dataset.value ?? td.textContent)])));
    assert.deepEqual(oldRows, rows, 'the old file\'s table is the new file\'s');
    assert.deepEqual((await page.evaluate(() => window.__lab.series())).map((s) => [s.name, s.points]), series.map((s) => [s.name, s.points]));
    assert.deepEqual(await page.evaluate(() => [window.__lab.state.results.trainings.length, window.__lab.state.results.placements]),
                     [4, undefined]);

    // loralab report reads the old file too, and its page draws every training.
    const oldDir = path.join(dir, 'old');
    fs.mkdirSync(oldDir);
    fs.copyFileSync(oldFile, path.join(oldDir, 'results.json'));
    const html = path.join(dir, 'old-report.html');
    cli(['report', oldDir, '--out', html, '--quiet']);
    await page.goto(pathToFileURL(html).href);
    await page.waitForFunction(() => document.documentElement.dataset.rendered, null, { timeout: 10000 });
    const curves = await page.$$eval('#curves svg path.series', (ps) => ps.map((x) => Number(x.dataset.points)));
    assert.deepEqual(curves.slice(0, 4), doc.trainings.map((p) => p.steps.loss.length), 'the report draws the old file\'s trainings');
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
