// The WebGPU engine's whole training step (web/gpu/engine.js) in real headless Chromium
// on SwiftShader (a CPU emulator: correctness only; ~7 s to compile the kernels per
// trainer and ~1 s per short step there, so two small cases), against the C core on tiny random
// GPT-2s: `build/gpu_ref step` (tests/support/gpu_ref.c) runs the same batches through
// lpl_gpt2_forward/backward, lpl_clip_grad_norm and lpl_adamw_step and writes the model,
// the batches and its losses, first-step gradients, final adapters and an eval loss; the
// page builds the engine's inputs from the same bytes (as tests/gpu/support.mjs's
// stepInputs) and runs the same steps. The Node twin (tests/gpu/step.test.mjs, Dawn from
// npm `webgpu`) checks the same reference without a browser; this one needs only Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { open } from './harness.mjs';
import { cRef, BUILD, relErr } from '../gpu/support.mjs';
import { withStepInputs } from '../support/gpu_ref_inputs.mjs';

const GPU_REF = `${BUILD}/gpu_ref`;
const SKIP = !fs.existsSync(GPU_REF) ? `${GPU_REF} is missing (cmake --build build --target gpu_ref)`
  : !fs.existsSync('/usr/lib/chromium/libvk_swiftshader.so') ? 'Chromium has no SwiftShader Vulkan driver' : false;

let h = null;
before(async () => {
  if (SKIP) return;
  h = await open({ webgpu: true });
  await h.page.goto(`${h.url}gpu/API.md`); // any page of our server: the 127.0.0.1 origin
});
after(async () => { if (h) await h.close(); });

// In the page: the engine on the gpu_ref sections (base64), `steps` steps, then eval.
async function pageSteps({ meta, secs }, stepInputs) {
  const dec = (b) => Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
  const sec = (n) => {
    const s = secs[n];
    if (!s) throw new Error(`no section ${n}`);
    const u = dec(s.b64);
    return s.type === 'f32' ? new Float32Array(u.buffer) : s.type === 'i32' ? new Int32Array(u.buffer) : u;
  };
  const { config: c, tensors, lora, train, batches } = stepInputs({ ...meta, sections: secs }, sec,
    { maxT: meta.T, maxBatch: meta.NB, profile: !!meta.profile });
  const { requestGpuDevice, createGpuTrainer } = await import('/gpu/engine.js');
  const { device } = await requestGpuDevice(navigator.gpu);
  const tr = await createGpuTrainer(device, { config: c, tensors, lora, train });
  const losses = [], norms = [];
  let grads = null;
  for (let s = 0; s < batches.length; s++) {
    const r = await tr.step(batches[s], meta.lr);
    losses.push(r.loss); norms.push(r.gradNorm);
    if (s === 0) grads = Array.from(await tr.grads());
  }
  const params = Array.from(await tr.readAdapters());
  const profile = meta.profile ? tr.profile() : null; // before the eval: the steps only
  const evalLoss = (await tr.evalLoss(batches[0])).loss;
  tr.destroy();
  device.destroy();
  return { losses, norms, grads, params, evalLoss, profile };
}

async function runCase(args, extra = {}) {
  const ref = cRef('step', args);
  const secs = {};
  for (const [k, s] of Object.entries(ref.meta.sections)) {
    const a = ref.sec(k);
    secs[k] = { type: s.type, b64: Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64') };
  }
  const gpu = await h.page.evaluate(withStepInputs(pageSteps), { meta: { ...ref.meta, ...extra, sections: undefined }, secs });
  return { gpu, ref };
}
const rel = (a, b) => Math.abs(a - b) / Math.abs(b);

// args: L C H CTX V T NB STEPS LR R ALPHA LORA_P EMBD_P ATTN_P RESID_P CLIP SEED
test('steps with base and LoRA dropout and clipping match the C core (L 2, C 96, H 3, V 301, T 9/8/7)', { skip: SKIP, timeout: 120000 }, async () => {
  const { gpu, ref } = await runCase([2, 96, 3, 16, 301, 9, 2, 3, 0.01, 4, 8, 0.1, 0.1, 0.1, 0.1, 0.5, 5]);
  const cl = ref.sec('losses'), cn = ref.sec('norms');
  gpu.losses.forEach((l, s) => assert.ok(rel(l, cl[s]) < 1e-5, `step ${s} loss: gpu ${l}, c ${cl[s]}`));
  gpu.norms.forEach((n, s) => assert.ok(rel(n, cn[s]) < 1e-4, `step ${s} grad norm: gpu ${n}, c ${cn[s]}`));
  assert.ok(cn[0] > 0.5, `the first step is clipped (norm ${cn[0]} > 0.5)`);
  const g = relErr(gpu.grads, ref.sec('grads1'));
  assert.ok(g < 1e-5, `first step's clipped adapter gradients: rel ${g}`);
  // AdamW's first steps move each parameter by about lr * sign(g): tiny gradients
  // amplify f32 differences, hence the looser bound on the parameters.
  const p = relErr(gpu.params, ref.sec('params_final'));
  assert.ok(p < 1e-3, `adapters after 3 steps: rel ${p}`);
  assert.ok(rel(gpu.evalLoss, ref.sec('eval')[0]) < 1e-5, `eval loss gpu ${gpu.evalLoss}, c ${ref.sec('eval')[0]}`);
});

// Also with train.profile (timestamp queries, one pass per dispatch; bench/gpu_bench.mjs):
// the same numbers, and the profile's product FLOPs are the shapes' own count.
test('T = 1, no dropout, no clipping (profiled)', { skip: SKIP, timeout: 120000 }, async () => {
  const { gpu, ref } = await runCase([1, 64, 2, 8, 97, 1, 1, 1, 0.001, 2, 4, 0, 0, 0, 0, 0, 3], { profile: true });
  assert.ok(rel(gpu.losses[0], ref.sec('losses')[0]) < 1e-5, `loss gpu ${gpu.losses[0]}, c ${ref.sec('losses')[0]}`);
  const g = relErr(gpu.grads, ref.sec('grads1'));
  assert.ok(g < 1e-5, `gradients: rel ${g}`);
  // L 1, C 64, T 1 with its one row scored, V 97: the four sites hold 12 C^2 weights; the
  // LM head V C; forward and input gradient each 2 FLOPs per weight and token.
  const C = 64, V = 97, want = 2 * 12 * C * C + 2 * V * C;
  const by = Object.fromEntries(gpu.profile.map((k) => [k.kernel, k]));
  assert.equal(by['matmul, Q8_0 forward (X W^T)'].flops, want);
  assert.equal(by['matmul, Q8_0 input gradient (dY W)'].flops, want);
  assert.ok(gpu.profile.every((k) => k.dispatches > 0 && k.ns >= 0), JSON.stringify(gpu.profile));
  assert.ok(gpu.profile.reduce((a, k) => a + k.ns, 0) > 0, 'the timestamps measured some GPU time');
});
