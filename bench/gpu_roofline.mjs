#!/usr/bin/env node
// A roofline ARGUMENT (not a measurement) for the WebGPU training step (issue 22):
// FLOPs and bytes per training step, per kernel class, counted from the model shapes
// and the engine's schedule (web/gpu/engine.js: forward, backward with LayerNorm and
// GELU recomputed, LoRA on the baseline placement, the LM head over the scored rows,
// clip + AdamW); the arithmetic intensity; and the time each class needs at least on a
// few named GPUs, max(FLOPs / peak FP32, bytes / bandwidth), summed over the classes.
// The CPU figure it is set against is the one `bench/report --only browser` measured,
// read from docs/BENCHMARKS.md together with its commit and machine stamp.
//
//   node bench/gpu_roofline.mjs [--tokens 128] [--r 16] [--write]
//
// Prints the markdown it puts in docs/BENCHMARKS.md between <!-- report:roofline -->
// and <!-- /report:roofline --> (--write replaces that section).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOC = path.join(ROOT, 'docs', 'BENCHMARKS.md');
const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : def; };
const T = opt('--tokens', 128);
const R = opt('--r', 16);

// GPT-2 family shapes (Hugging Face configs of microsoft/DialoGPT-{small,medium,large}).
const V = 50257;
const MODELS = {
  'DialoGPT-small': { L: 12, C: 768, H: 12 },
  'DialoGPT-medium': { L: 24, C: 1024, H: 16 },
  'DialoGPT-large': { L: 36, C: 1280, H: 20 },
};
// Public peak FP32 rates and memory bandwidths. The shaders compute in f32 (Q8_0 is
// dequantised into f32 tiles), so FP32 FMA peak is the compute roof.
const GPUS = [
  { name: 'Intel Iris Xe (96 EU, i7-1165G7)', tflops: 96 * 8 * 2 * 1.30e9 / 1e12, gbs: 68.3,
    src: 'Intel ARK i7-1165G7: 96 EU at up to 1.30 GHz (8 FP32 lanes per EU, FMA = 2 FLOP); LPDDR4x-4266, 128-bit = 68.3 GB/s' },
  { name: 'Apple M1 (8-core GPU)', tflops: 2.6, gbs: 68.25,
    src: 'Apple newsroom, "Apple unleashes M1" (2020-11-10): 2.6 TFLOPS; LPDDR4X-4266, 128-bit = 68.25 GB/s' },
  { name: 'issue 22 laptop GPU', tflops: 10, gbs: 300, src: 'the hypothetical of issue 22: 10 TFLOP/s, 300 GB/s' },
  { name: 'NVIDIA RTX 3060 (12 GB)', tflops: 3584 * 2 * 1.777e9 / 1e12, gbs: 360,
    src: 'NVIDIA GeForce RTX 3060 specifications: 3584 CUDA cores, boost 1.78 GHz; 192-bit GDDR6 at 15 Gbps = 360 GB/s' },
];
const Q8 = 34 / 32; // bytes per Q8_0 weight (ggml block: fp16 scale + 32 int8)

/** FLOPs and bytes per training step of one sequence of T tokens, S of them scored,
 *  LoRA rank r on all four sites of every layer (the baseline placement), per class.
 *  Bytes are compulsory traffic: each operand read once and each result written once
 *  per kernel launch (perfect on-chip reuse inside a launch). */
