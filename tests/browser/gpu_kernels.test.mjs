// Every WGSL kernel of the WebGPU engine (web/gpu/*.wgsl) against the C core's own
// kernels, one kernel at a time, in real headless Chromium on SwiftShader (a CPU
// emulator of a Vulkan GPU: correctness only, never a speed). The C side is
// build/gpu_ref (tests/support/gpu_ref.c): it draws random inputs with the C core's
// generator and runs lpl_matmul_*, lpl_linear_forward / backward_input (Q8_0),
// lpl_layernorm_*, lpl_gelu_*, lpl_attention_*, lpl_dropout_scale,
// lpl_dequantize_row, lpl_crossentropy_*, lpl_clip_grad_norm and lpl_adamw_step on
// them. This file uploads the same bytes, dispatches the kernel with the uniforms the
// engine would pass (engine.js), reads the result back and compares.
//
// Shapes are small (the emulator runs at ~0.5 GFLOP/s) but awkward: T = 1, widths
// that are not a multiple of the 64x64 matmul tile, the 16-deep K step, the 256-wide
// row workgroups or the 64-wide attention workgroups; Q8_0 rows whose scales differ by
// 40x; matrices split into two row chunks as the engine does with the LM head. The
// kernels that reduce (layernorm, attention, loss, optim) run twice: with the tree
// reductions and with the subgroup ones (reduce*.wgsl; SwiftShader has `subgroups`).
//
// Tolerances (stated per check): "norm" = max |gpu - c| / max |c| over the array, for
// sums whose order differs between the GPU tiling and the C loops (f32 rounding,
// ~1e-7 per term); dropout masks must be bit-identical (same counter-based hash);
// data movement (embedding, rows) must be exact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { open } from './harness.mjs';
import { cRef, BUILD } from '../gpu/support.mjs';

const GPU_REF = `${BUILD}/gpu_ref`;
const SKIP = !fs.existsSync(GPU_REF) ? `${GPU_REF} is missing (cmake --build build --target gpu_ref)`
  : !fs.existsSync('/usr/lib/chromium/libvk_swiftshader.so') ? 'Chromium has no SwiftShader Vulkan driver' : false;

// ---------------------------------------------------------------- page side
// Runs in the page (served from 127.0.0.1: WebGPU needs a secure context). Compiles
// every kernel as engine.js does (kernelCode: common.wgsl, a reduction file, the
// kernel) on a device from the engine's own requestGpuDevice: once with the tree
// reductions and, when the engine's probe accepts the device's subgroups, once with
// the subgroup ones.
async function pageInit() {
  const { requestGpuDevice, loadKernelSources, kernelCode, subgroupReductionsUsable } = await import('/gpu/engine.js');
  const { device, adapterInfo, features } = await requestGpuDevice(navigator.gpu);
  const src = await loadKernelSources();
  const subgroups = await subgroupReductionsUsable(device);
  const pipes = { tree: {}, subgroups: {} };
  device.pushErrorScope('validation');
  const reducing = ['layernorm', 'attention', 'loss', 'optim']; // the others do not change
  for (const k of ['matmul', 'elementwise', 'layernorm', 'attention', 'loss', 'embed', 'rows', 'optim']) {
    for (const v of subgroups && reducing.includes(k) ? ['tree', 'subgroups'] : ['tree']) {
      const module = device.createShaderModule({ code: kernelCode(src, k, v === 'subgroups'), label: k });
      pipes[v][k] = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: k });
    }
    if (!pipes.subgroups[k]) pipes.subgroups[k] = pipes.tree[k];
  }
  const e = await device.popErrorScope();
  if (e) throw new Error(`kernel compilation: ${e.message}`);
  window.__gk = { device, pipes };
  return { adapterInfo, features, subgroups };
}

