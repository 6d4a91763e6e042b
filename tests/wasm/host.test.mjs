// Hosted training through the wasm exports (docs/WASM_API.md "Hosted training"), with
// web/bridge.js as the worker uses it: lab_model_tensors describes the loaded model's
// tensors where they live; the hosted loop on the WebGPU engine (web/gpu/, on Dawn's
// SwiftShader from the npm `webgpu` package when it can start) matches a CPU run of the
// same experiment (compute f32) to 1e-3 relative; protocol misuse gets a message.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import path from 'node:path';

const require = createRequire(import.meta.url);
const wasmDir = path.resolve(process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const fixture = 'tests/fixtures/tiny-gpt2';
globalThis.self = globalThis;
vm.runInThisContext(readFileSync('web/bridge.js', 'utf8'), { filename: 'web/bridge.js' });

let M = null;
after(() => { if (M && M.PThread) M.PThread.terminateAllThreads(); });

async function labWithTinyModel() {
  M = await require(path.join(wasmDir, 'loralab_st.js'))({
    wasmBinary: readFileSync(path.join(wasmDir, 'loralab_st.wasm')), locateFile: (f) => path.join(wasmDir, f) });
  const lab = self.LabBridge(M);
  lab.init(1);
  const heapStr = (s) => { const b = Buffer.from(s + '\0', 'utf8'); const p = M._malloc(b.length); M.HEAPU8.set(b, p); return p; };
  const st = readFileSync(path.join(fixture, 'model.safetensors'));
  const ck = M._malloc(st.length); M.HEAPU8.set(st, ck);
  const s = ['config.json', 'vocab.json', 'merges.txt'].map((f) => heapStr(readFileSync(path.join(fixture, f), 'utf8')));
  const rc = M.ccall('lab_convert_hf', 'number', ['number', 'number', 'number', 'number', 'number', 'string'],
    [s[0], ck, st.length, s[1], s[2], 'q8_0']);
  assert.equal(rc, 0, lab.lastError());
  const p = M.ccall('lab_buffer_ptr', 'number') >>> 0, n = M.ccall('lab_buffer_size', 'number') >>> 0;
  lab.loadModel(M.HEAPU8.slice(p, p + n));
  lab.setData(readFileSync('data/alpaca_train.json', 'utf8'), readFileSync('data/alpaca_eval.json', 'utf8'));
  return lab;
}

const experiment = { n_train: 4, n_eval: 2, max_len: 32, epochs: 1, lr: 0.005, r: 4, alpha: 8, seed: 5,
                     compute: 'f32', placements: ['baseline'] };

async function gpuOrNull() {
  try {
    // Dawn finds SwiftShader's Vulkan driver through this (Chromium ships it).
    process.env.VK_ICD_FILENAMES ||= '/usr/lib/chromium/vk_swiftshader_icd.json';
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const engine = await import('../../web/gpu/engine.js');
    // Dawn's gpu object must outlive the device: once collected, Dawn aborts
    // (std::system_error) in a later callback. Kept in a global for the process.
    globalThis.lplGpu = create([]);
    return { engine, ...(await engine.requestGpuDevice(globalThis.lplGpu)) };
  } catch (e) {
    return { error: String(e.message || e) };
  }
}

test('lab_model_tensors: shapes and bytes of the loaded model', async () => {
  const lab = await labWithTinyModel();
  const info = lab.modelInfo();
  const { config, tensors } = lab.modelTensors();
  assert.equal(config.n_layer, info.n_layer);
  assert.equal(config.n_embd, info.n_embd);
  const C = config.n_embd;
  assert.equal(tensors.wte.type, 'q8_0');
  assert.equal(tensors.wte.rows, config.n_vocab);
  assert.equal(tensors.wte.data.byteLength, config.n_vocab * (C / 32) * 34);
  assert.equal(tensors.wpe.length, config.n_ctx * C);
  assert.equal(tensors.blocks.length, config.n_layer);
  assert.deepEqual(tensors.blocks[0].w.map((m) => [m.rows, m.cols]), [[3 * C, C], [C, C], [4 * C, C], [C, 4 * C]]);
  assert.equal(tensors.blocks[1].b[2].length, 4 * C);
  assert.ok(tensors.lnf_w.every(Number.isFinite));
});

test('hosted protocol: misuse is refused with a message', async () => {
  const lab = await labWithTinyModel();
  lab.ablateStart({ ...experiment, device: 'webgpu' });
  assert.throws(() => lab.hostRecord(1, 1, 10), /no step is pending/);
  assert.equal(lab.hostNext(), 1);
  const s = lab.hostStep();
  assert.equal(s.first_step, true);
  assert.equal(s.examples.length, 1);
  assert.equal(s.lora.params.length, s.lora.n_params);
  assert.match(s.examples[0].base_key, /^0x[0-9a-f]{16}$/);
  assert.throws(() => lab.hostNext(), /not recorded/);
  assert.throws(() => lab.hostSetAdapters(new Float32Array(3)), /3 adapter params given/);
  assert.throws(() => lab.setDeviceInfo('x'), /not a JSON object/);
  assert.throws(() => lab.ablateStart({ ...experiment, device: 'gpu' }), /"device" must be "cpu" or "webgpu"/);
});

test('hosted loop on the WebGPU engine matches the CPU (compute f32)', { timeout: 240000 }, async (t) => {
  // Dawn needs a Vulkan loader: scripts/test puts Chromium's (libvulkan.so.1 in
  // /usr/lib/chromium) on LD_LIBRARY_PATH. Without one there is no adapter: skipped, saying so.
  const g = await gpuOrNull();
  if (g.error) return t.skip(`no WebGPU in Node (Dawn needs libvulkan.so.1: LD_LIBRARY_PATH=/usr/lib/chromium): ${g.error}`);
  const lab = await labWithTinyModel();
  lab.ablateStart({ ...experiment, device: 'cpu' });
  while (lab.ablateStep()) lab.events();
  const cpu = JSON.parse(lab.resultsJson());

  lab.ablateStart({ ...experiment, device: 'webgpu' });
  lab.setDeviceInfo({ vendor: g.adapterInfo.vendor, architecture: g.adapterInfo.architecture, limits: g.limits });
  let tr = null;
  while (lab.hostNext()) {
    const s = lab.hostStep();
    if (s.first_step) {
      if (tr) tr.destroy();
      const m = lab.modelTensors();
      tr = await g.engine.createGpuTrainer(g.device, { config: m.config, tensors: m.tensors,
        lora: { r: s.lora.r, scaling: s.lora.scaling, dropout: s.lora.dropout, modules: s.lora.modules, params: s.lora.params },
        train: { maxT: 32, maxBatch: 1, gradClip: s.grad_clip, adamw: { beta1: s.adamw.beta1, beta2: s.adamw.beta2,
          eps: s.adamw.eps, weightDecay: s.adamw.weight_decay }, dropout: s.base_dropout,
          baseSeed: BigInt(s.seed), loraSeed: BigInt(s.lora.seed) } });
    }
    const r = await tr.step(s.examples.map((e) => ({ tokens: e.tokens, targets: e.targets, mask: e.mask })), s.lr);
    if (lab.hostRecord(r.loss, r.gradNorm, s.examples.reduce((a, e) => a + e.T, 0)))
      lab.hostSetAdapters(await tr.readAdapters());
  }
  tr.destroy();
  const gpu = JSON.parse(lab.resultsJson());
  assert.equal(gpu.config.device, 'webgpu');
  assert.equal(gpu.environment.webgpu.architecture, g.adapterInfo.architecture);
  const gl = gpu.trainings[0].steps.loss, cl = cpu.trainings[0].steps.loss;
  assert.equal(gl.length, cl.length);
  gl.forEach((v, k) => assert.ok(Math.abs(v - cl[k]) <= 1e-3 * Math.abs(cl[k]), `loss ${k}: gpu ${v}, cpu ${cl[k]}`));
  const ge = gpu.trainings[0].eval_loss, ce = cpu.trainings[0].eval_loss;
  assert.ok(Math.abs(ge - ce) <= 1e-3 * Math.abs(ce), `eval loss: gpu ${ge}, cpu ${ce}`);
});

test('hosted evals: protocol misuse is refused with a message', async () => {
  const lab = await labWithTinyModel();
  lab.ablateStart({ ...experiment, device: 'webgpu' });
  lab.hostEvals(true);
  assert.throws(() => lab.hostRecordEval(new Float32Array(1)), /no eval pass is pending/);
  assert.equal(lab.hostNext(), 2, 'the base model\'s eval is handed out first');
  const s = lab.hostStep();
  assert.equal(s.kind, 'eval');
  assert.equal(s.training, -1);
  assert.equal(s.lora, null);
  assert.equal(s.examples.length, experiment.n_eval);
  const scored = s.examples.reduce((a, e) => a + e.mask.reduce((x, m) => x + (m ? 1 : 0), 0), 0);
  assert.equal(s.n_scored, scored);
  assert.throws(() => lab.hostNext(), /lpl_run_host_record_eval/);
  assert.throws(() => lab.hostRecordEval(new Float32Array(scored + 1)), new RegExp(`${scored + 1} eval token losses given`));
});

test('hosted evals on the WebGPU engine: every eval point matches the CPU, adapters back once', { timeout: 240000 }, async (t) => {
  const g = await gpuOrNull();
  if (g.error) return t.skip(`no WebGPU in Node (Dawn needs libvulkan.so.1: LD_LIBRARY_PATH=/usr/lib/chromium): ${g.error}`);
  const lab = await labWithTinyModel();
  // two epochs of one step (a step takes seconds on SwiftShader): the base model's eval,
  // one after each epoch; the first is mid-training (no adapters asked), the last ends it
  const exp = { ...experiment, n_train: 1, epochs: 2, placements: ['attn-exact'] };
  lab.ablateStart({ ...exp, device: 'cpu' });
  while (lab.ablateStep()) lab.events();
  const cpu = JSON.parse(lab.resultsJson());

  lab.ablateStart({ ...exp, device: 'webgpu' });
  lab.hostEvals(true);
  const m = lab.modelTensors();
  const model = await g.engine.createGpuModel(g.device, m.config, m.tensors);
  const batch = (s) => s.examples.map((e) => ({ tokens: e.tokens, targets: e.targets, mask: e.mask }));
  let tr = null, training = -1, evals = 0, writeBacks = 0, steps = 0;
  const events = [];
  for (let rc; (rc = lab.hostNext());) {
    events.push(...lab.events());
    const s = lab.hostStep();
    if (rc === 2) {
      evals++;
      let et = tr;
      if (!tr || s.training !== training)
        et = await g.engine.createGpuTrainer(g.device, { model, train: { maxT: 32, maxBatch: 1 },
          lora: s.lora ? { r: s.lora.r, scaling: s.lora.scaling, dropout: 0, modules: s.lora.modules, params: s.lora.params }
                       : { r: 1, scaling: 0, dropout: 0, modules: [], params: new Float32Array(0) } });
      const r = await et.evalTokens(batch(s));
      if (et !== tr) et.destroy();
      assert.equal(r.nll.length, s.n_scored);
      if (lab.hostRecordEval(r.nll)) { writeBacks++; lab.hostSetAdapters(await tr.readAdapters()); }
      continue;
    }
    if (s.first_step) {
      if (tr) tr.destroy();
      tr = await g.engine.createGpuTrainer(g.device, { model,
        lora: { r: s.lora.r, scaling: s.lora.scaling, dropout: s.lora.dropout, modules: s.lora.modules, params: s.lora.params },
        train: { maxT: 32, maxBatch: 1, gradClip: s.grad_clip, adamw: { beta1: s.adamw.beta1, beta2: s.adamw.beta2,
          eps: s.adamw.eps, weightDecay: s.adamw.weight_decay }, dropout: s.base_dropout,
          baseSeed: BigInt(s.seed), loraSeed: BigInt(s.lora.seed) } });
      training = s.training;
    }
    steps++;
    const r = await tr.step(batch(s), s.lr);
    assert.equal(lab.hostRecord(r.loss, r.gradNorm, s.examples.reduce((a, e) => a + e.T, 0)), false,
      'with hosted evals a step never asks for the adapters');
  }
  events.push(...lab.events());
  tr.destroy();
  model.destroy();
  const gpu = JSON.parse(lab.resultsJson());
  assert.equal(evals, 1 + 2, 'the base model\'s eval, then one per epoch');
  assert.equal(writeBacks, 1, 'adapters come back once, at the training\'s end');
  assert.equal(steps, 2);
  assert.equal(gpu.environment.eval_device, 'webgpu');
  const evs = events.filter((e) => e.type === 'eval');
  assert.ok(evs.length >= 3 && evs.every((e) => e.device === 'webgpu'), JSON.stringify(evs.map((e) => e.device)));
  const points = [[gpu.base_eval, cpu.base_eval]];
  gpu.trainings.forEach((p, i) => p.evals.forEach((e, k) => points.push([e, cpu.trainings[i].evals[k]])));
  assert.equal(points.length, 1 + 3);
  const rel = (a, b) => Math.abs(a - b) / Math.abs(b);
  for (const [ge, ce] of points) {
    assert.equal(ge.device, 'webgpu');
    assert.equal(ge.n_tokens, ce.n_tokens);
    assert.equal(ge.n_samples, ce.n_samples);
    for (const key of ['eval_loss', 'perplexity', 'mean_sample_perplexity', 'trainer_eval_loss'])
      assert.ok(rel(ge[key], ce[key]) < 1e-4, `epoch ${ge.epoch} ${key}: gpu ${ge[key]}, cpu ${ce[key]}`);
    for (const role of Object.keys(ce.roles))
      assert.equal(ge.roles[role].n_tokens, ce.roles[role].n_tokens, `role ${role} tokens`);
  }
  // the adapters written back at the end are the GPU's trained ones: the final eval moved
  assert.notEqual(gpu.trainings[0].eval_loss, gpu.base_eval.eval_loss);
  t.diagnostic(`eval losses gpu ${JSON.stringify(points.map(([e]) => e.eval_loss))} cpu ${JSON.stringify(points.map(([, e]) => e.eval_loss))}`);
});