function classes({ L, C, H }, T, S, r) {
  const f4 = 4;
  const sites = [[C, 3 * C], [C, C], [C, 4 * C], [4 * C, C]]; // [in, out]
  const W = sites.reduce((a, [i, o]) => a + i * o, 0);       // 12 C^2 weights per layer
  const IO = sites.reduce((a, [i, o]) => a + i + o, 0);      // 16 C
  const P = r * IO * L;                                       // LoRA parameters
  const hd = C / H;
  const causal = (T * (T + 1)) / 2;                           // (i, j) pairs with j <= i
  return [
    { name: 'base products, forward (Q8_0)', flops: 2 * W * T * L,
      bytes: L * (W * Q8 + f4 * T * IO) },
    { name: 'base products, input gradient (Q8_0)', flops: 2 * W * T * L,
      bytes: L * (W * Q8 + f4 * T * IO) },
    // forward x A^T, u B^T; backward dB, du, dA, dX: 6 products of T r (in or out)
    { name: 'LoRA A/B, forward + backward (f32)', flops: 2 * 3 * T * r * IO * L,
      bytes: f4 * (4 * P + L * T * (3 * IO + 2 * 4 * r)) },
    // forward: S = QK^T, PV; backward: S again, dP = dO V^T, dQ, dK, dV (5 products);
    // P and dS [H][T][T] (causal half) written in backward and read back.
    { name: 'attention, forward + backward', flops: 2 * 7 * causal * hd * H * L,
      bytes: f4 * L * (3 * 3 * T * C + 3 * T * C + 3 * T * C + 3 * T * C + 2 * 2 * H * causal) },
    // 2 per layer + final: forward, forward again in backward (recompute), backward
    { name: 'LayerNorm, forward + recompute + backward', flops: (2 * L + 1) * T * C * (8 + 8 + 12),
      bytes: f4 * (2 * L + 1) * T * C * (2 + 2 + 4) + f4 * (2 * L + 1) * 2 * C },
    // GELU on T x 4C (forward, recompute, backward), 2 residual adds per layer
    // forward; residual gradients ride in the LayerNorm backward's accumulation.
    { name: 'GELU, residual adds (element-wise)', flops: L * T * 4 * C * (15 + 15 + 25) + L * 2 * T * C,
      bytes: f4 * L * (T * 4 * C * (2 + 2 + 3) + 2 * 3 * T * C) },
    { name: 'embedding (Q8_0 rows + positions)', flops: T * C, bytes: T * C * (Q8 + f4 + f4) },
    { name: 'LM head, forward + input gradient (Q8_0)', flops: 2 * 2 * S * V * C,
      bytes: 2 * V * C * Q8 + f4 * (2 * S * V + 2 * S * C) },
    // max, sum of exp, gradient: ~5 FLOP per logit; 3 reads and 1 write of the logits
    { name: 'cross-entropy (scored rows x vocabulary)', flops: 5 * S * V, bytes: f4 * 4 * S * V },
    // zero G, norm (read G), update (read P G M V, write P M V, G when clipped)
    { name: 'grad-norm clip + AdamW', flops: 2 * P + 15 * P, bytes: f4 * P * (1 + 1 + 4 + 4) },
  ].map((k) => ({ ...k, params: P }));
}

const bound = (k, g) => Math.max(k.flops / (g.tflops * 1e12), k.bytes / (g.gbs * 1e9));
const limiter = (k, g) => (k.flops / (g.tflops * 1e12) >= k.bytes / (g.gbs * 1e9) ? 'C' : 'M');
const stepBound = (ks, g) => ks.reduce((a, k) => a + bound(k, g), 0);
const sum = (ks, f) => ks.reduce((a, k) => a + k[f], 0);
const fmt = (x, d = 1) => x.toFixed(d);
const ms = (s) => (s * 1e3 < 10 ? (s * 1e3).toFixed(2) : (s * 1e3).toFixed(1));