// spec: {buffers: {name: {b64} | {bytes}}, ops: [{kind, u: b64 of 64 uniform bytes,
// bind: [buffer names for bindings 1..], wg: [x, y, z]}], read: [names], variant:
// 'tree' | 'subgroups'}. One compute pass per op, in order. Returns {name: b64} of the
// read buffers.
async function pageRun(spec) {
  const { device } = window.__gk;
  const pipes = window.__gk.pipes[spec.variant];
  const dec = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const enc64 = (u8) => { let s = ''; for (let i = 0; i < u8.length; i += 32768) s += String.fromCharCode(...u8.subarray(i, i + 32768)); return btoa(s); };
  const ST = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const made = [];
  const mk = (size, usage) => { const b = device.createBuffer({ size: Math.max(16, Math.ceil(size / 16) * 16), usage }); made.push(b); return b; };
  const bufs = {}, sizes = {};
  for (const [name, d] of Object.entries(spec.buffers)) {
    const data = d.b64 !== undefined ? dec(d.b64) : null;
    sizes[name] = data ? data.length : d.bytes;
    bufs[name] = mk(sizes[name], ST);
    if (data) {
      const padded = new Uint8Array(Math.ceil(data.length / 4) * 4);
      padded.set(data);
      device.queue.writeBuffer(bufs[name], 0, padded);
    }
  }
  bufs.dummy = mk(16, ST);
  device.pushErrorScope('validation');
  const enc = device.createCommandEncoder();
  for (const o of spec.ops) {
    const ub = mk(64, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(ub, 0, dec(o.u));
    const pipe = pipes[o.kind];
    const entries = [{ binding: 0, resource: { buffer: ub } }];
    o.bind.forEach((n, i) => entries.push({ binding: i + 1, resource: { buffer: bufs[n] } }));
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(...o.wg);
    pass.end();
  }
  const reads = spec.read.map((n) => {
    const rb = mk(Math.ceil(sizes[n] / 4) * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    enc.copyBufferToBuffer(bufs[n], 0, rb, 0, Math.ceil(sizes[n] / 4) * 4);
    return [n, rb];
  });
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  if (err) throw new Error(`WebGPU validation: ${err.message}`);
  const out = {};
  for (const [n, rb] of reads) {
    await rb.mapAsync(GPUMapMode.READ);
    out[n] = enc64(new Uint8Array(rb.getMappedRange().slice(0, sizes[n])));
    rb.unmap();
  }
  for (const b of made) b.destroy();
  return out;
}

// ---------------------------------------------------------------- node side
let h = null;
let gpuInfo = null;
before(async () => {
  if (SKIP) return;
  h = await open({ webgpu: true });
  // Any page of our server gives the 127.0.0.1 origin; this one loads nothing else.
  await h.page.goto(`${h.url}gpu/API.md`);
  gpuInfo = await h.page.evaluate(pageInit);
});
after(async () => { if (h) await h.close(); });

const b64 = (ta) => Buffer.from(ta.buffer, ta.byteOffset, ta.byteLength).toString('base64');
const f32 = (s) => { const b = Buffer.from(s, 'base64'); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); };
const F = (x) => ({ f: x });
/** 64 bytes of uniforms: numbers are u32, {f} are f32 (as engine.js's op()). */
function U(words) {
  const dv = new DataView(new ArrayBuffer(64));
  words.forEach((v, i) => (typeof v === 'object' ? dv.setFloat32(i * 4, v.f, true) : dv.setUint32(i * 4, v >>> 0, true)));
  return Buffer.from(dv.buffer).toString('base64');
}
async function run(buffers, ops, read, variant = 'tree') {
  const spec = { buffers: {}, ops: ops.map((o) => ({ ...o, u: U(o.u) })), read, variant };
  for (const [k, v] of Object.entries(buffers)) spec.buffers[k] = typeof v === 'number' ? { bytes: v } : { b64: b64(v) };
  const out = await h.page.evaluate(pageRun, spec);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, f32(v)]));
}
/** "norm" check: max |got - want| <= tol * max |want|, and every value finite. */
function near(label, got, want, tol) {
  assert.equal(got.length, want.length, `${label}: length`);
  let d = 0, m = 0, at = 0;
  for (let i = 0; i < want.length; i++) {
    assert.ok(Number.isFinite(got[i]), `${label}: element ${i} is ${got[i]} (C ${want[i]})`);
    const e = Math.abs(got[i] - want[i]);
    if (e > d) { d = e; at = i; }
    m = Math.max(m, Math.abs(want[i]));
  }
  assert.ok(d <= tol * (m || 1), `${label}: max |gpu - c| = ${d.toExponential(2)} at ${at} (gpu ${got[at]}, c ${want[at]}), ` +
    `max |c| = ${m.toExponential(2)}, tolerance ${tol} relative`);
  if (process.env.LPL_GPU_KERNELS_VERBOSE) console.log(`${label}: ${(d / (m || 1)).toExponential(2)} (tolerance ${tol.toExponential(1)})`);
  return d / (m || 1);
}
function exact(label, got, want) {
  assert.equal(got.length, want.length, `${label}: length`);
  for (let i = 0; i < want.length; i++)
    if (!Object.is(got[i], want[i])) assert.fail(`${label}: element ${i}: gpu ${got[i]}, c ${want[i]}`);
}
const pad = (arr, before) => { const o = new Float32Array(before + arr.length); o.fill(NaN, 0, before); o.set(arr, before); return o; };
/** The reduction variants to check: the tree, and the subgroup one where usable. */
const variants = () => (gpuInfo.subgroups ? ['tree', 'subgroups'] : ['tree']);
const grid1 = (n) => [Math.ceil(n / 256), 1, 1];
const keepOf = (p) => Math.fround(1 / Math.fround(1 - Math.fround(p)));
const lo32 = (k) => Number(BigInt(k) & 0xffffffffn), hi32 = (k) => Number(BigInt(k) >> 32n);

