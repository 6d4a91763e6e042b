// Faults around a run in the page, in headless Chromium with the threaded build:
// - a real out-of-memory: a heap that cannot grow past 64 MB (?max-heap-mb=64, the
//   worker creates the module's memory with that maximum, as a browser short of
//   memory does) and six placements at r 128 whose kept adapters outgrow it; malloc
//   returns NULL inside the engine and the page says what it tried to allocate and
//   the limit, keeps the completed trainings (table and IndexedDB) and restarts the
//   worker, which then runs again;
// - a reload in the middle of a run: the page offers to resume from the last completed
//   placement; the engine refuses a stored config that does not match; the resumed
//   run ends with the eval losses of an uninterrupted run, bit for bit;
// - the browser's storage quota used up (CDP Storage.overrideQuotaForOrigin): the page
//   says so and the results stay downloadable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wasmHasApi, findModel, openLab as openLabOn, labUrl as labUrlOn, waitReady, waitLoaded, setHp,
  choosePlacements, runToEnd } from './harness.mjs';

const MODEL = findModel();
const openLab = (opts = {}, query = '') => openLabOn(MODEL, opts, query);
const labUrl = (h, query = '') => labUrlOn(h, MODEL, query);

const SKIP = !wasmHasApi() ? 'the wasm build has no lab API yet (src/wasm/api.c)'
  : !MODEL ? 'no GGUF model in models/ or tests/fixtures/' : false;
const T = { timeout: 240000 };

// The placements stored in IndexedDB by the page (read in the page, independently of its code).
function storedTrainings(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open('loralab');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const db = req.result;
      const g = db.transaction('placements').objectStore('placements').getAll();
      g.onsuccess = () => { db.close(); resolve(g.result.map((r) => ({ runId: r.runId, name: r.name,
        eval_loss: r.result && r.result.eval_loss, adapter: r.adapter ? r.adapter.length : 0 }))); };
      g.onerror = () => reject(g.error);
    };
  }));
}

const tableHeads = (page) => page.$$eval('#results-table thead th', (ths) => ths.map((t) => t.textContent).slice(1));
const evalLosses = (page) => page.evaluate(() => Object.fromEntries(
  window.__lab.state.results.trainings.filter((p) => p.status === 'done').map((p) => [p.name, p.eval_loss])));

test('out of memory in the wasm heap: a readable message, completed trainings kept, worker restarted', { ...T, skip: SKIP }, async (t) => {
  const h = await openLab({}, '&max-heap-mb=64');
  const { page } = h;
  try {
    await waitLoaded(page);
    assert.equal((await page.evaluate(() => window.__lab.state.engine)).heapLimit, 64 * 2 ** 20);
    const all = ['baseline', 'ffn', 'attn', 'all-linear', 'attn-exact', 'mlp-exact'];
    await setHp(page, { r: 128, alpha: 256, epochs: 1, n_train: 3, n_eval: 2, max_len: 64 });
    await choosePlacements(page, all);
    await runToEnd(page);
    const errors = await page.evaluate(() => window.__lab.state.errors);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0], /^Out of memory in the browser: could not allocate [a-zA-Z +]+ \([\d,]+ bytes\); the wasm heap is 64\.0 MB and cannot grow past its limit of 64\.0 MB\. Completed trainings are kept; the worker restarts\./);
    assert.equal(await page.textContent('#error-text'), errors[0]);
    t.diagnostic(`page says: ${errors[0]}`);

    // What completed before is in the table and in storage.
    const done = await page.evaluate(() => window.__lab.state.results.trainings.filter((p) => p.status === 'done').map((p) => p.name));
    assert.ok(done.length >= 1 && done.length < all.length, `completed before the failure: ${done}`);
    t.diagnostic(`completed before running out of memory: ${done.join(', ')}`);
    assert.deepEqual(done, all.slice(0, done.length));
    assert.deepEqual((await tableHeads(page)).slice(0, done.length), done);
    for (const name of done) {
      const cell = await page.textContent(`#results-table tr[data-key="eval_loss"] td:nth-of-type(${all.indexOf(name) + 1})`);
      assert.match(cell, /^\d+\.\d{4}/, `eval loss of ${name} in the table`);
    }
    const runId = await page.evaluate(() => window.__lab.state.runId);
    await page.waitForFunction((n) => window.__lab.state.saved.length >= n, done.length, { timeout: 10000 });
    const stored = (await storedTrainings(page)).filter((r) => r.runId === runId);
    assert.deepEqual(stored.map((r) => r.name), done, 'completed trainings in IndexedDB');

    // A fresh worker, the model and data loaded again, and it trains.
    await page.waitForFunction(() => window.__lab.state.engineRestarts === 1 && window.__lab.state.engine &&
      window.__lab.state.model && window.__lab.state.data, null, { timeout: 60000 });
    await setHp(page, { r: 8, alpha: 16, n_train: 2 });
    await choosePlacements(page, ['ffn']);
    await runToEnd(page);
    assert.equal(await page.evaluate(() => window.__lab.state.results.trainings[0].status), 'done');
  } finally {
    await h.close();
  }
});