function commit() {
  try {
    const h = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${h} (with uncommitted changes)` : h;
  } catch { return 'unknown'; }
}

/** The CPU tokens/s `bench/report --only browser` wrote, with its stamp; null if absent. */
function cpuMeasured() {
  const text = fs.readFileSync(DOC, 'utf8');
  const m = /<!-- report:browser -->([\s\S]*?)<!-- \/report:browser -->/.exec(text);
  if (!m) return null;
  const st = /at commit (\w+) on (.*?), (\d{4}-\d\d-\d\d \d\d:\d\d) UTC/.exec(m[1]);
  const int8 = /\| int8 \| ([\d.]+) \|/.exec(m[1]), f32 = /\| f32 \| ([\d.]+) \|/.exec(m[1]);
  const len = /max_len (\d+)/.exec(m[1]);
  if (!st || !int8 || !f32) return null;
  return { commit: st[1], machine: st[2], date: st[3], int8: Number(int8[1]), f32: Number(f32[1]), maxLen: len && Number(len[1]) };
}

/** loralab bench's own FLOP count of the DialoGPT-small step (report:step's profile). */
function cliFlops() {
  const text = fs.readFileSync(DOC, 'utf8');
  const m = /<!-- report:step -->([\s\S]*?)<!-- \/report:step -->/.exec(text);
  const st = m && /at commit (\w+)/.exec(m[1]);
  const f = m && /dialogpt-small, seq (\d+)[^\n]*placement (\w+), r (\d+)[\s\S]*?\(([\d.]+) GFLOP\/step\)/.exec(m[1]);
  return f && st ? { commit: st[1], seq: Number(f[1]), placement: f[2], r: Number(f[3]), gflop: Number(f[4]) } : null;
}

function report() {
  const out = [];
  const p = (s = '') => out.push(s);
  p(`_Printed by \`node bench/gpu_roofline.mjs --tokens ${T} --r ${R}\` at commit ${commit()}. An argument from the model ` +
    'shapes and published peak rates, not a measurement: no GPU ran. Nothing here is timed on SwiftShader (a CPU ' +
    'emulator; its timings are emulation)._');
  p();
  const med = classes(MODELS['DialoGPT-medium'], T, T, R);
  p(`**DialoGPT-medium, one training step of ${T} tokens, all ${T} scored**, LoRA r ${R} on the four sites of all ` +
    `24 layers (the baseline placement; ${(med[0].params / 1e6).toFixed(2)} M adapter parameters), Q8_0 base weights, ` +
    'f32 arithmetic. Bytes are compulsory traffic (each operand read once and each result written once per kernel ' +
    'launch); AI = FLOPs / bytes. The time columns are max(FLOPs / peak, bytes / bandwidth) per class, C = ' +
    'compute-bound, M = memory-bound there.');
  p();
  const shortName = (g) => g.name.replace(/ \(.*\)/, '');
  p(`| kernel class | GFLOP | MB | AI (FLOP/B) | ${GPUS.map((g) => `${shortName(g)}, ms`).join(' | ')} |`);
  p(`| --- | ---: | ---: | ---: | ${GPUS.map(() => '---:').join(' | ')} |`);
  for (const k of med)
    p(`| ${k.name} | ${fmt(k.flops / 1e9, 2)} | ${fmt(k.bytes / 1e6, 1)} | ${fmt(k.flops / k.bytes, 1)} | ` +
      `${GPUS.map((g) => `${ms(bound(k, g))} ${limiter(k, g)}`).join(' | ')} |`);
  p(`| **step** | **${fmt(sum(med, 'flops') / 1e9, 1)}** | **${fmt(sum(med, 'bytes') / 1e6, 0)}** | ` +
    `**${fmt(sum(med, 'flops') / sum(med, 'bytes'), 1)}** | ${GPUS.map((g) => `**${ms(stepBound(med, g))}**`).join(' | ')} |`);
  p();
  p('Peak rates used (FP32 FMA = 2 FLOP):');
  p();
  for (const g of GPUS) p(`- ${g.name}: ${fmt(g.tflops, 2)} TFLOP/s, ${fmt(g.gbs, 1)} GB/s (balance ${fmt(g.tflops * 1e3 / g.gbs, 0)} FLOP/B). Source: ${g.src}.`);
  p();
  p(`**Upper bound on training tokens/s** (${T} tokens per step, all scored) for the three model sizes, against the ` +
    'CPU path measured in Chromium:');
  p();
  p(`| model | GFLOP/step | MB/step | ${GPUS.map((g) => `${shortName(g)}`).join(' | ')} |`);
  p(`| --- | ---: | ---: | ${GPUS.map(() => '---:').join(' | ')} |`);
  for (const [name, m] of Object.entries(MODELS)) {
    const ks = classes(m, T, T, R);
    p(`| ${name} | ${fmt(sum(ks, 'flops') / 1e9, 1)} | ${fmt(sum(ks, 'bytes') / 1e6, 0)} | ` +
      `${GPUS.map((g) => fmt(T / stepBound(ks, g), 0)).join(' | ')} |`);
  }
  p();
  const cpu = cpuMeasured();
  if (cpu)
    p(`Measured on the CPU for comparison: the lab page's threaded wasm build in Chromium trains DialoGPT-medium at ` +
      `**${cpu.int8} tokens/s** (compute int8; ${cpu.f32} with f32), median of the "Training in Chromium" table above ` +
      `(\`bench/report --only browser\`, commit ${cpu.commit}, ${cpu.machine}, ${cpu.date} UTC; steps of the bundled ` +
      `Alpaca records, about 50 tokens each, max_len ${cpu.maxLen}). Not re-measured by this script.`);
  else p('The CPU figure (`bench/report --only browser`) is missing from docs/BENCHMARKS.md: run that section first.');
  p();
  // The reading, from the same numbers.
  const lap = GPUS.find((g) => g.name.startsWith('issue 22'));
  const big = med.filter((k) => /base products|LM head/.test(k.name));
  const memShare = med.filter((k) => limiter(k, lap) === 'M').reduce((a, k) => a + bound(k, lap), 0) / stepBound(med, lap);
  p(`Reading: the Q8_0 products (base sites and LM head) are ${fmt(100 * sum(big, 'flops') / sum(med, 'flops'), 0)}% ` +
    `of the step's FLOPs and, at ${T} tokens, compute-bound on every GPU listed (AI ` +
    `${fmt(Math.min(...big.map((k) => k.flops / k.bytes)), 0)} FLOP/B or more against machine balances of ` +
    `${fmt(Math.min(...GPUS.map((g) => g.tflops * 1e3 / g.gbs)), 0)}-${fmt(Math.max(...GPUS.map((g) => g.tflops * 1e3 / g.gbs)), 0)}). ` +
    `Everything else is memory-bound, and on the issue's 10 TFLOP/s, 300 GB/s GPU it is ` +
    `${fmt(100 * memShare, 0)}% of the step's bound: the LoRA branches as separate launches, element-wise kernels, ` +
    'LayerNorm, the loss and AdamW each stream their tensors through memory once more.');
  p();
  if (cpu) {
    const mb = stepBound(med, lap);
    p(`The bound on that GPU is ${fmt(T / mb, 0)} tokens/s for DialoGPT-medium, ${fmt(T / mb / cpu.int8, 0)}x the CPU ` +
      `figure; on the Iris Xe it is ${fmt(T / stepBound(med, GPUS[0]) / cpu.int8, 0)}x (the CPU figure is at about ` +
      '50-token steps; the last table has the bound at 50 tokens). A bound, not a forecast: WebGPU matrix products in ' +
      'f32 reach a fraction of peak, and this engine\'s kernels (web/gpu/*.wgsl) are not tuned for it.');
    p();
  }
  const cli = cliFlops();
  const small = classes(MODELS['DialoGPT-small'], cli ? cli.seq : T, cli ? cli.seq : T, cli ? cli.r : R);
  if (cli)
    p(`Cross-check of the FLOP count: ${fmt(sum(small, 'flops') / 1e9, 1)} GFLOP for a DialoGPT-small step of ${cli.seq} ` +
      `tokens here, against ${cli.gflop} GFLOP/step from \`loralab bench\`'s own count (placement ${cli.placement}, ` +
      `r ${cli.r}; "Training step" above, commit ${cli.commit}).`);
  p();
  const Ts = [16, 50, 128, 512];
  p('DialoGPT-medium, the bound in tokens/s against tokens per step (all scored): fewer tokens per step re-read the ' +
    'same weights for less work, so the step turns memory-bound.');
  p();
  p(`| tokens per step | AI of the step | ${GPUS.map((g) => shortName(g)).join(' | ')} |`);
  p(`| ---: | ---: | ${GPUS.map(() => '---:').join(' | ')} |`);
  for (const t of Ts) {
    const ks = classes(MODELS['DialoGPT-medium'], t, t, R);
    p(`| ${t} | ${fmt(sum(ks, 'flops') / sum(ks, 'bytes'), 1)} | ${GPUS.map((g) => fmt(t / stepBound(ks, g), 0)).join(' | ')} |`);
  }
  return out.join('\n') + '\n';
}

const body = report();
process.stdout.write(body);
if (args.includes('--write')) {
  const text = fs.readFileSync(DOC, 'utf8');
  const begin = '<!-- report:roofline -->', end = '<!-- /report:roofline -->';
  const i = text.indexOf(begin), j = text.indexOf(end);
  if (i < 0 || j < 0) { console.error(`gpu_roofline: ${DOC} has no ${begin} ... ${end} markers`); process.exit(1); }
  fs.writeFileSync(DOC, text.slice(0, i + begin.length) + '\n' + body + text.slice(j));
}
