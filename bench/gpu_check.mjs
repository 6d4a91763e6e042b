#!/usr/bin/env node
// The WebGPU engine (web/gpu/engine.js) against the C core on DialoGPT-shaped random
// checkpoints (issue 22, "Done when"), in headless Chromium on SwiftShader:
//
//   --shape small (default): DialoGPT-small's shape (12 layers, n_embd 768, 12 heads,
//     n_ctx 1024, 50,257 tokens), 2 training steps of 32 tokens (one example per step;
//     the second has 31 tokens, gpu_ref's lengths T - k % 3), the quick preset's
//     LoRA (r 16, alpha 32, baseline placement = all four sites) and dropouts (base 0.1
//     on embeddings, attention and residuals; LoRA 0.05), grad clip 1.0, lr 2e-4.
//   --shape large: DialoGPT-large's shape (36 layers, n_embd 1280, 20 heads), one step
//     of 16 tokens, on buffers sized for the quick preset (maxT = max_len 96, batch 1);
//     prints the step's time (emulation: SwiftShader runs on the CPU) and the bytes of
//     GPU buffers the trainer allocated (must be < 2 GB), or the limit the adapter lacks.
//
// Both shapes: `build/gpu_ref step` (tests/support/gpu_ref.c) makes the random Q8_0
// model and runs the same steps through lpl_gpt2_forward/backward, lpl_clip_grad_norm
// and lpl_adamw_step with the same dropout masks; the page fetches the same bytes and
// runs them through the engine. Printed: per-step losses (C, GPU, relative difference),
// grad norms, max |g_gpu - g_c| / max |g_c| over the first step's clipped adapter
// gradients, the same over the adapters after the last step (over the elements where
// AdamW's update is well conditioned, see paramsCheck; all elements are shown too), and
// PASS/FAIL against the tolerances below. Exit status 1 on FAIL.
//
//   node bench/gpu_check.mjs [--shape small|large] [--seed N] [--json FILE]
//
// Needs build/gpu_ref ($LPL_BUILD_DIR) and /usr/bin/chromium with SwiftShader's Vulkan
// driver. The model goes to a temporary directory (small: ~140 MB, large: ~860 MB) and is
// deleted at the end. The small check takes a few minutes, the large one ~10-20 minutes
// on the 2-core machine.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { open, REPO } from '../tests/browser/harness.mjs';
import { withStepInputs } from '../tests/support/gpu_ref_inputs.mjs';

// Tolerances (relative). Losses: issue 22's 1e-3. Gradients and adapters: max abs
// difference over max abs value; f32 sums in other orders through 12-36 layers.
const TOL = { loss: 1e-3, gradNorm: 1e-3, grads: 1e-3, params: 1e-3 };
// quick preset (src/lab/experiment.c lpl_experiment_quick + defaults): r 16, alpha 32,
// lr 2e-4, batch 1, max_len 96; base dropout 0.1; LoRA dropout 0.05 (PEFT's usual)
const SHAPES = {
  small: { L: 12, C: 768, H: 12, T: 32, steps: 2 },
  large: { L: 36, C: 1280, H: 20, T: 16, steps: 1 },
};
const QUICK = { maxLen: 96, batch: 1, r: 16, alpha: 32, lr: 2e-4, loraP: 0.05, baseP: 0.1, clip: 1.0 };
const BUILD = path.resolve(REPO, process.env.LPL_BUILD_DIR || 'build');
const log = (m) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

function args(argv) {
  const o = { shape: 'small', seed: 1, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = () => { if (i + 1 >= argv.length) fail(`${a} needs a value`); return argv[++i]; };
    if (a === '--shape') o.shape = next();
    else if (a === '--seed') o.seed = Number(next());
    else if (a === '--json') o.json = path.resolve(next());
    else if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 28).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      process.exit(0);
    } else fail(`unknown option ${a} (see --help)`);
  }
  if (!SHAPES[o.shape]) fail(`--shape must be small or large, got '${o.shape}'`);
  if (!Number.isInteger(o.seed) || o.seed < 0) fail('--seed needs an integer >= 0');
  return o;
}
function fail(m) { console.error(`gpu_check: ${m}`); process.exit(2); }

