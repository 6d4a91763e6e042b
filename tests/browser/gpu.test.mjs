// Training on WebGPU in the page (issue 22), on SwiftShader (Chromium's CPU emulator of
// a Vulkan GPU: correctness only, never a speed): the bundled model, quick settings cut
// to fit the emulator, same seed, compute f32: device webgpu against device cpu, the
// first train losses and the final eval losses within 1e-3 relative; results.json
// records config.device and the adapter under environment.webgpu; Cancel works on the
// GPU; a device lost mid-run gives a readable message and keeps the completed
// training; the device select and ?device= work; a page without WebGPU says why it runs on
// the CPU. The eval passes run on the GPU too (results.json environment.eval_device and
// every eval point's device), within 1e-3 of the CPU's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { openLab, waitReady, waitLoaded, setHp, choosePlacements, runToEnd, wasmHasApi, findModel } from './harness.mjs';

const MODEL = findModel();
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API yet (src/wasm/api.c)'
  : !MODEL ? 'no GGUF model in models/ or tests/fixtures/' : false;
// The issue asks for the first 20 train losses: 5 records x 4 epochs = 20 steps of up to
// 32 tokens, 2 eval examples after each epoch; the quick preset's other settings (base
// dropout from the model's config, so the counter-based masks are compared too). Under
// SwiftShader a step of the bundled model takes about a second (its LM head has 50,257
// rows), hence the short records; compute f32 is chosen in runOn (a select, not a field).
const HP = { n_train: 5, n_eval: 2, epochs: 4, max_len: 32, seed: 7 };

async function runOn(page, device) {
  await page.selectOption('#device', device);
  await page.selectOption('[data-hp="compute"]', 'f32');
  await runToEnd(page, 300000);
  const st = await page.evaluate(() => ({ errors: window.__lab.state.errors, json: window.__lab.state.resultsJson }));
  assert.deepEqual(st.errors, [], `${device} run`);
  return JSON.parse(st.json);
}

const rel = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