// ---------------------------------------------------------------- matmul
// MM uniforms (matmul.wgsl): M N K aOff | sam sak bOff sbk | sbn cOff ldc acc | alpha bmode rowBytes biasOn
const mmOp = ({ M, N, K, aOff = 0, sam, sak, bOff = 0, sbk = 0, sbn = 0, cOff = 0, ldc, acc = 0, alpha = 1, bmode = 0, rb = 0,
  bias = false }, bind) => ({ kind: 'matmul', u: [M, N, K, aOff, sam, sak, bOff, sbk, sbn, cOff, ldc, acc, F(alpha), bmode, rb, bias ? 1 : 0],
  bind, wg: [Math.ceil(N / 64), Math.ceil(M / 64), 1] });

// [M, N, K, alpha]: T = 1 and one-element products; K below and across the 16-deep
// step; M, N across the 64 tile; LoRA shapes (N = r = 4 or 8).
// matmul.wgsl loads an operand as aligned vec4s when its stride-1 axis, offset and
// extent allow, else by scalars. Per product: nt at offsets 3/5 is scalar for A and B,
// nt at offsets 4/8 and "linear" take vec4 along k when K % 4 == 0; nn takes A along k
// (K % 4 == 0) and B along n (N % 4 == 0); tn takes A along m (M % 4 == 0). The shapes
// below give each path both a full and a partial last tile in m, n and k.
const F32_SHAPES = [[1, 1, 1, 1], [1, 8, 96, 2], [5, 4, 17, 0.5], [67, 130, 33, 1.5], [64, 64, 16, 1], [9, 200, 65, -1],
  [68, 132, 36, 0.75], [8, 16, 20, 1]];
for (const [M, N, K, alpha] of F32_SHAPES) {
  test(`matmul f32 nt/nn/tn/bias vs lpl_matmul_* and lpl_linear_forward, M ${M} N ${N} K ${K}`, { skip: SKIP }, async () => {
    const ref = cRef('matf32', [M, N, K, alpha, 1000 + M * 7 + N * 3 + K]);
    const s = (n) => ref.sec(n);
    const tol = 5e-7 * Math.sqrt(K) + 1e-6;
    const mm = (p, A, B, C, bias = null) => run({ A, B, C, ...(bias ? { bias } : {}) },
      [mmOp(p, ['A', 'B', 'dummy', 'C', bias ? 'bias' : 'dummy'])], ['C']);
    // nt: C = C0 + alpha A B^T (B stored [N][K]: LoRA forward u = x A^T, Y += s u B^T),
    // at offsets into the buffers as the engine uses them (LoRA A and B live at
    // offsets in the params buffer): unaligned, then aligned to 4 floats.
    for (const [aOff, bOff, cOff] of [[3, 5, 2], [4, 8, 1]]) {
      const r = await mm({ M, N, K, aOff, sam: K, sak: 1, bOff, sbk: 1, sbn: K, cOff, ldc: N, acc: 1, alpha },
        pad(s('a'), aOff), pad(s('bt'), bOff), pad(s('c0'), cOff));
      near(`nt (offsets ${aOff}, ${bOff}, ${cOff})`, r.C.subarray(cOff), s('nt'), tol);
    }
    // nn: C = C0 + alpha A B (B [K][N]: du = s dY B, dX += du A)
    let r = await mm({ M, N, K, sam: K, sak: 1, sbk: N, sbn: 1, ldc: N, acc: 1, alpha }, s('a'), s('bn'), s('c0'));
    near('nn', r.C, s('nn'), tol);
    // tn: C = C0 + alpha A^T B (A stored [K][M]: dB += dY^T (s u), dA += du^T x)
    r = await mm({ M, N, K, sam: 1, sak: M, sbk: N, sbn: 1, ldc: N, acc: 1, alpha }, s('at'), s('bn'), s('c0'));
    near('tn', r.C, s('tn'), tol);
    // f32 base weight with bias, no accumulation (linFwd on an f32 matrix)
    r = await mm({ M, N, K, sam: K, sak: 1, sbk: 1, sbn: K, ldc: N, bias: true }, s('a'), s('bt'), new Float32Array(M * N).fill(NaN), s('bias'));
    near('linear f32 + bias', r.C, s('lin'), tol);
  });
}