/** Runs in the page: fetches gpu_ref's sections, builds the engine's inputs, runs the steps. */
async function pageRun({ meta, binUrl, maxT, maxBatch }, stepInputs) {
  const bin = await (await fetch(binUrl)).arrayBuffer();
  const S = meta.sections;
  const sec = (n) => {
    const s = S[n];
    if (!s) throw new Error(`no section ${n}`);
    return s.type === 'f32' ? new Float32Array(bin, s.offset, s.bytes / 4)
      : s.type === 'i32' ? new Int32Array(bin, s.offset, s.bytes / 4) : new Uint8Array(bin, s.offset, s.bytes);
  };
  const { config: c, tensors, lora, train, batches } = stepInputs(meta, sec, { maxT, maxBatch });
  // millions of floats cross to Node as base64 (a JSON array of numbers takes minutes)
  const b64 = (f) => {
    const u = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    let bin = '';
    for (let i = 0; i < u.length; i += 0x8000) bin += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
    return btoa(bin);
  };
  const { requestGpuDevice, createGpuTrainer } = await import('/gpu/engine.js');
  const g = await requestGpuDevice(navigator.gpu);
  const out = { adapter: g.adapterInfo, limits: g.limits, losses: [], norms: [], stepMs: [] };
  let t0 = performance.now();
  const tr = await createGpuTrainer(g.device, { config: c, tensors, lora, train });
  out.uploadMs = performance.now() - t0;
  out.bufferBytes = tr.bufferBytes;
  out.modelBytes = bin.byteLength;
  for (let s = 0; s < batches.length; s++) {
    t0 = performance.now();
    const r = await tr.step(batches[s], meta.lr);
    out.stepMs.push(performance.now() - t0);
    out.losses.push(r.loss); out.norms.push(r.gradNorm);
    if (s === 0) out.grads = b64(await tr.grads());
  }
  out.params = b64(await tr.readAdapters());
  out.bufferBytes = tr.bufferBytes; // with the uniform arena of the step
  tr.destroy();
  g.device.destroy();
  return out;
}

const relErr = (a, b) => {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / (m || 1);
};
const rel = (a, b) => Math.abs(a - b) / Math.abs(b);
// AdamW's first update of an element is lr * g / (|g| + eps) (eps 1e-8, src/model/optim.c):
// its slope in g is lr * eps / (|g| + eps)^2, up to lr / (4 eps) = 5,000 x the gradient's
// difference where |g| is near eps. Where a first-step gradient is that small, CPU and GPU
// adapters may differ by up to lr although the gradients agree; the adapter check counts
// the elements whose first-step |g| clears 100 eps (slope <= 2) and names the largest
// difference of all, with its gradient, so the reason can be read off the output.
const ADAM_EPS = 1e-8, CONDITIONED_G = 100 * ADAM_EPS;
function paramsCheck(gpuP, cP, g1) {
  if (g1.length !== cP.length) throw new Error(`gradients (${g1.length}) and adapters (${cP.length}) differ in length`);
  let m = 0, dAll = 0, at = 0, dCond = 0, skipped = 0;
  for (let i = 0; i < cP.length; i++) {
    const d = Math.abs(gpuP[i] - cP[i]);
    m = Math.max(m, Math.abs(cP[i]));
    if (d > dAll) { dAll = d; at = i; }
    if (Math.abs(g1[i]) >= CONDITIONED_G) dCond = Math.max(dCond, d); else skipped++;
  }
  m = m || 1;
  return { all: dAll / m, conditioned: dCond / m, skipped, worst: { index: at, c: cP[at], gpu: gpuP[at], g1: g1[at] } };
}
const GiB = (b) => (b / 2 ** 30).toFixed(3);