test('webgpu matches cpu: train and eval losses, results.json device and adapter', { timeout: 600000, skip: SKIP }, async (t) => {
  const h = await openLab(MODEL, { webgpu: true }, '&device=webgpu');
  const { page } = h;
  try {
    await page.waitForFunction(() => window.__lab.deviceReady, null, { timeout: 20000 });
    const dev = await page.evaluate(() => ({ value: document.querySelector('#device').value,
      note: document.querySelector('#device-note').textContent, gpu: window.__lab.state.gpu }));
    assert.equal(dev.value, 'webgpu', '?device=webgpu selects the GPU when an adapter is usable');
    assert.equal(dev.gpu.info.architecture, 'swiftshader');
    assert.match(dev.note, /SwiftShader.*emulat/);
    await waitLoaded(page);
    await choosePlacements(page, ['baseline']);
    await setHp(page, HP);
    const gpu = await runOn(page, 'webgpu');
    const cpu = await runOn(page, 'cpu');
    assert.equal(gpu.config.device, 'webgpu');
    assert.equal(cpu.config.device, 'cpu');
    const env = gpu.environment.webgpu;
    assert.equal(env.vendor, 'google');
    assert.equal(env.architecture, 'swiftshader');
    assert.equal(env.emulation, true);
    assert.ok(env.limits.maxStorageBufferBindingSize >= 128 * 2 ** 20 && env.limits.maxBufferSize > 0, JSON.stringify(env.limits));
    assert.equal(cpu.environment.webgpu, undefined, 'a CPU run names no adapter');
    const g = gpu.trainings[0], c = cpu.trainings[0];
    assert.equal(g.status, 'done');
    const gl = g.steps.loss, cl = c.steps.loss;
    t.diagnostic(`train losses gpu ${JSON.stringify(gl)} cpu ${JSON.stringify(cl)}; eval loss gpu ${g.eval_loss} cpu ${c.eval_loss}`);
    assert.equal(gl.length, cl.length);
    assert.ok(cl.length >= 20, `${cl.length} steps`);
    for (let k = 0; k < 20; k++)
      assert.ok(rel(gl[k], cl[k]) < 1e-3, `train loss ${k}: gpu ${gl[k]}, cpu ${cl[k]}`);
    assert.ok(rel(g.eval_loss, c.eval_loss) < 1e-3, `eval loss: gpu ${g.eval_loss}, cpu ${c.eval_loss}`);
    // The eval passes ran on the GPU (per-position losses back to the C core, which
    // reduces them as a CPU eval): every eval point says so and agrees with the CPU's,
    // the per-sample perplexity and HF Trainer's loss too.
    assert.equal(gpu.environment.eval_device, 'webgpu');
    assert.equal(cpu.environment.eval_device, undefined, 'a CPU run keeps its environment');
    assert.equal(gpu.base_eval.device, 'webgpu');
    assert.equal(g.evals.length, c.evals.length);
    const points = [[gpu.base_eval, cpu.base_eval], ...g.evals.map((e, k) => [e, c.evals[k]])];
    for (const [ge, ce] of points) {
      assert.equal(ge.device, 'webgpu', `eval point of epoch ${ge.epoch}`);
      assert.equal(ce.device, undefined);
      assert.equal(ge.n_tokens, ce.n_tokens);
      for (const key of ['eval_loss', 'perplexity', 'mean_sample_perplexity', 'trainer_eval_loss'])
        assert.ok(rel(ge[key], ce[key]) < 1e-3, `epoch ${ge.epoch} ${key}: gpu ${ge[key]}, cpu ${ce[key]}`);
    }
    t.diagnostic(`eval points gpu ${JSON.stringify(points.map(([ge]) => ge.eval_loss))} cpu ${JSON.stringify(points.map(([, ce]) => ce.eval_loss))}`);
    // Training changed the adapters on the GPU and they came back: eval moved from the base's.
    assert.notEqual(g.eval_loss, g.evals[0].eval_loss);
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

// The lab on the GPU (?device=webgpu): the bundled model loaded, the adapter probed,
// these placements ticked.
async function openOnGpu(placements) {
  const h = await openLab(MODEL, { webgpu: true }, '&device=webgpu');
  try {
    await waitLoaded(h.page);
    await h.page.waitForFunction(() => window.__lab.deviceReady, null, { timeout: 20000 });
    await choosePlacements(h.page, placements);
    return h;
  } catch (e) {
    await h.close();
    throw e;
  }
}

test('Cancel on the GPU stops within a step and the worker stays usable', { timeout: 200000, skip: SKIP }, async () => {
  const h = await openOnGpu(['baseline']);
  const { page } = h;
  try {
    await setHp(page, { ...HP, epochs: 20 });
    await page.click('#run');
    await page.waitForFunction(() => Object.values(window.__lab.state.run?.done || {}).some((n) => n >= 1), null, { timeout: 90000 });
    assert.equal(await page.evaluate(() => window.__lab.state.run.experiment.device), 'webgpu', 'the run is on the GPU');
    await page.click('#cancel');
    await page.waitForFunction(() => !window.__lab.state.running, null, { timeout: 60000 });
    const st = await page.evaluate(() => ({ cancelled: window.__lab.state.run.cancelled, errors: window.__lab.state.errors,
      total: window.__lab.state.run.totalSteps, done: Object.values(window.__lab.state.run.done).reduce((a, b) => a + b, 0) }));
    assert.equal(st.cancelled, true);
    assert.deepEqual(st.errors, []);
    assert.ok(st.done < st.total, `stopped early: ${st.done} of ${st.total}`);
    await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 5000 });
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

test('a GPU device lost mid-run: a readable message, the completed training kept, the CPU still runs', { timeout: 240000, skip: SKIP }, async (t) => {
  const h = await openOnGpu(['baseline', 'attn']);
  const { page } = h;
  try {
    await setHp(page, { n_train: 3, n_eval: 2, epochs: 2, max_len: 16, seed: 5 });
    await page.selectOption('[data-hp="compute"]', 'f32');
    await page.click('#run');
    // The device goes (web/worker.js's test hook destroys it, as a driver reset does)
    // once the second training has taken a step, the first one complete.
    await page.waitForFunction(() => window.__lab.state.run?.done?.[1] > 0, null, { timeout: 150000 });
    await page.evaluate(() => window.__lab.loseGpu());
    await page.waitForFunction(() => !window.__lab.state.running, null, { timeout: 60000 });
    const st = await page.evaluate(() => ({ errors: window.__lab.state.errors,
      trainings: window.__lab.state.results.trainings.map((p) => ({ name: p.name, status: p.status, eval_loss: p.eval_loss })) }));
    t.diagnostic(`page says: ${JSON.stringify(st.errors)}; trainings ${JSON.stringify(st.trainings)}`);
    assert.equal(st.errors.length, 1, JSON.stringify(st.errors));
    assert.match(st.errors[0], /^WebGPU device lost \([^)]*[^.]\)\. /);
    assert.match(st.errors[0], /Completed trainings are kept/);
    assert.equal(st.trainings[0].name, 'baseline');
    assert.equal(st.trainings[0].status, 'done');
    assert.ok(Number.isFinite(st.trainings[0].eval_loss));
    assert.ok(!st.trainings[1] || st.trainings[1].status !== 'done', 'the second training did not complete');
    // The stored run keeps the completed training and its adapter.
    const runId = await page.evaluate(() => window.__lab.state.runId);
    await page.waitForFunction((n) => window.__lab.state.saved.length >= n, 1, { timeout: 10000 });
    const stored = await storedTrainings(page, runId);
    assert.deepEqual(stored.map((r) => r.name), ['baseline']);
    assert.ok(stored[0].adapter > 0, 'the adapter is stored');
    // The worker stays usable: the same page trains on the CPU.
    await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 10000 });
    await choosePlacements(page, ['baseline']);
    await setHp(page, { n_train: 2, epochs: 1 });
    await page.selectOption('#device', 'cpu');
    await runToEnd(page, 120000);
    assert.equal(await page.evaluate(() => window.__lab.state.results.trainings[0].status), 'done');
  } finally {
    await h.close();
  }
});

test('without WebGPU the page says why it runs on the CPU; ?device= and the select', { timeout: 60000, skip: SKIP }, async () => {
  // Chromium without the WebGPU flags (--disable-gpu): navigator.gpu gives no adapter.
  let h = await openLab(MODEL, {}, '&device=webgpu');
  try {
    await h.page.waitForFunction(() => window.__lab.deviceReady, null, { timeout: 20000 });
    const st = await h.page.evaluate(() => ({ value: document.querySelector('#device').value,
      disabled: document.querySelector('#device option[value="webgpu"]').disabled,
      note: document.querySelector('#device-note').textContent }));
    assert.equal(st.value, 'cpu');
    assert.equal(st.disabled, true);
    assert.match(st.note, /runs on the CPU: (this browser has no WebGPU|WebGPU gave no adapter)/);
  } finally {
    await h.close();
  }
  // navigator.gpu stubbed away: the reason names it.
  h = await openLab(MODEL, { webgpu: true }, '&autoload=0');
  try {
    await h.page.addInitScript(() => { Object.defineProperty(navigator, 'gpu', { value: undefined }); });
    await h.page.reload();
    await h.page.waitForFunction(() => window.__lab && window.__lab.deviceReady, null, { timeout: 20000 });
    const note = await h.page.textContent('#device-note');
    assert.match(note, /Runs on the CPU: this browser has no WebGPU \(navigator.gpu is missing/);
    assert.equal(await h.page.inputValue('#device'), 'cpu');
  } finally {
    await h.close();
  }
  // With the emulator and no ?device=: SwiftShader is usable but not proposed; the select picks it on request.
  h = await openLab(MODEL, { webgpu: true }, '&autoload=0');
  try {
    await h.page.waitForFunction(() => window.__lab.deviceReady, null, { timeout: 20000 });
    assert.equal(await h.page.inputValue('#device'), 'cpu');
    await h.page.selectOption('#device', 'webgpu');
    const exp = await h.page.evaluate(() => window.__lab.experiment());
    assert.equal(exp.device, 'webgpu');
  } finally {
    await h.close();
  }
});

// The stored trainings of a run in IndexedDB (read in the page, independently of its code).
function storedTrainings(page, runId) {
  return page.evaluate((id) => new Promise((resolve, reject) => {
    const req = indexedDB.open('loralab');
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const g = req.result.transaction('placements').objectStore('placements').getAll();
      g.onsuccess = () => { req.result.close(); resolve(g.result.filter((r) => r.runId === id).map((r) => ({ name: r.name,
        seed: r.result && r.result.seed, eval_loss: r.result && r.result.eval_loss, adapter: r.adapter ? r.adapter.length : 0 }))); };
      g.onerror = () => reject(g.error);
    };
  }), runId);
}

// The first adapter download of the page: safetensors parsed here ({name: Float32Array}).
async function downloadAdapter(page) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('.dl-adapter').first().click()]);
  const buf = fs.readFileSync(await dl.path());
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    assert.equal(v.dtype, 'F32', k);
    const [a, b] = v.data_offsets;
    out[k] = new Float32Array(buf.buffer.slice(buf.byteOffset + 8 + n + a, buf.byteOffset + 8 + n + b));
  }
  return out;
}