// [M, N, K] of gpu_ref kernels: W [N][K] Q8_0 with rows' scales 40x apart, X [M][K].
// Also layernorm over rows of K and GELU on 3X.
const Q8_SHAPES = [[1, 1, 32], [1, 33, 64], [7, 70, 96], [67, 130, 288]];
for (const [M, N, K] of Q8_SHAPES) {
  test(`matmul Q8_0 forward and input gradient (whole and in two row chunks), M ${M} N ${N} K ${K}`, { skip: SKIP }, async () => {
    const ref = cRef('kernels', [M, N, K]);
    const s = (n) => ref.sec(n);
    const w = s('w'), rb = (K / 32) * 34;
    // Y = X W^T + b (bmode 1)
    let r = await run({ X: s('x'), W: w, b: s('b'), Y: M * N * 4 },
      [mmOp({ M, N, K, sam: K, sak: 1, ldc: N, bmode: 1, rb, bias: true }, ['X', 'dummy', 'W', 'Y', 'b'])], ['Y']);
    near('Y = X W^T + b', r.Y, s('y'), 5e-7 * Math.sqrt(K) + 1e-6);
    // dX = dY W (bmode 2)
    r = await run({ dY: s('dy'), W: w, dX: M * K * 4 },
      [mmOp({ M, N: K, K: N, sam: N, sak: 1, ldc: K, bmode: 2, rb }, ['dY', 'dummy', 'W', 'dX', 'dummy'])], ['dX']);
    near('dX = dY W', r.dX, s('dx'), 5e-7 * Math.sqrt(N) + 1e-6);
    if (N < 2) return;
    // The same over two row chunks of W in separate bindings, as the engine splits the
    // LM head: forward writes columns [r0, r1) (cOff, ldc), backward sums the chunks'
    // contributions (aOff into dY, acc on the second).
    const cut = Math.floor(N / 2) + 1 > N - 1 ? 1 : Math.floor(N / 2) + 1;
    const W0 = w.subarray(0, cut * rb), W1 = w.subarray(cut * rb);
    r = await run({ X: s('x'), W0, W1, Y: M * N * 4 }, [
      mmOp({ M, N: cut, K, sam: K, sak: 1, cOff: 0, ldc: N, bmode: 1, rb }, ['X', 'dummy', 'W0', 'Y', 'dummy']),
      mmOp({ M, N: N - cut, K, sam: K, sak: 1, cOff: cut, ldc: N, bmode: 1, rb }, ['X', 'dummy', 'W1', 'Y', 'dummy']),
    ], ['Y']);
    const y = s('y'), b = s('b'), noBias = y.map((v, i) => v - b[i % N]);
    near('Y = X W^T over two chunks', r.Y, noBias, 5e-7 * Math.sqrt(K) + 1e-6);
    r = await run({ dY: s('dy'), W0, W1, dX: M * K * 4 }, [
      mmOp({ M, N: K, K: cut, aOff: 0, sam: N, sak: 1, ldc: K, bmode: 2, rb }, ['dY', 'dummy', 'W0', 'dX', 'dummy']),
      mmOp({ M, N: K, K: N - cut, aOff: cut, sam: N, sak: 1, ldc: K, acc: 1, bmode: 2, rb }, ['dY', 'dummy', 'W1', 'dX', 'dummy']),
    ], ['dX']);
    near('dX = dY W over two chunks', r.dX, s('dx'), 5e-7 * Math.sqrt(N) + 1e-6);
  });

  test(`layernorm forward/backward and GELU forward/backward, T ${M} C ${K}`, { skip: SKIP }, async () => {
    const ref = cRef('kernels', [M, N, K]);
    const s = (n) => ref.sec(n);
    const T = M, C = K, sOff = T + 3; // stats stride maxT > T, as the engine's
    const acc0 = new Float32Array(T * C).map((_, i) => Math.sin(i));
    const lnU = (mode) => [T, C, F(1e-5), mode, sOff, 0, 0, 0];
    for (const v of variants()) { // reductions: tree, subgroups
      const r = await run({ X: s('x'), W: s('ln_w'), B: s('ln_b'), Y: T * C * 4, S: 2 * sOff * 4, dY: s('ln_dout'), dX: acc0 }, [
        { kind: 'layernorm', u: lnU(0), bind: ['X', 'W', 'B', 'Y', 'S', 'dummy'], wg: [T, 1, 1] },
        { kind: 'layernorm', u: lnU(1), bind: ['X', 'W', 'B', 'dX', 'S', 'dY'], wg: [T, 1, 1] },
      ], ['Y', 'dX'], v);
      near(`layernorm forward (${v})`, r.Y, s('ln_y'), 2e-6);
      // backward adds into dX (as lpl_layernorm_backward): started from acc0
      near(`layernorm backward (+=) (${v})`, r.dX, s('ln_dx').map((x, i) => x + acc0[i]), 4e-6);
    }
    // GELU on 3x (gpu_ref: both tails), mode 3 forward, mode 4 Z * gelu'(X)
    const x3 = s('x').map((v) => Math.fround(v * 3));
    const n = T * C;
    const ewU = (mode) => [n, mode, 0, 0, 0, F(0), F(1), 0, 0, 0, 0, 0];
    const g = await run({ X: x3, Y: n * 4, D: n * 4, Z: s('ln_dout') }, [
      { kind: 'elementwise', u: ewU(3), bind: ['X', 'Y', 'Z'], wg: grid1(n) },
      { kind: 'elementwise', u: ewU(4), bind: ['X', 'D', 'Z'], wg: grid1(n) },
    ], ['Y', 'D']);
    near('gelu forward', g.Y, s('gelu_y'), 1e-6);
    // gelu_new' has 0.5 (1 + tanh u): it cancels in f32 in the negative tail, where both
    // sides are off by up to ~ulp(1) |x| |dout| (gpu_ref's x reaches |3x| ~ 12).
    near('gelu backward', g.D, s('gelu_dx'), 3e-6);
  });
}

