#!/usr/bin/env node
// Training speed on the CPU (wasm) and on the WebGPU engine, side by side in one page
// (docs/BENCHMARKS.md, "WebGPU: measured"; `bench/report --only webgpu` runs this), and
// the engine's per-kernel GFLOP/s from GPU timestamp queries.
//
// 1. Tokens/s. One page of our server in headless Chromium (WebGPU on SwiftShader
//    unless the machine has a GPU) starts the lab's own worker (web/worker.js, threaded
//    wasm build: relaxed SIMD where it validates, as the page, when build-wasm has
//    loralab_rx; else SIMD128), loads the model (default: the bundled models/lab-small.q8_0.gguf) and
//    the bundled Alpaca data, and runs the quick preset cut to one placement (baseline)
//    and --steps steps, one seed, with device "cpu" (compute int8, the default, and
//    compute f32) and device "webgpu" (the engine computes in f32), the three runs in
//    a rotating order in each of --rounds rounds. A run's speed is its steady state:
//    the training tokens of steps 2..N over the time between the worker's step events
//    of step 1 and step N (so the GPU trainer's set-up, the kernels' compilation and
//    the upload, which the first step pays, is left out; the engine's own tokens/s,
//    which includes it, is kept in the JSON).
// 2. Per-kernel GFLOP/s. In the same page, a GpuTrainer with train.profile (one compute
//    pass per dispatch with `timestamp-query` writes) on a random Q8_0 model of the
//    same shape (build/gpu_ref step; speed does not depend on the weights' values)
//    runs --profile-steps steps of --profile-tokens tokens; the GPU time and the FLOPs
//    of the products (matmul: 2MNK; attention: the causal products) per kernel class.
//
// SwiftShader is a CPU emulator: its figures are emulation, never a GPU speed. The
// script names the adapter (vendor, architecture) and marks emulation in its output.
//
//   node bench/gpu_bench.mjs [--rounds 5] [--steps 4] [--profile-steps 2]
//                            [--profile-tokens 96] [--model FILE] [--json FILE]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { open, REPO, WASM_DIR } from '../tests/browser/harness.mjs';

const log = (m) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
function fail(m) { console.error(`gpu_bench: ${m}`); process.exit(2); }

function args(argv) {
  const o = { rounds: 5, steps: 4, profileSteps: 2, profileTokens: 96, model: path.join(REPO, 'models', 'lab-small.q8_0.gguf'), json: null };
  const int = (a, v, lo) => { const n = Number(v); if (!Number.isInteger(n) || n < lo) fail(`${a} needs an integer >= ${lo}`); return n; };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = () => { if (i + 1 >= argv.length) fail(`${a} needs a value`); return argv[++i]; };
    if (a === '--rounds') o.rounds = int(a, next(), 1);
    else if (a === '--steps') o.steps = int(a, next(), 2);
    else if (a === '--profile-steps') o.profileSteps = int(a, next(), 1);
    else if (a === '--profile-tokens') o.profileTokens = int(a, next(), 1);
    else if (a === '--model') o.model = path.resolve(next());
    else if (a === '--json') o.json = path.resolve(next());
    else if (a === '-h' || a === '--help') {
      console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 27).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      process.exit(0);
    } else fail(`unknown option ${a} (see --help)`);
  }
  if (!fs.existsSync(o.model)) fail(`no model ${o.model}`);
  return o;
}