test('on the GPU: two seeds, reload mid-run and resume, results and adapter downloads', { timeout: 300000, skip: SKIP }, async (t) => {
  const h = await openOnGpu(['baseline']);
  const { page } = h;
  try {
    // 2 trainings of 3 steps of up to 16 tokens: the emulator's LM head stays cheap
    await setHp(page, { seeds: 2, n_train: 3, n_eval: 2, epochs: 1, max_len: 16, seed: 42 });
    await page.selectOption('[data-hp="compute"]', 'f32');
    assert.equal(await page.inputValue('#device'), 'webgpu');
    await page.click('#run');
    const runId = await page.waitForFunction(() => window.__lab.state.running && window.__lab.state.runId, null,
      { timeout: 10000 }).then((x) => x.jsonValue());
    // Reload once seed 42's training is stored with its adapter, while seed 43's trains.
    await page.waitForFunction(() => window.__lab.state.run.done[1] > 0, null, { timeout: 150000 });
    let before = [];
    for (let i = 0; i < 100 && !(before.length && before[0].adapter); i++) {
      before = await storedTrainings(page, runId);
      if (!(before.length && before[0].adapter)) await page.waitForTimeout(100);
    }
    assert.ok(await page.evaluate(() => window.__lab.state.running), 'the reload comes while seed 43 trains');
    assert.deepEqual(before.map((r) => [r.name, r.seed]), [['baseline', 42]]);
    assert.ok(before[0].adapter > 0, 'adapter stored with the training');
    await page.reload();
    await waitReady(page);
    await waitLoaded(page);
    await page.waitForFunction(() => window.__lab.deviceReady, null, { timeout: 20000 });
    await page.waitForSelector('#resume-offer', { state: 'visible', timeout: 10000 });
    assert.match(await page.textContent('#resume-text'), /stopped after 1 of 2 trainings \(2 seeds per placement\)/);
    await page.waitForFunction(() => !document.querySelector('#resume').disabled, null, { timeout: 10000 });
    await page.click('#resume');
    await page.waitForFunction(() => window.__lab.state.running, null, { timeout: 10000 }).catch(() => {});
    await page.waitForFunction(() => !window.__lab.state.running, null, { timeout: 150000 });
    assert.deepEqual(await page.evaluate(() => window.__lab.state.errors), []);
    assert.equal(await page.inputValue('#device'), 'webgpu');
    const gpu = JSON.parse(await page.evaluate(() => window.__lab.state.resultsJson));
    assert.equal(gpu.config.device, 'webgpu');
    assert.equal(gpu.environment.webgpu.architecture, 'swiftshader');
    assert.deepEqual(gpu.seeds, [42, 43]);
    assert.deepEqual(gpu.trainings.map((p) => [p.name, p.seed, p.status]), [['baseline', 42, 'done'], ['baseline', 43, 'done']]);
    assert.equal(gpu.trainings[0].eval_loss, before[0].eval_loss, 'the stored training is taken as it was');
    assert.deepEqual(gpu.aggregates.placements[0].metrics.eval_loss.values, gpu.trainings.map((p) => p.eval_loss));
    assert.equal(await page.locator('.dl-adapter').count(), 2, 'both adapters downloadable');
    const [dlJson] = await Promise.all([page.waitForEvent('download'), page.click('#dl-json')]);
    assert.equal(JSON.parse(fs.readFileSync(await dlJson.path(), 'utf8')).config.device, 'webgpu');
    const gpuAdapter = await downloadAdapter(page);

    // The same experiment on the CPU: losses, eval losses and the adapter agree.
    // (the reload reset the placement boxes to the page's default; the resume ran the stored run's)
    await choosePlacements(page, ['baseline']);
    await page.selectOption('#device', 'cpu');
    await runToEnd(page, 60000);
    assert.deepEqual(await page.evaluate(() => window.__lab.state.errors), []);
    const cpu = JSON.parse(await page.evaluate(() => window.__lab.state.resultsJson));
    assert.equal(cpu.config.device, 'cpu');
    assert.deepEqual(cpu.trainings.map((p) => [p.name, p.seed]), gpu.trainings.map((p) => [p.name, p.seed]));
    gpu.trainings.forEach((g, i) => {
      const c = cpu.trainings[i];
      t.diagnostic(`seed ${g.seed}: train losses gpu ${JSON.stringify(g.steps.loss)} cpu ${JSON.stringify(c.steps.loss)}; eval gpu ${g.eval_loss} cpu ${c.eval_loss}`);
      assert.equal(g.steps.loss.length, c.steps.loss.length);
      g.steps.loss.forEach((l, k) => assert.ok(rel(l, c.steps.loss[k]) < 1e-3, `seed ${g.seed} step ${k}: gpu ${l} cpu ${c.steps.loss[k]}`));
      assert.ok(rel(g.eval_loss, c.eval_loss) < 1e-3, `seed ${g.seed} eval: gpu ${g.eval_loss} cpu ${c.eval_loss}`);
    });
    const cpuAdapter = await downloadAdapter(page);
    assert.deepEqual(Object.keys(gpuAdapter).sort(), Object.keys(cpuAdapter).sort());
    // AdamW moves a parameter by about lr per step whatever the size of its gradient, so
    // where a gradient is tiny its rounding difference between the devices (relative to
    // the gradient, large) shows in the update: those parameters differ by up to 2 lr per
    // step (measured: 2 of 131,072 above 1e-5 of the largest, max 3.7e-6, with lr 2e-4
    // and 3 steps). The rest agree closely.
    const lr = gpu.config.lr, steps = gpu.trainings[0].steps.loss.length;
    let d = 0, m = 0, moved = 0, off = 0, n = 0;
    for (const k of Object.keys(cpuAdapter)) m = Math.max(m, ...cpuAdapter[k].map(Math.abs));
    for (const k of Object.keys(cpuAdapter)) {
      const a = gpuAdapter[k], b = cpuAdapter[k];
      assert.equal(a.length, b.length, k);
      for (let i = 0; i < b.length; i++) {
        const e = Math.abs(a[i] - b[i]);
        d = Math.max(d, e);
        if (e > 1e-5 * m) off++;
      }
      n += b.length;
      if (/lora_B/.test(k)) moved += a.filter((v) => v !== 0).length;
    }
    t.diagnostic(`adapter: max |gpu - cpu| ${d} (2 lr steps = ${2 * lr * steps}), max |cpu| ${m}, ${off} of ${n} differ by more than 1e-5 max`);
    assert.ok(d <= 2 * lr * steps * 1.01, `adapter gpu vs cpu: max difference ${d}`);
    assert.ok(off <= n * 1e-3, `adapter gpu vs cpu: ${off} of ${n} parameters differ by more than 1e-5 of the largest`);
    assert.ok(moved > 0, 'training on the GPU moved lora_B from zero');
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});