// ---------------------------------------------------------------- dropout masks
// [N, p, key, stream]: keys with both 32-bit halves busy, the largest stream (2^24 - 1).
const DROP = [[5000, 0.1, '12345678901234567891', 191], [777, 0.5, '18446744073709551557', (1 << 24) - 1], [300, 0.9, '42', 3]];
for (const [N, p, key, stream] of DROP) {
  test(`dropout masks bit-identical to lpl_dropout_scale, N ${N} p ${p} stream ${stream}`, { skip: SKIP }, async () => {
    const want = cRef('dropout', [N, p, key, stream]).sec('mask');
    const ewU = (mode) => [N, mode, lo32(key), hi32(key), stream, F(p), F(keepOf(p)), 0, 0, 0, 0, 0];
    const ones = new Float32Array(N).fill(1);
    const y2 = new Float32Array(N).fill(0.25);
    // mode 1 Y = X m; mode 6 Y *= m; mode 2 Y += X m. A folded 2-D grid for mode 6
    // (the engine folds above 65535 workgroups): i = (wg.y nw.x + wg.x) 256 + li.
    const g = Math.ceil(N / 256), fold = [Math.ceil(g / 2), 2, 1];
    const r = await run({ X: ones, Y1: N * 4, Y6: ones, Y2: y2 }, [
      { kind: 'elementwise', u: ewU(1), bind: ['X', 'Y1', 'dummy'], wg: grid1(N) },
      { kind: 'elementwise', u: ewU(6), bind: ['dummy', 'Y6', 'dummy'], wg: fold },
      { kind: 'elementwise', u: ewU(2), bind: ['X', 'Y2', 'dummy'], wg: grid1(N) },
    ], ['Y1', 'Y6', 'Y2']);
    exact('mode 1 (X * mask)', r.Y1, want);
    exact('mode 6 (Y *= mask)', r.Y6, want);
    exact('mode 2 (Y += X * mask)', r.Y2, want.map((m) => Math.fround(0.25 + m)));
    const dropped = want.filter((m) => m === 0).length / N;
    assert.ok(Math.abs(dropped - p) < 4 * Math.sqrt(p * (1 - p) / N) + 1e-9, `dropped fraction ${dropped} for p ${p}`);
  });
}