// ---- in the page: the lab worker, driven by its own message protocol
async function pageStart({ modelUrl, wasm }) {
  const w = new Worker('/worker.js');
  const pending = new Map();
  let seq = 0;
  window.__bench = { w, steps: [], call: null };
  w.onmessage = (e) => {
    const m = e.data || {};
    if (m.type === 'events') {
      for (const ev of m.events) if (ev.type === 'step') window.__bench.steps.push({ t: performance.now(), step: ev.step, tps: ev.tokens_per_s });
      return;
    }
    if (m.id === undefined || !pending.has(m.id)) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.ok) p.ok(m.result); else p.err(new Error(m.error));
  };
  const call = (cmd, a = {}) => new Promise((ok, err) => { const id = ++seq; pending.set(id, { ok, err }); w.postMessage({ id, cmd, ...a }); });
  window.__bench.call = call;
  const init = await call('init', { wasmBase: '/build-wasm/', threads: navigator.hardwareConcurrency, wasm });
  const model = await call('loadModel', { source: { kind: 'url', url: modelUrl } });
  const text = async (u) => { const r = await fetch(u); if (!r.ok) throw new Error(`${u}: HTTP ${r.status}`); return r.text(); };
  await call('setData', { train: await text('/data/alpaca_train.json'), eval: await text('/data/alpaca_eval.json'),
    names: ['alpaca_train.json', 'alpaca_eval.json'] });
  window.__bench.quick = init.presets.quick;
  return { build: init.build, threads: init.threads, isolated: init.isolated, model: model.info, gpu: !!navigator.gpu };
}

async function pageRunOnce({ device, compute, steps }) {
  const b = window.__bench;
  const q = b.quick;
  const experiment = { ...q, device, compute, seeds: 1, max_steps: steps, n_eval: 1,
    placements: (q.placements || []).slice(0, 1) };
  b.steps = [];
  const t0 = performance.now();
  const r = await b.call('run', { experiment });
  const wall = performance.now() - t0;
  if (r.failed) throw new Error(`${device}/${compute}: ${r.failed}`);
  const doc = JSON.parse(r.resultsJson);
  const p = (doc.trainings || doc.placements)[0]; // results.json's trainings[] (placements[] before issue 25)
  const tokens = p.steps.tokens;
  const ev = b.steps;
  if (ev.length !== tokens.length || tokens.length < 2) throw new Error(`${device}: ${ev.length} step events for ${tokens.length} steps`);
  const steadyS = (ev[ev.length - 1].t - ev[0].t) / 1000;
  const steadyTokens = tokens.slice(1).reduce((a, x) => a + x, 0);
  return { device, compute, config_device: doc.config.device, steps: tokens.length, tokens, steady_tokens: steadyTokens,
    steady_s: steadyS, tokens_per_s: steadyTokens / steadyS, engine_tokens_per_s: p.tokens_per_s, wall_s: wall / 1000,
    first_loss: p.steps.loss[0], webgpu: doc.environment && doc.environment.webgpu ? {
      vendor: doc.environment.webgpu.vendor, architecture: doc.environment.webgpu.architecture } : null };
}

