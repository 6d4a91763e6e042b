// Teaching at a glance (issue 26): the adapted-modules diagram lights exactly what the
// "really touches" column says for every preset and a custom placement with layers
// (PEFT's suffix trap included); the tour walks the page by keyboard without blocking
// it; "Download report" writes one self-contained file that opens from file:// with
// no network and equals `loralab report` of the same results.json except the time;
// comparing two results files draws both runs.
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, openLab, findModel, waitLoaded, wasmHasApi, launchChromium, REPO, artifact, setHp, choosePlacements, runToEnd } from './harness.mjs';

const MODEL = findModel();
const EXE = path.join(path.resolve(process.env.LPL_BUILD_DIR || path.join(REPO, 'build')), 'loralab');
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API' : !MODEL ? 'no GGUF model'
  : !fs.existsSync(EXE) ? `no native ${EXE}` : false;
const T = { timeout: 180000, skip: SKIP };
const AXE = path.join(REPO, 'node_modules', 'axe-core', 'axe.min.js');

function cli(args, opts = {}) {
  const r = spawnSync(EXE, args, { cwd: REPO, encoding: 'utf8', ...opts });
  assert.equal(r.status, 0, `loralab ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A small ablation (3 study placements, 2 seeds) on the tiny fixture, with the CLI. */
function cliRun(dir, extra = []) {
  const model = path.join(dir, 'tiny.gguf');
  if (!fs.existsSync(model)) {
    cli(['convert', '--from', path.join(REPO, 'tests/fixtures/tiny-gpt2'), '--to', model, '--type', 'f32', '--quiet']);
  }
  const out = path.join(dir, `run${extra.join('')}`.replace(/[^\w]/g, ''));
  cli(['ablate', '--model', model, '--train', 'data/alpaca_train.json', '--eval', 'data/alpaca_eval.json',
    '--n-train', '3', '--n-eval', '3', '--max-len', '64', '--epochs', '2', '--lr', '5e-3', '--r', '2', '--alpha', '4',
    '--threads', '1', '--quiet', '--out', out, ...extra]);
  return out;
}

// What the diagram lights, read from its SVG: chips per (placement, module), cells per (placement, layer).
const readDiagram = (page) => page.evaluate(() => {
  const out = {};
  for (const c of document.querySelectorAll('#diagram rect.chip')) {
    const p = (out[c.dataset.placement] ||= { modules: [], pairs: [], traps: [], touches: '' });
    if (c.dataset.lit === '1') p.modules.push(c.dataset.module);
    if (c.dataset.trap === '1') p.traps.push(c.dataset.module);
  }
  for (const c of document.querySelectorAll('#diagram rect.cell[data-lit="1"]')) {
    for (const m of c.dataset.modules.split(' ')) out[c.dataset.placement].pairs.push([Number(c.dataset.layer), m]);
  }
  for (const li of document.querySelectorAll('#diagram .lab-legend li')) out[li.dataset.placement].touches = li.querySelector('.touches').textContent;
  out.notes = [...document.querySelectorAll('#diagram .trap-note')].map((p) => [p.dataset.placement, p.textContent]);
  return out;
});

const key = ([l, m]) => `${l}:${m}`;

test('the diagram lights exactly the modules and layers of "really touches", for every preset and a custom placement', T, async () => {
  const h = await openLab(MODEL);
  const { page } = h;
  try {
    await waitLoaded(page);
    const all = await page.$$eval('#presets input[type=checkbox]', (els) => els.map((e) => e.value));
    for (const v of all) await page.locator(`#presets input[value="${v}"]`).setChecked(true);
    await page.fill('#custom-name', 'upper');
    for (const m of ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']) {
      await page.locator(`#custom-editor .mods input[value="${m}"]`).setChecked(m === 'mlp.c_fc' || m === 'attn.c_proj');
    }
    await page.fill('#custom-layers', '1-2');
    await page.click('#custom-add');
    await page.waitForFunction((n) => window.__lab.state.counts.length === n &&
      document.querySelector('#diagram').dataset.placements === String(n), all.length + 1, { timeout: 20000 });
    const counts = await page.evaluate(() => window.__lab.state.counts);
    const drawn = await readDiagram(page);
    const column = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#count-table tbody tr')]
      .map((tr) => [tr.dataset.placement, tr.querySelector('td.modules').firstChild?.textContent ?? ''])));
    assert.deepEqual(counts.map((c) => c.name), [...all, 'upper']);
    for (const c of counts) {
      const d = drawn[c.name];
      assert.ok(d, `${c.name} is drawn`);
      assert.deepEqual(d.pairs.map(key).sort(), c.selected.map(key).sort(), `${c.name}: lit (layer, module) = selected`);
      assert.deepEqual([...d.modules].sort(), [...new Set(c.selected.map((s) => s[1]))].sort(), `${c.name}: lit modules`);
      assert.equal(d.touches, c.modules, `${c.name}: the legend reads as lab_count's summary`);
      assert.equal(column[c.name], c.modules, `${c.name}: the "really touches" column says the same`);
    }
    // The suffix trap: "attn" (c_attn, c_proj) lights mlp.c_proj, marked and explained; the exact paths do not.
    assert.ok(drawn.attn.modules.includes('mlp.c_proj'), 'attn lights mlp.c_proj');
    assert.deepEqual(drawn.attn.traps, ['mlp.c_proj']);
    assert.deepEqual(drawn['attn-exact'].modules.sort(), ['attn.c_attn', 'attn.c_proj']);
    assert.deepEqual(drawn.baseline.traps, [], 'the baseline means both c_proj: no trap');
    assert.deepEqual(drawn.notes.map((n) => n[0]), ['attn']);
    assert.match(drawn.notes[0][1], /“c_proj” is matched by suffix.*mlp\.c_proj/);
    // The custom placement's layers are a band on the strip: layers 1 and 2 only.
    assert.deepEqual([...new Set(drawn.upper.pairs.map((p) => p[0]))].sort(), [1, 2]);
    // Chips are in the placement's colour (the charts' palette, in order).
    const src = fs.readFileSync(path.join(REPO, 'web', 'charts.js'), 'utf8');
    const palette = JSON.parse(/PALETTE = (\[[^\]]*\])/.exec(src)[1].replace(/'/g, '"'));
    const fills = await page.$$eval('#diagram rect.chip.lit[data-module="attn.c_attn"]', (cs) => cs.map((c) => [c.dataset.placement, c.getAttribute('fill')]));
    const R = await page.evaluate(() => globalThis.LoraLabReport.PALETTE);
    for (const [name, fill] of fills) assert.equal(fill, R[counts.findIndex((c) => c.name === name)], name);
    assert.deepEqual(R, palette, 'report.js and charts.js draw in the same colours');
    await page.locator('#diagram').screenshot({ path: artifact('diagram.png') });
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

const stripWritten = (html) => html.replace(/\{"written": "[^"]*"\}/, '{"written": ""}');

/** Opens a report file from file:// in a browser with the network off; returns {page, requests, errors, close}. */
async function openOffline(file) {
  const browser = await launchChromium();
  const context = await browser.newContext({ offline: true });
  const page = await context.newPage();
  const requests = [], errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(pathToFileURL(file).href);
  await page.waitForFunction(() => document.documentElement.dataset.rendered, null, { timeout: 10000 });
  return { page, requests, errors, close: () => browser.close() };
}

test('Download report: one file equal to `loralab report` but for its time, opening offline with results.json\'s numbers', T, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-report-'));
  const h = await open();
  try {
    const run = cliRun(dir, ['--seeds', '2']);
    const file = path.join(run, 'results.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    const cliHtml = path.join(dir, 'cli.html');
    cli(['report', run, '--out', cliHtml, '--quiet']);

    const { page } = h;
    await page.goto(`${h.url}?test=1&autoload=0`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
    await page.setInputFiles('#open-results', file);
    await page.waitForSelector('#dl-report');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-report')]);
    assert.equal(download.suggestedFilename(), 'report.html');
    const saved = path.join(dir, 'page-report.html');
    await download.saveAs(saved);
    const pageText = fs.readFileSync(saved, 'utf8'), cliText = fs.readFileSync(cliHtml, 'utf8');
    assert.match(pageText, /\{"written": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"\}/);
    assert.equal(stripWritten(pageText), stripWritten(cliText), 'the page\'s report is loralab report\'s but for the time');
    assert.deepEqual(h.consoleErrors, []);

    const r = await openOffline(saved);
    try {
      const p = r.page;
      assert.equal(await p.evaluate(() => document.documentElement.dataset.rendered), '1');
      assert.deepEqual(r.requests, [pathToFileURL(saved).href], 'nothing but the file itself is loaded');
      assert.deepEqual(r.errors, []);
      assert.equal(await p.evaluate(() => document.querySelectorAll('[src], [href], link, img, iframe, object, embed').length), 0);
      // The table: one column per placement with the engine's mean and half its 95% interval.
      const cells = await p.evaluate(() => Object.fromEntries([...document.querySelectorAll('#results tbody tr')].map((tr) =>
        [tr.dataset.key, [...tr.querySelectorAll('td')].map((td) => ({ v: td.dataset.value, half: td.dataset.half, text: td.textContent }))])));
      const aggs = doc.aggregates.placements;
      assert.deepEqual(aggs.map((a) => a.name), ['baseline', 'ffn', 'attn']);
      for (const k of ['eval_loss', 'perplexity', 'mean_sample_perplexity']) {
        assert.deepEqual(cells[k].map((c) => Number(c.v)), aggs.map((a) => a.metrics[k].mean), `${k}: means`);
        assert.deepEqual(cells[k].map((c) => Number(c.half)), aggs.map((a) => (a.metrics[k].ci95[1] - a.metrics[k].ci95[0]) / 2), `${k}: intervals`);
      }
      assert.deepEqual(cells.trainable.map((c) => Number(c.v)), aggs.map((a) => doc.trainings.find((q) => q.name === a.name).trainable));
      assert.deepEqual(cells.modules.map((c) => c.text), aggs.map((a) => doc.trainings.find((q) => q.name === a.name).modules));
      const verdicts = await p.$$eval('#results .verdicts li', (li) => li.map((x) => x.textContent));
      assert.deepEqual(verdicts, aggs.filter((a) => a.verdict).map((a) => a.verdict));
      // Charts are inline SVG with every training's points.
      const lines = await p.$$eval('#curves svg path.series', (ps) => ps.map((x) => [x.dataset.name, Number(x.dataset.points)]));
      const names = doc.trainings.map((q) => (q.seed === doc.seeds[0] ? q.name : `${q.name} · seed ${q.seed}`));
      assert.deepEqual(lines.slice(0, names.length), names.map((n, i) => [n, doc.trainings[i].steps.loss.length]), 'train loss');
      assert.deepEqual(lines.slice(names.length, 2 * names.length), names.map((n, i) => [n, doc.trainings[i].evals.length]), 'eval loss');
      assert.equal(await p.$$eval('#curves svg [data-placement][data-lo]', (x) => x.length), 3, 'a seed band per placement');
      // The diagram, from each placement's "selected".
      const lit = await p.$$eval('#diagram rect.cell[data-lit="1"]', (cs) => cs.flatMap((c) =>
        c.dataset.modules.split(' ').map((m) => `${c.dataset.placement}:${c.dataset.layer}:${m}`)));
      const want = aggs.flatMap((a) => doc.trainings.find((q) => q.name === a.name).selected.map(([l, m]) => `${a.name}:${l}:${m}`));
      assert.deepEqual(lit.sort(), want.sort());
      assert.equal(await p.$eval('#diagram rect.chip[data-placement="attn"][data-module="mlp.c_proj"]', (c) => c.dataset.trap), '1');
      // Identity: model, data and environment.
      const facts = await p.$eval('#run', (s) => s.textContent);
      for (const t of [doc.model.sha256, doc.data.train.sha256, doc.data.eval.sha256, doc.environment.program,
                       `${doc.data.train.records} records`]) assert.ok(facts.includes(t), t);
      await p.evaluate(fs.readFileSync(AXE, 'utf8'));
      const violations = await p.evaluate(async () => (await window.axe.run(document)).violations.map((v) => v.id));
      assert.deepEqual(violations, []);
      await p.screenshot({ path: artifact('report.png'), fullPage: true });
    } finally {
      await r.close();
    }
  } finally {
    await h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the tour: six steps with the run\'s own numbers, by keyboard, closable, never blocking the page; axe-clean', T, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-tour-'));
  const h = await openLab(MODEL);
  const { page } = h;
  try {
    await waitLoaded(page);
    await page.waitForFunction(() => window.__lab.state.counts.length === 3, null, { timeout: 20000 });
    const file = path.join(cliRun(dir, ['--seeds', '2']), 'results.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    await page.setInputFiles('#open-results', file);
    await page.waitForFunction(() => /training\(s\)/.test(document.querySelector('#open-status').textContent));
    // The diagram now draws the opened results (what changed last), from their own "selected".
    assert.equal(await page.$eval('#diagram', (d) => d.dataset.from), 'results');
    const lit = (await readDiagram(page)).attn.pairs.map(key).sort();
    const attnDoc = doc.trainings.find((p) => p.name === 'attn');
    assert.deepEqual(lit, attnDoc.selected.map(key).sort());

    await page.click('#tour-start');
    const at = () => page.evaluate(() => ({ step: document.querySelector('#tour').dataset.step, target: document.querySelector('#tour').dataset.target,
      hidden: document.querySelector('#tour').hidden, focus: document.activeElement && document.activeElement.id,
      text: document.querySelector('#tour').textContent,
      marked: [...document.querySelectorAll('.tour-target')].map((e) => `#${e.id}`) }));
    let s = await at();
    assert.deepEqual([s.step, s.hidden, s.focus, s.marked], ['1', false, 'tour-title', ['#placement-section']]);
    assert.match(s.text, new RegExp(`Here: ${doc.model.name} \\(${doc.model.n_layer} layers`));

    await page.keyboard.press('ArrowRight');
    s = await at();
    assert.deepEqual([s.step, s.marked], ['2', ['#diagram-figure']]);
    // The numbers of what the diagram draws (the opened run): mlp.c_proj is [4d, d] in GPT-2, r (4d + d) per layer.
    const inMlp = attnDoc.selected.filter((x) => x[1] === 'mlp.c_proj').length * doc.config.r * 5 * doc.model.n_embd;
    assert.ok(s.text.includes(`${inMlp.toLocaleString('en-US')} of its ${attnDoc.trainable.toLocaleString('en-US')} trainable parameters`), s.text);
    assert.match(s.text, /lights mlp\.c_proj \(the ringed chip\) in \d+ layer/);
    // axe with the tour open.
    await page.evaluate(fs.readFileSync(AXE, 'utf8'));
    const violations = await page.evaluate(async () => (await window.axe.run(document)).violations
      .map((v) => ({ id: v.id, nodes: v.nodes.map((n) => n.target.join(' ')) })));
    assert.deepEqual(violations, []);

    await page.keyboard.press('ArrowRight');
    s = await at();
    const aggs = doc.aggregates.placements;
    const best = aggs.reduce((a, g) => (!a || g.metrics.eval_loss.mean < a.metrics.eval_loss.mean ? g : a), null);
    assert.deepEqual([s.step, s.marked], ['3', ['#results-table']]);
    assert.ok(s.text.includes(`In this run, ${best.name}: eval loss ${best.metrics.eval_loss.mean.toFixed(4)}, perplexity ` +
      `exp(${best.metrics.eval_loss.mean.toFixed(4)}) = ${best.metrics.perplexity.mean.toFixed(3)}, while the mean of per-sample ` +
      `perplexities is ${best.metrics.mean_sample_perplexity.mean.toFixed(3)}`), s.text);

    // The page stays usable with the tour open; arrows typed elsewhere are the page's.
    await page.fill('#custom-name', 'typed-while-touring');
    await page.keyboard.press('ArrowLeft');
    assert.equal(await page.inputValue('#custom-name'), 'typed-while-touring');
    s = await at();
    assert.deepEqual([s.step, s.hidden], ['3', false]);
    await page.click('#hp-quick');

    // Tab reaches its buttons; Enter presses them.
    await page.focus('#tour-title');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tour-next');
    await page.keyboard.press('Enter');
    s = await at();
    assert.deepEqual([s.step, s.marked], ['4', ['#seed-figure']]);
    assert.ok(s.text.includes(`This run, ${doc.seeds.length} seeds, eval loss: ${aggs[0].name} ${aggs[0].metrics.eval_loss.mean.toFixed(4)}`), s.text);
    for (const v of aggs.filter((g) => g.verdict)) assert.ok(s.text.includes(v.verdict), v.verdict);
    await page.keyboard.press('ArrowRight');
    s = await at();
    assert.deepEqual([s.step, s.marked], ['5', ['#learned-section']]);
    const share = best.metrics.drop_share_template;
    if (share) assert.ok(s.text.includes(`${(100 * share.mean).toFixed(0)}% of ${best.name}'s drop`), s.text);
    await page.keyboard.press('ArrowRight');
    s = await at();
    assert.deepEqual([s.step, s.marked], ['6', ['#downloads']]);
    assert.equal(await page.$eval('#tour-next', (b) => b.disabled), true, 'the last step has no Next');
    await page.keyboard.press('ArrowLeft');
    assert.equal((await at()).step, '5');

    await page.keyboard.press('Escape');
    s = await at();
    assert.deepEqual([s.hidden, s.marked, s.focus], [true, [], 'tour-start'], 'Esc closes and gives focus back');
    await page.keyboard.press('Enter');
    assert.equal((await at()).hidden, false, 'Enter on the button opens it again');
    await page.click('#tour-close');
    assert.equal((await at()).hidden, true);
    // Ticking a placement draws the ticked ones again, as counted.
    await page.locator('#presets input[value="attn-exact"]').setChecked(true);
    await page.waitForFunction(() => document.querySelector('#diagram').dataset.from === 'counts' &&
      document.querySelector('#diagram').dataset.placements === '4', null, { timeout: 20000 });

    // A phone (opened as a phone opens it: the charts take their width at the start): the open tour fits.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
    await page.click('#tour-start');
    const m = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
      right: document.querySelector('#tour').getBoundingClientRect().right }));
    assert.ok(m.scroll <= m.client && m.right <= m.client, JSON.stringify(m));
    await page.screenshot({ path: artifact('tour-phone.png') });
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('runs compared: two results files are drawn together, curves overlaid and tables side by side, labelled by run', T, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-runs-'));
  const h = await open();
  const { page } = h;
  try {
    const a = path.join(dir, 'cpu.json'), b = path.join(dir, 'grid.json'), bad = path.join(dir, 'notes.json');
    fs.copyFileSync(path.join(cliRun(dir), 'results.json'), a);
    fs.copyFileSync(path.join(cliRun(dir, ['--seeds', '2', '--placements', 'baseline,attn-exact', '--bands', '2']), 'results.json'), b);
    fs.writeFileSync(bad, '{"format": "something-else"}');
    const docs = [a, b].map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
    await page.goto(`${h.url}?test=1&autoload=0`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
    await page.setInputFiles('#runs-files', [a, b, bad]);
    await page.waitForFunction(() => document.querySelector('#runs-compared').dataset.runs === '2');
    assert.match(await page.textContent('#runs-status'), /2 run\(s\) compared\. Not added: notes\.json is not a loralab results\.json/);
    const labels = docs.map((d, i) => `${['cpu', 'grid'][i]} (${d.model.name}, ${d.environment.build})`);
    const lines = await page.$$eval('#runs-compared svg path.series', (ps) => ps.map((p) => ({ run: p.dataset.run, name: p.dataset.name,
      points: Number(p.dataset.points), dash: p.getAttribute('stroke-dasharray') })));
    const want = docs.flatMap((d, i) => d.trainings.map((p) => ({ run: labels[i],
      name: `${labels[i]}: ${p.seed === d.seeds[0] ? p.name : `${p.name} · seed ${p.seed}`}`, points: p.evals.length, dash: i ? '7 4' : null })));
    assert.deepEqual(lines, want, 'every training of both runs, labelled, one dash pattern per run');
    const tables = await page.$$eval('#runs-compared .run-table', (ts) => ts.map((t) => ({ run: t.dataset.run,
      caption: t.querySelector('caption').textContent,
      head: [...t.querySelectorAll('thead th')].slice(1).map((x) => x.textContent),
      loss: [...t.querySelectorAll('tr[data-key="eval_loss"] td')].map((td) => Number(td.dataset.value)) })));
    assert.deepEqual(tables.map((t) => [t.run, t.caption]), labels.map((l) => [l, l]));
    assert.deepEqual(tables[0].head, ['baseline', 'ffn', 'attn']);
    assert.deepEqual(tables[0].loss, docs[0].trainings.map((p) => p.eval_loss));
    assert.deepEqual(tables[1].head, ['baseline.L0-0', 'baseline.L1-1', 'attn-exact.L0-0', 'attn-exact.L1-1'], 'a grid\'s arms');
    assert.deepEqual(tables[1].loss, docs[1].aggregates.placements.map((g) => g.metrics.eval_loss.mean), 'means over seeds');
    // Side by side on a wide screen.
    const tops = await page.$$eval('#runs-compared .run-table', (ts) => ts.map((t) => Math.round(t.getBoundingClientRect().top)));
    assert.equal(tops[0], tops[1]);
    await page.locator('#runs-section').screenshot({ path: artifact('runs-compared.png') });
    await page.evaluate(fs.readFileSync(AXE, 'utf8'));
    assert.deepEqual(await page.evaluate(async () => (await window.axe.run(document)).violations.map((v) => v.id)), []);
    // A phone, from the start: the runs stack and nothing scrolls sideways.
    const phone = await h.context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${h.url}?test=1&autoload=0`);
    await phone.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
    await phone.setInputFiles('#runs-files', [a, b]);
    await phone.waitForFunction(() => document.querySelector('#runs-compared').dataset.runs === '2');
    const m = await phone.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(m.scroll <= m.client, JSON.stringify(m));
    await phone.close();
    await page.click('#runs-clear');
    assert.equal(await page.$eval('#runs-compared', (x) => x.dataset.runs), '0');
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a report of a run made in the page: offline, the run\'s numbers, and the diagram the page drew before running', T, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-page-report-'));
  const h = await openLab(MODEL);
  const { page } = h;
  try {
    await waitLoaded(page);
    await setHp(page, { n_train: 2, n_eval: 2, epochs: 1, max_len: 48, seeds: 1 });
    await choosePlacements(page, ['baseline', 'attn']);
    const before = await readDiagram(page);
    await runToEnd(page);
    const doc = JSON.parse(await page.evaluate(() => window.__lab.state.resultsJson));
    assert.deepEqual(doc.trainings.map((p) => [p.name, p.status]), [['baseline', 'done'], ['attn', 'done']]);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-report')]);
    const saved = path.join(dir, 'report.html');
    await download.saveAs(saved);
    assert.deepEqual(h.consoleErrors, []);
    const r = await openOffline(saved);
    try {
      const p = r.page;
      assert.equal(await p.evaluate(() => document.documentElement.dataset.rendered), '1');
      assert.deepEqual(r.requests, [pathToFileURL(saved).href]);
      assert.deepEqual(r.errors, []);
      const rows = await p.evaluate(() => Object.fromEntries([...document.querySelectorAll('#results tbody tr')].map((tr) =>
        [tr.dataset.key, [...tr.querySelectorAll('td')].map((td) => td.dataset.value ?? td.textContent)])));
      for (const k of ['eval_loss_before', 'eval_loss', 'perplexity', 'mean_sample_perplexity', 'trainable', 'percent']) {
        assert.deepEqual(rows[k], doc.trainings.map((q) => String(q[k])), k);
      }
      const after = await p.$$eval('#diagram rect.cell[data-lit="1"]', (cs) => cs.flatMap((c) =>
        c.dataset.modules.split(' ').map((m) => `${c.dataset.placement}:${c.dataset.layer}:${m}`)));
      const drawn = ['baseline', 'attn'].flatMap((n) => before[n].pairs.map(([l, m]) => `${n}:${l}:${m}`));
      assert.deepEqual(after.sort(), drawn.sort(), 'the report\'s diagram is the one the page drew from the counts');
      const facts = await p.$eval('#run', (x) => x.textContent);
      assert.ok(facts.includes(doc.model.sha256 || doc.model.name), 'model identity');
      assert.ok(facts.includes(String(doc.environment.threads)), 'threads');
      // The data's identity survives the model loading after it (the page loads both at once).
      assert.match(doc.data.train.sha256, /^[0-9a-f]{64}$/);
      assert.match(doc.data.eval.sha256, /^[0-9a-f]{64}$/);
      assert.deepEqual([doc.data.train.path, doc.data.eval.path], ['alpaca_train.json', 'alpaca_eval.json'], 'the data\'s names');
      for (const t of [doc.data.train.sha256, doc.data.eval.sha256, `${doc.data.train.records} records`, 'alpaca_train.json · 110 records']) {
        assert.ok(facts.includes(t), t);
      }
      await p.locator('#run').screenshot({ path: artifact('report-page-run.png') });
    } finally {
      await r.close();
    }
  } finally {
    await h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('scripts/screenshot_diagram.mjs draws the README\'s picture from loralab count', { timeout: 60000, skip: fs.existsSync(EXE) ? false : `no native ${EXE}` }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-shot-'));
  try {
    const out = path.join(dir, 'diagram.png');
    const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'screenshot_diagram.mjs'), '--loralab', EXE, '--out', out],
      { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // The study's own figures, counted by the CLI the picture is drawn from.
    assert.match(r.stdout, /baseline 6291456, ffn 1966080, attn 4325376, attn-exact 2359296, top-half 1179648/);
    const png = fs.readFileSync(out);
    assert.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
    assert.ok(png.readUInt32BE(16) > 500 && png.readUInt32BE(20) > 400, 'a picture of some size');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