// ---------------------------------------------------------------- attention
// [T, C, H, p, maxT]: T = 1; hd 32, 80 (> the 64 invocations), 12; T across 64 (the
// key loop's stride) and maxT > T (the lse / P stride the engine uses).
const ATTN = [[1, 64, 2, 0, 1], [9, 96, 3, 0.1, 12], [70, 160, 2, 0.2, 70], [130, 48, 4, 0, 131]];
for (const [T, C, H, p, maxT] of ATTN) {
  test(`attention forward/backward vs lpl_attention_*, T ${T} C ${C} H ${H} dropout ${p}`, { skip: SKIP }, async () => {
    const key = '9876543210987654321', l = 3, stream = l * 4 + 1;
    const ref = cRef('attn', [T, C, H, p, key, stream, 77 + T]);
    const s = (n) => ref.sec(n);
    const hd = C / H;
    const u = (mode) => [T, C, H, hd, F(1 / Math.sqrt(hd)), p > 0 ? 1 : 0, lo32(key), hi32(key), stream, F(p), F(keepOf(p)),
      maxT, mode, 0, 0, 0];
    const bind = ['qkv', 'out', 'lse', 'dout', 'dqkv', 'PM', 'DS'];
    for (const v of variants()) {
      const r = await run({ qkv: s('qkv'), out: T * C * 4, lse: H * maxT * 4, dout: s('dout'), dqkv: T * 3 * C * 4,
        PM: H * maxT * maxT * 4, DS: H * maxT * maxT * 4 }, [0, 1, 2].map((m) => ({ kind: 'attention', u: u(m), bind, wg: [T, H, 1] })),
      ['out', 'lse', 'dqkv'], v);
      near(`out (${v})`, r.out, s('out'), 4e-6);
      const lse = new Float32Array(H * T);
      for (let hh = 0; hh < H; hh++) for (let i = 0; i < T; i++) lse[hh * T + i] = r.lse[hh * maxT + i];
      near(`lse (${v})`, lse, s('lse'), 2e-6);
      near(`dqkv (${v})`, r.dqkv, s('dqkv'), 1e-5);
    }
  });
}

// ---------------------------------------------------------------- embedding
// [T, C, V, cut]: the vocabulary split into two row chunks at cut (r0, r1 of embed.wgsl).
const EMBED = [[1, 32, 2, 1], [7, 288, 301, 150]];
for (const [T, C, V, cut] of EMBED) {
  test(`embedding (Q8_0 and f32 wte, two vocabulary chunks) vs lpl_dequantize_row + wpe, T ${T} C ${C} V ${V}`, { skip: SKIP }, async () => {
    const ref = cRef('embed', [T, C, V, 11 + T]);
    const s = (n) => ref.sec(n);
    const rbq = (C / 32) * 34, tOff = 2;
    const ids = new Uint32Array(tOff + T);
    ids.set(s('tokens'), tOff);
    for (const [q8, wt, want, rb] of [[1, s('wq'), s('out_q8'), rbq], [0, new Uint8Array(s('wf').buffer), s('out_f32'), C * 4]]) {
      const r = await run({ W0: wt.subarray(0, cut * rb), W1: wt.subarray(cut * rb), wpe: s('wpe'), ids, out: T * C * 4 }, [
        { kind: 'embed', u: [T, C, rbq, 0, cut, q8, tOff, 0], bind: ['W0', 'wpe', 'ids', 'out'], wg: [T, 1, 1] },
        { kind: 'embed', u: [T, C, rbq, cut, V, q8, tOff, 0], bind: ['W1', 'wpe', 'ids', 'out'], wg: [T, 1, 1] },
      ], ['out']);
      exact(q8 ? 'q8_0 wte' : 'f32 wte', r.out, want);
    }
  });
}