// per-kernel timing on a gpu_ref model of the same shape (sections fetched from /models/)
async function pageProfile({ meta, binUrl, steps }) {
  const bin = await (await fetch(binUrl)).arrayBuffer();
  const S = meta.sections;
  const sec = (n) => { const s = S[n]; return s.type === 'f32' ? new Float32Array(bin, s.offset, s.bytes / 4)
    : s.type === 'i32' ? new Int32Array(bin, s.offset, s.bytes / 4) : new Uint8Array(bin, s.offset, s.bytes); };
  const c = meta.config, C = c.n_embd;
  const mat = (name, rows, cols) => ({ type: S[name].type, rows, cols, data: sec(name) });
  const shapes = [[3 * C, C], [C, C], [4 * C, C], [C, 4 * C]];
  const tensors = { wte: mat('wte', c.n_vocab, C), wpe: sec('wpe'), lnf_w: sec('lnf_w'), lnf_b: sec('lnf_b'),
    blocks: Array.from({ length: c.n_layer }, (_, l) => ({
      ln1_w: sec(`h${l}.ln1_w`), ln1_b: sec(`h${l}.ln1_b`), ln2_w: sec(`h${l}.ln2_w`), ln2_b: sec(`h${l}.ln2_b`),
      w: shapes.map(([o, i], s) => mat(`h${l}.w${s}`, o, i)), b: shapes.map((_, s) => sec(`h${l}.b${s}`)) })) };
  const lora = { r: meta.r, scaling: meta.scaling, dropout: meta.lora_dropout, modules: meta.modules, params: sec('params0') };
  const T = meta.T, lens = sec('lens'), tok = sec('tokens'), tg = sec('targets'), mask = sec('mask');
  const ex = Array.from(lens, (n, e) => ({ tokens: tok.subarray(e * T, e * T + n), targets: tg.subarray(e * T, e * T + n), mask: mask.subarray(e * T, e * T + n) }));
  const { requestGpuDevice, createGpuTrainer } = await import('/gpu/engine.js');
  const g = await requestGpuDevice(navigator.gpu);
  if (!g.features.includes('timestamp-query')) return { adapter: g.adapterInfo, error: 'the adapter has no timestamp-query' };
  const tr = await createGpuTrainer(g.device, { config: c, tensors, lora,
    train: { maxT: T, maxBatch: 1, gradClip: meta.clip, dropout: meta.dropout, baseSeed: BigInt(meta.base_seed),
      loraSeed: BigInt(meta.lora_seed), profile: true } });
  await tr.step([ex[0]], meta.lr); // warm-up: first use of every pipeline
  tr.resetProfile();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await tr.step([ex[s % ex.length]], meta.lr);
  const wall = (performance.now() - t0) / 1000;
  const prof = tr.profile();
  tr.destroy();
  g.device.destroy();
  return { adapter: g.adapterInfo, features: g.features, subgroups: tr.subgroups, wall_s: wall, steps, tokens: ex.slice(0, steps).reduce((a, e) => a + e.tokens.length, 0), kernels: prof };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b), n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };

async function main() {
  const o = args(process.argv.slice(2));
  if (!fs.existsSync(path.join(WASM_DIR, 'loralab_mt.js'))) fail(`${WASM_DIR}/loralab_mt.js is missing (the threaded wasm build)`);
  const gpuRef = path.join(path.resolve(REPO, process.env.LPL_BUILD_DIR || 'build'), 'gpu_ref');
  if (!fs.existsSync(gpuRef)) fail(`${gpuRef} is missing (cmake --build build --target gpu_ref)`);
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const chromium = execFileSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8' }).trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-gpubench-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  fs.copyFileSync(o.model, path.join(dir, path.basename(o.model))); // the server refuses symlinks out of its root
  let shape, T, meta;
  const load0 = os.loadavg()[0];
  const h = await open({ webgpu: true, modelsDir: dir });
  const rows = [];
  let page, prof;
  try {
    await h.page.goto(`${h.url}gpu/API.md`); // any page of our server: 127.0.0.1, cross-origin isolated
    log(`loading ${path.basename(o.model)} into the lab worker ...`);
    // the page's own choice (relaxed SIMD where it validates) when that build exists
    const wasm = fs.existsSync(path.join(WASM_DIR, 'loralab_rx.js')) ? 'auto' : 'simd128';
    page = await h.page.evaluate(pageStart, { modelUrl: `/models/${path.basename(o.model)}`, wasm });
    log(`wasm build ${page.build}, ${page.threads} threads; WebGPU ${page.gpu ? 'present' : 'missing'}`);
    shape = page.model;
    if (shape.arch !== 'gpt2') throw new Error(`${o.model}: the WebGPU engine takes GPT-2-family models (arch ${shape.arch})`);
    // the profile's model: gpu_ref step OUT L C H CTX V T NB STEPS LR R ALPHA LORA_P EMBD_P ATTN_P RESID_P CLIP SEED
    // (random Q8_0 weights of the same shape; the quick preset's LoRA and dropouts)
    T = Math.min(o.profileTokens, shape.n_ctx);
    meta = JSON.parse(execFileSync(gpuRef, ['step', path.join(dir, 'ref'), shape.n_layer, shape.n_embd, shape.n_head,
      shape.n_ctx, shape.n_vocab, T, 1, o.profileSteps, 2e-4, 16, 32, 0.05, 0.1, 0.1, 0.1, 1.0, 1].map(String),
    { encoding: 'utf8', maxBuffer: 1 << 28 }));
    const runs = [['cpu', 'int8'], ['cpu', 'f32'], ['webgpu', 'f32']];
    for (let round = 1; round <= o.rounds; round++) {
      const k = (round - 1) % runs.length, order = [...runs.slice(k), ...runs.slice(0, k)];
      for (const [device, compute] of order) {
        const load = os.loadavg()[0];
        const r = await h.page.evaluate(pageRunOnce, { device, compute, steps: o.steps });
        rows.push({ round, load, ...r });
        log(`round ${round}/${o.rounds} ${device}/${compute}: ${r.tokens_per_s.toFixed(1)} tokens/s steady (engine's ${r.engine_tokens_per_s.toFixed(1)}), load ${load.toFixed(2)}`);
      }
    }
    log(`per-kernel profile: ${o.profileSteps} step(s) of ${T} tokens, random model of the same shape ...`);
    const { sections, ...rest } = meta;
    const keep = Object.fromEntries(Object.entries(sections).filter(([n]) => !/^(losses|norms|grads1|params_final|eval)$/.test(n)));
    prof = await h.page.evaluate(pageProfile, { meta: { ...rest, sections: keep }, binUrl: '/models/ref.bin', steps: o.profileSteps });
  } finally {
    await h.close();
  }
  const adapter = prof.adapter || {};
  const emulation = adapter.architecture === 'swiftshader';
  const by = (d, c) => rows.filter((r) => r.device === d && r.compute === c).map((r) => r.tokens_per_s);
  const summary = Object.fromEntries([['cpu', 'int8'], ['cpu', 'f32'], ['webgpu', 'f32']].map(([d, c]) => {
    const xs = by(d, c);
    return [`${d}/${c}`, { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), rounds: xs }];
  }));
  const doc = { commit, chromium, date: new Date().toISOString(), machine: `${os.cpus()[0].model}, ${os.cpus().length} vCPU`,
    load_before: load0, load_after: os.loadavg()[0], model: path.basename(o.model), shape: { n_layer: shape.n_layer, n_embd: shape.n_embd, n_head: shape.n_head, n_ctx: shape.n_ctx, n_vocab: shape.n_vocab }, wasm: page, adapter, emulation,
    settings: { rounds: o.rounds, steps: o.steps, preset: 'quick', placement: 'baseline', batch_size: 1 }, rows, summary,
    profile: { ...prof, tokens_per_step: T } };
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(doc, null, 2) + '\n');
  const tag = emulation ? ' (SwiftShader: emulation on the CPU, not a GPU speed)' : '';
  console.log(`\nadapter: ${adapter.vendor} ${adapter.architecture}${tag}; model ${doc.model}; ${o.rounds} rounds of ${o.steps} steps`);
  console.log('| device / compute | tokens/s, median | spread | per round |\n| --- | ---: | ---: | --- |');
  for (const [k, s] of Object.entries(summary))
    console.log(`| ${k}${k.startsWith('webgpu') ? tag : ''} | ${s.median.toFixed(1)} | ${s.min.toFixed(1)}-${s.max.toFixed(1)} | ${s.rounds.map((x) => x.toFixed(1)).join(', ')} |`);
  if (prof.kernels) {
    console.log(`\nper kernel class (timestamp queries, ${prof.steps} steps of ${T} tokens${tag}):`);
    for (const k of prof.kernels.sort((a, b) => b.ns - a.ns))
      console.log(`${k.kernel}: ${(k.ns / 1e6).toFixed(1)} ms, ${k.dispatches} dispatches${k.flops ? `, ${(k.flops / k.ns).toFixed(3)} GFLOP/s` : ''}`);
  } else console.log(`per-kernel profile: ${prof.error}`);
}

main().catch((e) => { console.error(`gpu_bench: ${e.stack || e.message}`); process.exit(1); });
