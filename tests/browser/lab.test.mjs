// The browser lab end to end in headless Chromium: a Quick ablation of three
// placements on the bundled model (threads), Cancel, the single-thread fallback
// without COOP/COEP, bad and hostile data files, a worker crash and restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, open, artifact, wasmHasApi, findModel, waitLoaded, setHp, choosePlacements, runToEnd,
  openLab as openLabOn } from './harness.mjs';

const MODEL = findModel();
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API yet (src/wasm/api.c)'
  : !MODEL ? 'no GGUF model in models/ or tests/fixtures/' : false;
const T = { timeout: 150000 };

const openLab = (opts = {}, query = '') => openLabOn(MODEL, opts, query);

async function downloadText(page, selector) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  return fs.readFileSync(await dl.path());
}

// Reads a formatted table cell back into a number (1,234 · 12.5 % · 3.1 s · 2 min 4 s · 12.0 MB).
// Half a unit of the last digit the table shows, per row.
const ROUNDING = { eval_loss_before: 5e-5, eval_loss: 5e-5, perplexity: 5e-4, mean_sample_perplexity: 5e-4,
                   trainer_eval_loss: 5e-5, percent: 5e-3, reduction_pct: 5e-3, vs_baseline_pct: 0.05, train_seconds: 0.05, tokens_per_s: 0.5 };

function parseCell(text) {
  const t = text.replace(/★/g, '').replace(/,/g, '').trim().replace(/ \(\d+x\)$/, '');
  let m = t.match(/^(\d+) h (\d+) min$/);
  if (m) return Number(m[1]) * 3600 + Number(m[2]) * 60;
  m = t.match(/^(\d+) min (\d+) s$/);
  if (m) return Number(m[1]) * 60 + Number(m[2]);
  m = t.match(/^([-+]?[\d.e+-]+)\s*(B|KB|MB|GB)$/);
  if (m) return Number(m[1]) * 1024 ** ['B', 'KB', 'MB', 'GB'].indexOf(m[2]);
  return Number(t.replace(/\s*(%|s)\s*$/, ''));
}