// ---------------------------------------------------------------- cross-entropy
// [N rows, V, scale]: V = 2, V not a multiple of 256, GPT-2's 50,257; rows flat to peaked.
const CE = [[1, 2, 1], [5, 301, 0.2], [3, 50257, 1 / 3]];
for (const [N, V, scale] of CE) {
  test(`cross-entropy forward/backward vs lpl_crossentropy_*, rows ${N} V ${V}`, { skip: SKIP }, async () => {
    const ref = cRef('ce', [N, V, scale, 5 + N]);
    const s = (n) => ref.sec(n);
    const tOff = 3;
    const ids = new Uint32Array(tOff + N);
    ids.set(s('targets'), tOff);
    const stats0 = new Float32Array([1.5, 2, 0, 0]); // loss sums accumulate (+=)
    const ops = (mode) => [
      { kind: 'loss', u: [N, V, F(scale), mode, tOff, 0, 0, 0], bind: ['logits', 'ids', 'nll', 'stats'], wg: [N, 1, 1] },
      { kind: 'loss', u: [N, V, F(0), 2, 0, 0, 0, 0], bind: ['logits', 'ids', 'nll', 'stats'], wg: [1, 1, 1] },
    ];
    const nllSum = s('nll').reduce((a, b) => a + b, 0);
    for (const v of variants()) {
      // mode 0 (eval): nll only, logits untouched
      let r = await run({ logits: s('logits'), ids, nll: N * 4, stats: stats0 }, ops(0), ['logits', 'nll', 'stats'], v);
      near(`nll (mode 0, ${v})`, r.nll, s('nll'), 2e-6);
      exact(`logits unchanged by mode 0 (${v})`, r.logits, s('logits'));
      near(`stats (nll sum, rows) (${v})`, r.stats.subarray(0, 2), new Float32Array([1.5 + nllSum, 2 + N]), 2e-6);
      // mode 1 (training): logits become scale * (softmax - onehot)
      r = await run({ logits: s('logits'), ids, nll: N * 4, stats: stats0 }, ops(1), ['logits', 'nll'], v);
      near(`nll (mode 1, ${v})`, r.nll, s('nll'), 2e-6);
      near(`dlogits (${v})`, r.logits, s('dlogits'), 2e-6);
    }
  });
}