test('reload mid-run: resume from the last completed training, stored config checked, same losses', { ...T, skip: SKIP }, async () => {
  const h = await openLab();
  const { page } = h;
  try {
    await waitLoaded(page);
    // Trained as runs were before base dropout and compute int8 existed, so that the
    // stored run can be made to look like one of those below.
    const hp = { epochs: 4, n_train: 6, n_eval: 2, max_len: 64, r: 8, alpha: 16, base_dropout: 0 };
    await setHp(page, hp);
    await page.selectOption('[data-hp="compute"]', 'f32');
    await choosePlacements(page, ['baseline', 'ffn', 'attn']);
    await page.click('#run');
    const runId = await page.waitForFunction(() => window.__lab.state.running && window.__lab.state.runId, null,
                                             { timeout: 10000 }).then((x) => x.jsonValue());
    // Reload once the first placement (with its adapter) is stored and the second is under way.
    await page.waitForFunction(() => window.__lab.state.run.done[1] > 0, null, { timeout: 120000 });
    let before = [];
    for (let i = 0; i < 50 && !(before.length && before[0].adapter); i++) {
      before = (await storedTrainings(page)).filter((r) => r.runId === runId);
      if (!(before.length && before[0].adapter)) await page.waitForTimeout(100);
    }
    assert.ok(await page.evaluate(() => window.__lab.state.running && !window.__lab.state.run.done[2]),
              'the reload comes while the second placement trains');
    assert.deepEqual(before.map((r) => r.name), ['baseline']);
    assert.ok(before[0].adapter > 0, 'adapter stored with the placement');
    await page.reload();
    await waitReady(page);
    await waitLoaded(page);
    await page.waitForSelector('#resume-offer', { state: 'visible', timeout: 10000 });
    assert.match(await page.textContent('#resume-text'),
                 /stopped after 1 of 3 placement\(s\) \(baseline done\)\. Resume trains ffn, attn with the same config\./);
    await page.waitForFunction(() => !document.querySelector('#resume').disabled, null, { timeout: 10000 });

    // A stored config that does not match what the engine would run is refused.
    await page.evaluate(() => { window.__lab.state.resumable.run.config.lr = 0.5; });
    await page.click('#resume');
    await page.waitForFunction(() => window.__lab.state.errors.length > 0 && !window.__lab.state.running, null, { timeout: 30000 });
    assert.match((await page.evaluate(() => window.__lab.state.errors))[0],
                 /resum.*the saved run has a different "lr" \(resume needs the same experiment\)/);
    await page.waitForSelector('#resume-offer', { state: 'visible', timeout: 5000 });
    await page.evaluate(() => { window.__lab.state.resumable.run.config.lr = window.__lab.state.resumable.run.experiment.lr; });
    // A run stored before base dropout and compute existed has neither setting: it
    // resumes as it trained (0 and f32), whatever the inputs say now.
    await page.evaluate(() => {
      const r = window.__lab.state.resumable.run;
      for (const k of ['base_dropout', 'compute']) { delete r.config[k]; delete r.experiment[k]; }
    });
    await setHp(page, { base_dropout: 'config' });
    await page.selectOption('[data-hp="compute"]', 'int8');

    await page.click('#error-close');
    await page.click('#resume');
    await page.waitForFunction(() => window.__lab.state.running, null, { timeout: 10000 }).catch(() => {});
    await page.waitForFunction(() => !window.__lab.state.running, null, { timeout: 120000 });
    assert.deepEqual(await page.evaluate(() => window.__lab.state.errors), ['Run: resuming: resume: the saved run has a different "lr" (resume needs the same experiment)']);
    assert.deepEqual(await tableHeads(page), ['baseline', 'ffn', 'attn']);
    assert.deepEqual(await page.evaluate(() => [document.querySelector('[data-hp="base_dropout"]').value,
                                                document.querySelector('[data-hp="compute"]').value]), ['0', 'f32'],
                     'the resumed run shows the settings it trained with');
    const resumed = await evalLosses(page);
    assert.equal(resumed.baseline, before[0].eval_loss, 'the stored placement is taken as it was');
    assert.equal(await page.evaluate(() => window.__lab.state.runId), runId, 'the same run continued');
    const after = (await storedTrainings(page)).filter((r) => r.runId === runId);
    assert.deepEqual(after.map((r) => r.name), ['baseline', 'ffn', 'attn']);
    assert.equal(await page.locator('.dl-adapter').count(), 3, 'all three adapters downloadable');

    // The same experiment uninterrupted gives the same numbers.
    await runToEnd(page);
    assert.deepEqual(await evalLosses(page), resumed);
    // A finished run is not offered again after a reload.
    await page.goto(labUrl(h, '&autoload=0'));
    await waitReady(page);
    await page.waitForFunction(() => window.__lab.state.saved.length > 0, null, { timeout: 10000 });
    assert.equal(await page.isVisible('#resume-offer'), false);
  } finally {
    await h.close();
  }
});

test('storage quota used up: the page says so and results stay downloadable', { ...T, skip: SKIP }, async () => {
  const h = await openLab();
  const { page } = h;
  try {
    await waitLoaded(page);
    const cdp = await h.context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(h.url).origin, quotaSize: 4096 });
    await setHp(page, { epochs: 1, n_train: 2, n_eval: 2, r: 8, alpha: 16 });
    await choosePlacements(page, ['ffn']);
    await runToEnd(page);
    const errors = await page.evaluate(() => window.__lab.state.errors);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0], /^The browser's storage for this page is full \(QuotaExceededError\): .* could not be saved in this browser, so it will not survive a reload\. Results and adapters stay downloadable/);
    assert.equal(await page.evaluate(() => window.__lab.state.results.trainings[0].status), 'done');
    assert.equal(await page.locator('#dl-json').count(), 1);
    assert.equal(await page.locator('.dl-adapter').count(), 1);
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('.dl-adapter')]);
    assert.ok((await dl.createReadStream()) !== null, 'the adapter downloads');
    assert.deepEqual(await storedTrainings(page), [], 'nothing half-stored');
  } finally {
    await h.close();
  }
});