test('Quick ablation of three placements: charts, table = results.json, adapters, side by side, reload', { ...T, skip: SKIP }, async () => {
  const h = await openLab();
  const { page } = h;
  try {
    await waitLoaded(page);
    const engine = await page.evaluate(() => window.__lab.state.engine);
    // Chromium validates relaxed SIMD: the study runs in the relaxed-SIMD build.
    assert.equal(engine.variant, 'rx');
    assert.equal(engine.build, 'wasm relaxed-simd threads');
    assert.equal(engine.isolated, true);
    assert.match(engine.version, /wasm relaxed-simd threads/);
    assert.match(await page.textContent('#engine'), /wasm relaxed-simd threads/, 'the page shows the build');

    // Parameter counts before running, and PEFT's suffix surprise made visible.
    await page.waitForFunction(() => window.__lab.state.counts.length === 3, null, { timeout: 20000 });
    const counts = await page.evaluate(() => window.__lab.state.counts);
    assert.deepEqual(counts.map((c) => c.name), ['baseline', 'ffn', 'attn']);
    for (const c of counts) assert.ok(c.trainable > 0, `${c.name} trainable`);
    const attnRow = await page.textContent('#count-table tr[data-placement="attn"]');
    assert.match(attnRow, /mlp\.c_proj/, 'attn row shows that it touches mlp.c_proj');
    assert.match(attnRow, /suffix match/);
    const shown = await page.getAttribute('#count-table tr[data-placement="baseline"] td.num', 'data-value');
    assert.equal(Number(shown), counts[0].trainable);

    await runToEnd(page);
    const st = await page.evaluate(() => {
      const s = window.__lab.state;
      return { errors: s.errors, cancelled: s.run.cancelled, resultsJson: s.resultsJson,
               steps: Object.fromEntries(Object.entries(s.run.curves).map(([k, v]) => [k, v.steps])) };
    });
    assert.deepEqual(st.errors, []);
    assert.equal(st.cancelled, false);

    // One chart series per placement, as many points as steps.
    const series = await page.evaluate(() => window.__lab.series());
    assert.deepEqual(series.map((s) => s.name), ['baseline', 'ffn', 'attn']);
    for (const s of series) {
      assert.ok(st.steps[s.name] > 0, `${s.name} has steps`);
      assert.equal(s.points, st.steps[s.name], `${s.name}: points = steps`);
    }
    const evalSeries = await page.evaluate(() => window.__lab.evalSeries());
    for (const s of evalSeries) assert.ok(s.points >= 2, `${s.name}: eval before and after training`);

    // Train loss is drawn smoothed (EMA, the slider's weight) over its raw points, faint.
    const { ema } = await import(path.join(REPO, 'web', 'smooth.js'));
    const close = (a, b) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-9);
    const weight = Number(await page.inputValue('#train-smoothing'));
    assert.ok(weight > 0, 'smoothing is on by default');
    for (const s of await page.evaluate(() => window.__lab.series({ values: true }))) {
      assert.ok(close(s.smoothed, ema(s.raw, weight)), `${s.name}: the curve is the EMA of the raw points`);
      assert.match(s.rawStroke, /^#[0-9a-f]{6}[0-9a-f]{2}$/, `${s.name}: raw points drawn faint (with alpha)`);
    }
    await page.fill('#train-smoothing', '0');
    for (const s of await page.evaluate(() => window.__lab.series({ values: true }))) {
      assert.ok(close(s.smoothed, s.raw), `${s.name}: smoothing 0 draws the raw points`);
    }

    // The table's numbers are the downloaded results.json's.
    const doc = JSON.parse((await downloadText(page, '#dl-json')).toString('utf8'));
    assert.equal(JSON.stringify(doc), JSON.stringify(JSON.parse(st.resultsJson)));
    assert.equal(doc.environment.build, 'wasm relaxed-simd threads');
    assert.equal(doc.environment.simd, 'wasm-relaxed');
    const ps = doc.trainings;
    assert.deepEqual(ps.map((p) => p.name), ['baseline', 'ffn', 'attn']);
    const table = await page.evaluate(() => [...document.querySelectorAll('#results-table tbody tr')].map((tr) => ({
      key: tr.dataset.key, cells: [...tr.querySelectorAll('td')].map((td) => ({ value: td.dataset.value, text: td.textContent })),
    })));
    const byKey = Object.fromEntries(table.map((r) => [r.key, r.cells]));
    for (const key of ['eval_loss_before', 'eval_loss', 'perplexity', 'mean_sample_perplexity', 'trainable',
                       'percent', 'train_seconds', 'tokens_per_s', 'placement_memory_bytes', 'process_peak_memory_bytes',
                       'reduction_pct', 'vs_baseline_pct', 'trainer_eval_loss']) {
      assert.ok(byKey[key], `table row ${key}`);
      ps.forEach((p, i) => {
        const v = p[key];
        assert.ok(Number.isFinite(v), `${key} of ${p.name} in results.json`);
        assert.equal(Number(byKey[key][i].value), v, `${key} of ${p.name}`);
        const shownNum = parseCell(byKey[key][i].text);
        assert.ok(Math.abs(shownNum - v) <= Math.abs(v) * 0.06 + (ROUNDING[key] || 0), `${key} of ${p.name}: "${byKey[key][i].text}" vs ${v}`);
      });
    }
    for (const p of ps) {
      assert.ok(Math.abs(p.perplexity - Math.exp(p.eval_loss)) < 1e-6 * p.perplexity, `${p.name}: perplexity = exp(eval loss)`);
      assert.equal(p.steps.loss.length, p.steps_done);
      assert.equal(st.steps[p.name], p.steps_done, `${p.name}: step events = steps in results.json`);
    }
    assert.match(byKey.modules[2].text, /mlp\.c_proj/, 'attn result says it touched mlp.c_proj');
    assert.ok(table.some((r) => r.cells.some((c) => c.text.includes('★'))), 'best values marked');

    const csv = (await downloadText(page, '#dl-csv')).toString('utf8');
    assert.equal(csv.trim().split('\n').length, 4, 'CSV: header + one line per placement');

    // Adapter files in PEFT layout.
    const st8 = await downloadText(page, '.dl-adapter[data-placement="ffn"]');
    const hlen = Number(st8.readBigUInt64LE(0));
    const header = JSON.parse(st8.subarray(8, 8 + hlen).toString('utf8'));
    assert.ok(Object.keys(header).some((k) => /^base_model\.model\.transformer\.h\.0\.mlp\.c_fc\.lora_A\.weight$/.test(k)));
    const cfg = JSON.parse((await downloadText(page, '.dl-adapter-config[data-placement="ffn"]')).toString('utf8'));
    assert.equal(cfg.peft_type, 'LORA');

    // Side by side: the base model and each placement answer the same prompt
    // (without the long Alpaca template if the test model's context is tiny).
    if ((await page.evaluate(() => window.__lab.state.model.n_ctx)) < 128) await page.uncheck('#gen-template');
    await page.click('#generate');
    await page.waitForFunction(() => window.__lab.state.generations.length === 4 || window.__lab.state.errors.length,
                               null, { timeout: 60000 });
    const gens = await page.evaluate(() => window.__lab.state.generations);
    assert.deepEqual(await page.evaluate(() => window.__lab.state.errors), [], 'generation errors');
    assert.deepEqual(gens.map((g) => g.label), ['base model', 'baseline', 'ffn', 'attn']);
    // Seeded sampling by default, the settings shown, every answer with some text.
    for (const g of gens) assert.deepEqual(g.settings, { temperature: 0.8, top_k: 40, seed: 42, repetition_penalty: 1.3, min_new_tokens: 8 });
    assert.match(await page.textContent('#gen-used'), /seeded sampling: temperature 0\.8, top-k 40, seed 42/);
    for (const g of gens) assert.ok(g.text.trim().length > 0, `${g.label} answered with text`);

    assert.deepEqual(h.consoleErrors, [], 'no console errors');
    await page.screenshot({ path: artifact('lab.png'), fullPage: true });

    // Completed trainings survive a reload (IndexedDB).
    await page.goto(`${h.url}?model=${encodeURIComponent(MODEL.file)}&autoload=0&test=1`);
    await page.waitForFunction(() => document.querySelectorAll('#results-table thead th').length === 4, null, { timeout: 20000 });
    const restored = await page.evaluate(() => [...document.querySelectorAll('#results-table thead th')].map((t) => t.textContent));
    assert.deepEqual(restored.slice(1), ['baseline', 'ffn', 'attn']);
    assert.equal(await page.locator('.dl-adapter').count(), 3, 'saved adapters downloadable after reload');
    await page.click('#clear-saved');
    await page.waitForFunction(() => window.__lab.state.saved.length === 0, null, { timeout: 10000 });
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

test('Cancel stops a run within a step and keeps what finished', { ...T, skip: SKIP }, async () => {
  const h = await openLab();
  const { page } = h;
  try {
    await waitLoaded(page);
    await setHp(page, { epochs: 20, n_train: 8 });
    await page.click('#run');
    await page.waitForFunction(() => Object.values(window.__lab.state.run?.done || {}).some((n) => n >= 2), null, { timeout: 60000 });
    await page.click('#cancel');
    const t0 = Date.now();
    await page.waitForFunction(() => !window.__lab.state.running, null, { timeout: 30000 });
    const st = await page.evaluate(() => ({ cancelled: window.__lab.state.run.cancelled,
      status: document.querySelector('#run-status').textContent, total: window.__lab.state.run.totalSteps,
      done: Object.values(window.__lab.state.run.done).reduce((a, b) => a + b, 0) }));
    assert.equal(st.cancelled, true);
    assert.match(st.status, /Cancelled/);
    assert.ok(st.done < st.total, `stopped early: ${st.done} of ${st.total} steps`);
    assert.ok(Date.now() - t0 < 30000);
    // The worker is still usable afterwards.
    await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 5000 });
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

test('without COOP/COEP the single-thread build runs the lab', { ...T, skip: SKIP }, async () => {
  const h = await openLab({ isolation: false });
  const { page } = h;
  try {
    await waitLoaded(page);
    const engine = await page.evaluate(() => ({ ...window.__lab.state.engine, coi: self.crossOriginIsolated }));
    assert.equal(engine.coi, false);
    assert.equal(engine.variant, 'st');
    assert.match(engine.version, /single-thread/);
    await choosePlacements(page, ['ffn']);
    await setHp(page, { n_train: 2, n_eval: 2, epochs: 1 });
    await runToEnd(page);
    const st = await page.evaluate(() => ({ errors: window.__lab.state.errors, series: window.__lab.series(),
                                           steps: window.__lab.state.run.curves.ffn.steps }));
    assert.deepEqual(st.errors, []);
    assert.deepEqual(st.series.map((s) => s.name), ['ffn']);
    assert.equal(st.series[0].points, st.steps);
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

test('a bad data file gives an error message per record, not a hang', { ...T, skip: SKIP }, async () => {
  const h = await openLab({}, '&autoload=0');
  const { page } = h;
  try {
    await page.check('input[name=data-kind][value=upload]');
    await page.setInputFiles('#data-train-file', { name: 'broken.json', mimeType: 'application/json',
                                                   buffer: Buffer.from('[{"instruction": "a", "output": "b"},') });
    await page.click('#load-data');
    await page.waitForSelector('#data-errors li', { timeout: 10000 });
    assert.match(await page.textContent('#data-errors'), /broken\.json: not valid JSON/);
    assert.equal(await page.isVisible('#error'), true);

    const recs = [{ instruction: 'ok', input: '', output: 'fine' }, { instruction: 'no output' },
                  { instruction: 7, output: 'x' }, 'text', { instruction: 'x', input: 3, output: 'y' }];
    await page.setInputFiles('#data-train-file', { name: 'bad.json', mimeType: 'application/json',
                                                   buffer: Buffer.from(JSON.stringify(recs)) });
    await page.click('#load-data');
    await page.waitForFunction(() => document.querySelectorAll('#data-errors li').length === 4, null, { timeout: 10000 });
    const items = await page.$$eval('#data-errors li', (lis) => lis.map((l) => l.textContent));
    assert.deepEqual(items, ['bad.json: record 2: "output" is missing', 'bad.json: record 3: "instruction" is not a string',
                             'bad.json: record 4: is not an object', 'bad.json: record 5: "input" is not a string']);
    assert.equal(await page.evaluate(() => window.__lab.state.data), null);
    assert.equal(await page.isDisabled('#run'), true);
  } finally {
    await h.close();
  }
});

test('markup and script inside data records are shown as text, never run', { ...T, skip: SKIP }, async () => {
  const h = await openLab({}, '&autoload=0');
  const { page } = h;
  try {
    const evil = [
      { instruction: '<img src=x onerror="window.__pwned=1">', input: '<script>window.__pwned=2</script>',
        output: '<b>bold</b><iframe src="javascript:window.__pwned=3"></iframe>' },
      { instruction: 'Say hi', input: '', output: '"><svg onload="window.__pwned=4">' },
      { instruction: 'Third', output: '</td></tr></table><script>window.__pwned=5</script>' },
    ];
    await page.check('input[name=data-kind][value=upload]');
    await page.setInputFiles('#data-train-file', { name: '<img src=y onerror=window.__pwned=6>.json',
      mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(evil)) });
    await page.click('#load-data');
    await page.waitForFunction(() => /training records|refused|problems/.test(document.querySelector('#data-status').textContent),
                               null, { timeout: 20000 });
    const cells = await page.$$eval('#data-preview td', (tds) => tds.map((t) => t.textContent));
    assert.ok(cells.includes('<img src=x onerror="window.__pwned=1">'), 'markup shown literally');
    assert.ok(cells.includes('<script>window.__pwned=2</script>'));
    const injected = await page.evaluate(() => ({
      pwned: window.__pwned, img: document.querySelectorAll('main img, main iframe, main svg, main b').length,
      scripts: document.querySelectorAll('script').length,
    }));
    assert.deepEqual(injected, { pwned: undefined, img: 0, scripts: 1 });
    // The same in error messages that quote a record or a file name.
    await page.setInputFiles('#data-train-file', { name: '<b>x</b>.json', mimeType: 'application/json',
      buffer: Buffer.from('[{"instruction": "<img src=z onerror=window.__pwned=7>"}]') });
    await page.click('#load-data');
    await page.waitForSelector('#data-errors li', { timeout: 10000 });
    assert.match(await page.textContent('#data-errors'), /<b>x<\/b>\.json: record 1: "output" is missing/);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.evaluate(() => document.querySelectorAll('#data-errors b, #error b').length), 0);
  } finally {
    await h.close();
  }
});

test('without ?test=1 the page exposes no test hooks', { ...T, skip: SKIP }, async () => {
  const h = await open({ modelsDir: MODEL.dir });
  const { page } = h;
  try {
    await page.goto(`${h.url}?model=${encodeURIComponent(MODEL.file)}&autoload=0`);
    await page.waitForFunction(() => !/Starting/.test(document.querySelector('#engine').textContent), null, { timeout: 30000 });
    assert.match(await page.textContent('#engine'), /isolated/, 'the engine started');
    assert.equal(await page.evaluate(() => typeof window.__lab), 'undefined');
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

test('a crashed worker becomes a readable error and restarts without a reload', { ...T, skip: SKIP }, async () => {
  const h = await openLab();
  const { page } = h;
  try {
    await waitLoaded(page);
    await page.evaluate(() => window.__lab.crash());
    await page.waitForSelector('#restart', { state: 'visible', timeout: 10000 });
    assert.match(await page.textContent('#error-text'), /crashed.*Restart the worker/);
    assert.equal(await page.isDisabled('#run'), true);
    await page.click('#restart');
    await page.waitForFunction(() => window.__lab.state.engine, null, { timeout: 30000 });
    assert.equal(await page.isVisible('#error'), false);
    await page.click('#load-model');
    await page.click('#load-data');
    await page.waitForFunction(() => window.__lab.state.model && window.__lab.state.data, null, { timeout: 60000 });
    await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 10000 });
  } finally {
    await h.close();
  }
});

test('custom placements: modules, layers, PEFT short names, counted before running', { ...T, skip: SKIP }, async () => {
  const h = await openLab();
  const { page } = h;
  try {
    await waitLoaded(page);
    const { n_embd: d, n_layer: L } = await page.evaluate(() => window.__lab.state.model);
    const setMods = async (mods) => {
      for (const m of ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']) {
        await page.locator(`#custom-editor .mods input[value="${m}"]`).setChecked(mods.includes(m));
      }
    };
    const countOf = (name) => page.waitForFunction((n) => window.__lab.state.counts.find((c) => c.name === n), name,
                                                   { timeout: 20000 }).then((hnd) => hnd.jsonValue());
    await page.fill('#custom-name', 'qkv0');
    await setMods(['attn.c_attn']);
    await page.fill('#custom-layers', '0');
    await page.click('#custom-add');
    const c0 = await countOf('qkv0');
    assert.equal(c0.trainable, 16 * (d + 3 * d), 'r * (in + out) of one attn.c_attn');
    assert.deepEqual(c0.selected, [[0, 'attn.c_attn']]);

    await page.fill('#custom-name', 'bad');
    await page.fill('#custom-layers', String(L));
    await page.click('#custom-add');
    assert.equal(await page.textContent('#custom-error'), `layers: the model has layers 0-${L - 1}`);
    await page.fill('#custom-name', 'qkv0');
    await page.fill('#custom-layers', '');
    await page.click('#custom-add');
    assert.equal(await page.textContent('#custom-error'), 'there is already a placement "qkv0"');

    await page.fill('#custom-name', 'proj');
    await setMods(['attn.c_proj']);
    await page.check('#custom-suffix');
    await page.click('#custom-add');
    const cp = await countOf('proj');
    assert.deepEqual(cp.target_modules, ['c_proj']);
    assert.equal(cp.trainable, L * 16 * ((d + d) + (4 * d + d)),
                 'c_proj adapts attn.c_proj [d->d] and mlp.c_proj [4d->d] in every layer');
    assert.match(await page.textContent('#count-table tr[data-placement="proj"]'),
                 /suffix match: “c_proj” matches attn\.c_proj and mlp\.c_proj/);
    await page.click('#count-table tr[data-placement="proj"] button');
    await page.waitForFunction(() => !window.__lab.state.placements.some((p) => p.name === 'proj'), null, { timeout: 5000 });
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});