async function main() {
  const o = args(process.argv.slice(2));
  const sh = SHAPES[o.shape];
  const exe = path.join(BUILD, 'gpu_ref');
  if (!fs.existsSync(exe)) fail(`${exe} is missing (cmake --build build --target gpu_ref)`);
  if (!fs.existsSync('/usr/lib/chromium/libvk_swiftshader.so')) fail('Chromium has no SwiftShader Vulkan driver here');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-gpucheck-'));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  process.on('exit', cleanup);
  // gpu_ref step OUT L C H CTX V T NB STEPS LR R ALPHA LORA_P EMBD_P ATTN_P RESID_P CLIP SEED
  const refArgs = [sh.L, sh.C, sh.H, 1024, 50257, sh.T, 1, sh.steps, QUICK.lr, QUICK.r, QUICK.alpha, QUICK.loraP,
    QUICK.baseP, QUICK.baseP, QUICK.baseP, QUICK.clip, o.seed];
  log(`C reference: gpu_ref step ${refArgs.join(' ')} (random Q8_0 model of DialoGPT-${o.shape}'s shape)`);
  let t0 = Date.now();
  const meta = JSON.parse(execFileSync(exe, ['step', path.join(dir, 'ref'), ...refArgs.map(String)],
    { encoding: 'utf8', maxBuffer: 1 << 28 }));
  const cSeconds = (Date.now() - t0) / 1000;
  const bin = fs.readFileSync(path.join(dir, 'ref.bin'));
  const cs = (n) => { const s = meta.sections[n]; return new Float32Array(bin.buffer.slice(bin.byteOffset + s.offset, bin.byteOffset + s.offset + s.bytes)); };
  const ls = meta.sections.lens;
  const lens = new Int32Array(bin.buffer.slice(bin.byteOffset + ls.offset, bin.byteOffset + ls.offset + ls.bytes));
  const cLoss = cs('losses'), cNorm = cs('norms'), cGrads = cs('grads1'), cParams = cs('params_final');
  log(`C reference done in ${cSeconds.toFixed(0)} s; model + batches ${(bin.length / 1e6).toFixed(0)} MB; ` +
      `${meta.modules.length} LoRA modules, ${cGrads.length} adapter parameters`);

  const h = await open({ webgpu: true, modelsDir: dir });
  let gpu;
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  try {
    await h.page.goto(`${h.url}gpu/API.md`); // any page of our server: the 127.0.0.1 origin (secure context)
    log('GPU engine in Chromium (SwiftShader): upload and steps ...');
    const { sections, ...rest } = meta;
    const small = Object.fromEntries(Object.entries(sections).filter(([k]) => !/^(losses|norms|grads1|params_final|eval)$/.test(k)));
    // the large shape gets buffers for the quick preset (max_len 96, batch 1)
    const maxT = o.shape === 'large' ? QUICK.maxLen : meta.T;
    gpu = await h.page.evaluate(withStepInputs(pageRun), { meta: { ...rest, sections: small }, binUrl: `${h.url}models/ref.bin`,
      maxT, maxBatch: QUICK.batch });
  } catch (e) {
    const m = String(e.message || e).split('\n')[0];
    console.log(`\nDialoGPT-${o.shape} shape on the GPU engine under SwiftShader: did not run: ${m}`);
    console.log('RESULT: FAIL (the message above names the limit or error)');
    await h.close();
    process.exit(1);
  }
  await h.close();
  const f32 = (b) => { const u = Buffer.from(b, 'base64'); return new Float32Array(u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength)); };
  gpu.grads = f32(gpu.grads);
  gpu.params = f32(gpu.params);

  const lines = [];
  const p = (s) => { lines.push(s); console.log(s); };
  const a = gpu.adapter;
  p(`\n## DialoGPT-${o.shape} shape (random Q8_0 weights, seed ${o.seed}): GPU engine vs C core`);
  p(`commit ${commit}; ${os.cpus()[0].model}, ${os.cpus().length} vCPU; adapter ${a.vendor} ${a.architecture}` +
    `${a.architecture === 'swiftshader' ? ' (SwiftShader: a CPU emulator; times are emulation, not a GPU speed)' : ''}`);
  p(`shape: ${sh.L} layers, n_embd ${sh.C}, ${sh.H} heads, n_vocab 50257; ${sh.steps} step(s) of ${[...lens].join(', ')} tokens; ` +
    `LoRA r ${meta.r} scaling ${meta.scaling} on ${meta.modules.length} modules; dropout base ${QUICK.baseP}, LoRA ${QUICK.loraP}; clip ${QUICK.clip}`);
  const ok = [];
  for (let s = 0; s < gpu.losses.length; s++) {
    const rl = rel(gpu.losses[s], cLoss[s]), rn = rel(gpu.norms[s], cNorm[s]);
    ok.push(rl < TOL.loss, rn < TOL.gradNorm);
    p(`step ${s + 1}: loss C ${cLoss[s].toFixed(6)} GPU ${gpu.losses[s].toFixed(6)} rel ${rl.toExponential(2)} (tol ${TOL.loss}); ` +
      `grad norm C ${cNorm[s].toFixed(6)} GPU ${gpu.norms[s].toFixed(6)} rel ${rn.toExponential(2)} (tol ${TOL.gradNorm}); ` +
      `GPU step ${(gpu.stepMs[s] / 1000).toFixed(1)} s (emulation)`);
  }
  const rg = relErr(gpu.grads, cGrads), pc = paramsCheck(gpu.params, cParams, cGrads), rp = pc.conditioned;
  ok.push(rg < TOL.grads, rp < TOL.params);
  p(`first step's clipped adapter gradients: max|gpu - c| / max|c| = ${rg.toExponential(2)} (tol ${TOL.grads})`);
  p(`adapters after step ${gpu.losses.length}, elements whose first-step |g| >= ${CONDITIONED_G} (100 x AdamW's eps): ` +
    `max|gpu - c| / max|c| = ${rp.toExponential(2)} (tol ${TOL.params}); ${pc.skipped} of ${cParams.length} elements below`);
  p(`adapters after step ${gpu.losses.length}, all elements: max|gpu - c| / max|c| = ${pc.all.toExponential(2)}, largest at ` +
    `element ${pc.worst.index}: C ${pc.worst.c.toExponential(4)}, GPU ${pc.worst.gpu.toExponential(4)}, its first-step |g| ` +
    `${Math.abs(pc.worst.g1).toExponential(2)} (AdamW's first update lr g / (|g| + eps) has slope up to lr / (4 eps) near |g| = eps)`);
  const limitBytes = 2 * 2 ** 30;
  p(`GPU buffers allocated by the trainer: ${gpu.bufferBytes} bytes (${GiB(gpu.bufferBytes)} GiB; maxT ${o.shape === 'large' ? QUICK.maxLen : meta.T}, ` +
    `batch ${QUICK.batch}); model + batches file ${gpu.modelBytes} bytes; upload ${(gpu.uploadMs / 1000).toFixed(1)} s; C reference ${cSeconds.toFixed(0)} s`);
  if (o.shape === 'large') {
    ok.push(gpu.bufferBytes < limitBytes);
    p(`quick preset on DialoGPT-large: ${GiB(gpu.bufferBytes)} GiB of GPU buffers ${gpu.bufferBytes < limitBytes ? '<' : '>='} 2 GiB; ` +
      `adapter limits maxBufferSize ${gpu.limits.maxBufferSize}, maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize}`);
  }
  const pass = ok.every(Boolean);
  p(`RESULT: ${pass ? 'PASS' : 'FAIL'}`);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ shape: o.shape, seed: o.seed, commit,
    machine: `${os.cpus()[0].model}, ${os.cpus().length} vCPU`, date: new Date().toISOString(), adapter: a, limits: gpu.limits,
    c: { losses: [...cLoss], norms: [...cNorm], seconds: cSeconds }, gpu: { losses: gpu.losses, norms: gpu.norms, stepMs: gpu.stepMs,
      uploadMs: gpu.uploadMs, bufferBytes: gpu.bufferBytes }, rel: { grads: rg, params: rp, params_all: pc.all, params_below_100eps: pc.skipped, params_worst: pc.worst }, tol: TOL, pass, lines }, null, 2) + '\n');
  process.exitCode = pass ? 0 : 1;
}

main().catch((e) => { console.error(`gpu_check: ${e.stack || e.message}`); process.exit(1); });
