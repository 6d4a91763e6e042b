// Seeds and the token view in the browser: a two-seed run of two placements on the
// bundled model; the table shows mean ± half-interval from results.json "aggregates",
// the seed chart draws one band per placement and one dot per training, the verdict
// is the engine's, every training has its own curve; "What was learned" colours an
// eval example's tokens by the loss change of a placement, filters them by role, and
// its whole-set losses are the run's own eval losses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, artifact, wasmHasApi, findModel } from './harness.mjs';

const MODEL = findModel();
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API yet (src/wasm/api.c)'
  : !MODEL ? 'no GGUF model in models/ or tests/fixtures/' : false;

test('two seeds: aggregates in the table, seed bands, verdict, token view', { timeout: 240000, skip: SKIP }, async () => {
  const h = await open({ modelsDir: MODEL.dir });
  const { page } = h;
  try {
    await page.goto(`${h.url}?model=${encodeURIComponent(MODEL.file)}&quick=1&test=1`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
    await page.waitForFunction(() => (window.__lab.state.model && window.__lab.state.data) || window.__lab.state.errors.length,
      null, { timeout: 60000 });
    assert.deepEqual(await page.evaluate(() => window.__lab.state.errors), []);
    for (const [k, v] of Object.entries({ seeds: 2, n_train: 4, n_eval: 3, epochs: 1, max_len: 48 }))
      await page.fill(`[data-hp="${k}"]`, String(v));
    for (const v of await page.$$eval('#presets input[type=checkbox]', (els) => els.map((e) => e.value)))
      await page.locator(`#presets input[value="${v}"]`).setChecked(v === 'baseline' || v === 'ffn');
    await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 20000 });
    await page.click('#run');
    await page.waitForFunction(() => window.__lab.state.running, null, { timeout: 10000 }).catch(() => {});
    await page.waitForFunction(() => !window.__lab.state.running, null, { timeout: 200000 });
    assert.deepEqual(await page.evaluate(() => window.__lab.state.errors), []);
    const doc = JSON.parse(await page.evaluate(() => window.__lab.state.resultsJson));
    assert.deepEqual(doc.seeds, [42, 43]);
    assert.deepEqual(doc.trainings.map((p) => [p.name, p.seed, p.status]),
      [['baseline', 42, 'done'], ['ffn', 42, 'done'], ['baseline', 43, 'done'], ['ffn', 43, 'done']]);
    const aggs = doc.aggregates.placements;
    assert.deepEqual(aggs.map((a) => a.name), ['baseline', 'ffn']);

    // Table: one column per placement, mean ± half the interval, values from the aggregates.
    const heads = await page.$$eval('#results-table thead th', (ths) => ths.map((t) => t.textContent));
    assert.deepEqual(heads.slice(1), ['baseline', 'ffn']);
    assert.match(heads[0], /2 seeds/);
    const cells = await page.$$eval('#results-table tr[data-key="eval_loss"] td',
      (tds) => tds.map((td) => ({ value: Number(td.dataset.value), half: Number(td.dataset.half), text: td.textContent })));
    aggs.forEach((a, i) => {
      const m = a.metrics.eval_loss;
      assert.equal(m.values.length, 2);
      assert.equal(cells[i].value, m.mean, `${a.name}: mean`);
      assert.ok(Math.abs(cells[i].half - (m.ci95[1] - m.ci95[0]) / 2) < 1e-12, `${a.name}: half interval`);
      assert.match(cells[i].text, new RegExp(`^${m.mean.toFixed(4)} ± ${((m.ci95[1] - m.ci95[0]) / 2).toFixed(4)}`));
      const own = doc.trainings.filter((p) => p.name === a.name).map((p) => p.eval_loss);
      assert.deepEqual(m.values, own, `${a.name}: values are the trainings' eval losses`);
    });

    // Seed chart and verdict.
    const bands = await page.$eval('#chart-seeds', (c) => ({ bands: c.dataset.bands, dots: c.dataset.dots }));
    assert.deepEqual(bands, { bands: '2', dots: '4' });
    const verdicts = await page.$$eval('#verdicts li', (lis) => lis.map((l) => l.textContent));
    assert.deepEqual(verdicts, [aggs[1].verdict]);
    assert.match(verdicts[0], /^ffn − baseline: [+-]\d\.\d{3} nats/);

    // A curve per training.
    const series = await page.evaluate(() => window.__lab.series());
    assert.deepEqual(series.map((s) => s.name).sort(), ['baseline', 'baseline · seed 43', 'ffn', 'ffn · seed 43']);
    for (const s of series) assert.ok(s.points > 0, `${s.name} has points`);

    // What was learned: ffn at seed 42 (training 1), example 1.
    await page.selectOption('#learned-placement', '1');
    await page.selectOption('#learned-example', '1');
    await page.click('#learned-show');
    await page.waitForFunction(() => document.querySelectorAll('#learned-tokens .tok').length > 0, null, { timeout: 30000 });
    const view = await page.evaluate(() => window.__lab.state.tokenView);
    assert.deepEqual(view.models, ['base', 'ffn']);
    assert.ok(Math.abs(view.eval_loss - doc.base_eval.eval_loss) < 1e-6, 'base eval loss of the whole set');
    assert.ok(Math.abs(view.eval_loss_ffn - doc.trainings[1].eval_loss) < 1e-6, 'ffn eval loss of the whole set');
    const spans = await page.$$eval('#learned-tokens .tok', (ss) => ss.map((s) => ({
      role: s.dataset.role, scored: s.dataset.scored, delta: s.dataset.delta, dim: s.classList.contains('dim'),
      bg: s.style.backgroundColor, text: s.textContent })));
    const toks = view.examples[0].tokens;
    assert.equal(spans.length, toks.length);
    toks.forEach((t, i) => {
      assert.equal(spans[i].text, t.text);
      assert.equal(spans[i].role, t.role);
      if (t.scored) {
        assert.ok(Math.abs(Number(spans[i].delta) - (t.loss_ffn - t.loss)) < 1e-12, 'delta = loss with adapter - base loss');
        assert.notEqual(spans[i].bg, '', 'scored tokens are coloured');
      }
    });
    assert.ok(new Set(spans.map((s) => s.role)).size >= 3, 'template, instruction and response tokens');
    await page.selectOption('#learned-role', 'response');
    const filtered = await page.$$eval('#learned-tokens .tok', (ss) => ss.map((s) => ({ role: s.dataset.role, dim: s.classList.contains('dim') })));
    assert.ok(filtered.every((s) => s.dim === (s.role !== 'response')), 'the role filter dims the other roles');
    assert.match(await page.textContent('#learned-summary'), /template: [+-]\d\.\d{3} nats\/token over \d+ tokens \(\d+% of the change\)/);
    await page.screenshot({ path: artifact('seeds.png'), fullPage: true });
  } finally {
    await h.close();
  }
});