// ---------------------------------------------------------------- clip + AdamW
// [n, clip, lr, weight decay]: one parameter; not a multiple of 256; many workgroups.
const ADAM = [[1, 0.01, 0.01, 0], [1000, 1.0, 2e-3, 0.1], [20001, 1.0, 1e-4, 0]];
for (const [n, clip, lr, wd] of ADAM) {
  test(`clip-by-norm + AdamW, two steps, vs lpl_clip_grad_norm + lpl_adamw_step, n ${n}`, { skip: SKIP }, async () => {
    const ref = cRef('adamw', [n, clip, lr, wd, 3 + n]);
    const s = (k) => ref.sec(k);
    const V = 50257, lossLimit = 2 * Math.log(V);
    // uniforms as engine.js step(): bias corrections in double of the f32 betas (as
    // lpl_adamw_step), rounded to f32
    const opU = (mode, t) => {
      const bc1 = 1 - Math.pow(Math.fround(0.9), t), bc2 = 1 - Math.pow(Math.fround(0.999), t);
      const decay = Math.fround(1 - Math.fround(Math.fround(lr) * Math.fround(wd)));
      return [n, mode, F(clip), F(lossLimit), F(0.9), F(0.999), F(1e-8), F(Math.fround(lr / bc1)), F(Math.fround(Math.sqrt(bc2))), F(decay), 0, 0];
    };
    const bind = ['P', 'G', 'M', 'V', 'stats'];
    const ops = (t) => [{ kind: 'optim', u: opU(0, t), bind, wg: [1, 1, 1] }, { kind: 'optim', u: opU(1, t), bind, wg: grid1(n) }];
    const zeros = new Float32Array(n);
    const stats = new Float32Array([30, 10, 0, 0]); // loss 3 < 2 ln V: not skipped
    for (const v of variants()) {
      const r1 = await run({ P: s('p0'), G: s('g1'), M: zeros, V: zeros, stats }, ops(1), ['P', 'G', 'M', 'V', 'stats'], v);
      near(`grad norm 1 (${v})`, r1.stats.subarray(2, 3), s('norms').subarray(0, 1), 2e-6);
      assert.equal(r1.stats[3], 0, `step 1 not skipped (${v})`);
      near(`clipped grads 1 (${v})`, r1.G, s('g1_clipped'), 2e-6);
      near(`m 1 (${v})`, r1.M, s('m1'), 2e-6);
      near(`v 1 (${v})`, r1.V, s('v1'), 4e-6);
      // 1e-7: the update is elementwise, so only the f32 uniforms' rounding may differ
      // (a bias correction from the double 0.9 instead of 0.9f showed as 4.6e-7)
      near(`params 1 (${v})`, r1.P, s('p1'), 1e-7);
      // step 2 continues from the C core's state after step 1
      const r2 = await run({ P: s('p1'), G: s('g2'), M: s('m1'), V: s('v1'), stats }, ops(2), ['P', 'G', 'M', 'V', 'stats'], v);
      near(`grad norm 2 (${v})`, r2.stats.subarray(2, 3), s('norms').subarray(1, 2), 2e-6);
      near(`clipped grads 2 (${v})`, r2.G, s('g2_clipped'), 2e-6);
      near(`m 2 (${v})`, r2.M, s('m2'), 2e-6);
      near(`v 2 (${v})`, r2.V, s('v2'), 4e-6);
      near(`params 2 (${v})`, r2.P, s('p2'), 1e-7);
      // Divergence guard: a loss above 2 ln V, or a non-finite gradient, leaves params
      // and moments untouched and flags the step.
      const gInf = s('g1').slice(); gInf[n - 1] = Infinity;
      for (const [what, G, st] of [['loss above 2 ln V', s('g1'), new Float32Array([10 * 2 * lossLimit, 10, 0, 0])],
        ['infinite gradient', gInf, stats]]) {
        const r = await run({ P: s('p1'), G, M: s('m1'), V: s('v1'), stats: st }, ops(2), ['P', 'M', 'V', 'stats'], v);
        assert.equal(r.stats[3], 1, `${what}: skipped flag (${v})`);
        exact(`${what}: params untouched`, r.P, s('p1'));
        exact(`${what}: m untouched`, r.M, s('m1'));
        exact(`${what}: v untouched`, r.V, s('v1'));
      }
    }
  });
}

// ---------------------------------------------------------------- rows (gather / scatter)
// Pure data movement, no C counterpart (gpt2.c indexes the scored rows in place): the
// expected rows are picked here.
test('rows gather and scatter move exactly the listed rows', { skip: SKIP }, async () => {
  const C = 300, T = 9, rows = [0, 3, 4, 8], rOff = 5;
  const src = new Float32Array(T * C).map((_, i) => i * 0.5 - 7);
  const ids = new Uint32Array(rOff + rows.length); ids.set(rows, rOff);
  const packed = new Float32Array(rows.length * C).map((_, i) => -i - 0.25);
  const r = await run({ src, dst: rows.length * C * 4, ids, packed, back: new Float32Array(T * C).fill(9) }, [
    { kind: 'rows', u: [rows.length, C, 0, rOff], bind: ['src', 'dst', 'ids'], wg: [rows.length, 1, 1] },
    { kind: 'rows', u: [rows.length, C, 1, rOff], bind: ['packed', 'back', 'ids'], wg: [rows.length, 1, 1] },
  ], ['dst', 'back']);
  const wantG = new Float32Array(rows.length * C), wantS = new Float32Array(T * C).fill(9);
  rows.forEach((t, k) => { wantG.set(src.subarray(t * C, (t + 1) * C), k * C); wantS.set(packed.subarray(k * C, (k + 1) * C), t * C); });
  exact('gather', r.dst, wantG);
  exact('scatter', r.back, wantS);
});

test('the adapter is SwiftShader (emulation), has subgroups, and the subgroup reductions were checked', { skip: SKIP }, () => {
  assert.equal(gpuInfo.adapterInfo.architecture, 'swiftshader');
  assert.ok(gpuInfo.features.includes('subgroups'), `features: ${gpuInfo.features}`);
  // Otherwise reduce_subgroups.wgsl went unchecked above: the engine's probe rejected
  // this device's subgroup layout.
  assert.equal(gpuInfo.subgroups, true, 'subgroupReductionsUsable(device)');
});
