// Child of kernels.test.mjs: for each shape M,N,K of its arguments, runs `gpu_ref
// kernels M N K` (the C core's Q8_0 linear forward and input gradient, LayerNorm forward
// and backward, gelu_new forward and backward, on rows whose scales differ by 40x) and
// the same kernels of the WebGPU engine on the same inputs; prints one JSON line: per
// shape, max |gpu - c| / max |c| per output. One device and one set of pipelines for all.
import { gpu, cRef, relErr } from './support.mjs';
import { requestGpuDevice, createGpuTrainer } from '../../web/gpu/engine.js';

// Dawn's gpu object must outlive the device (collected, Dawn aborts): kept in a global.
globalThis.lplGpu = await gpu();
const { device } = await requestGpuDevice(globalThis.lplGpu);

// The kernels live in a trainer: a one-layer model of 32 wide just to have its pipelines.
const C0 = 32, V0 = 32;
const f = (n, v = 0) => new Float32Array(n).fill(v);
const q8 = (rows, cols) => ({ type: 'q8_0', rows, cols, data: new Uint8Array(rows * cols / 32 * 34) });
const shapes = [[3 * C0, C0], [C0, C0], [4 * C0, C0], [C0, 4 * C0]];
const tr = await createGpuTrainer(device, {
  config: { n_layer: 1, n_embd: C0, n_head: 1, n_ctx: 4, n_vocab: V0 },
  tensors: { wte: q8(V0, C0), wpe: f(4 * C0), lnf_w: f(C0, 1), lnf_b: f(C0),
    blocks: [{ ln1_w: f(C0, 1), ln1_b: f(C0), ln2_w: f(C0, 1), ln2_b: f(C0), w: shapes.map(([o, i]) => q8(o, i)),
      b: shapes.map(([o]) => f(o)) }] },
  lora: { r: 1, scaling: 1, dropout: 0, modules: [], params: new Float32Array(0) }, train: { maxT: 4, maxBatch: 1 } });
const I = tr._internals;
const ST = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const bufs = [];
function upload(data) {
  const bytes = Math.ceil(Math.max(16, data.byteLength) / 16) * 16;
  const b = device.createBuffer({ size: bytes, usage: ST });
  const tmp = new Uint8Array(bytes);
  tmp.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  device.queue.writeBuffer(b, 0, tmp);
  bufs.push(b);
  return b;
}
const zeros = (n) => upload(new Float32Array(n));
function run(fn) { I.begin(); fn(); I.submit(); }

// Q8_0 W as f32 on the host (the f32 B path must agree with the Q8_0 path).
function dequant(q, rows, cols) {
  const out = new Float32Array(rows * cols), dv = new DataView(q.buffer, q.byteOffset, q.byteLength);
  const half = (h) => { const s = h >> 15 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
    return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15); };
  for (let r = 0; r < rows; r++) for (let b = 0; b < cols / 32; b++) {
    const o = (r * cols / 32 + b) * 34, d = Math.fround(half(dv.getUint16(o, true)));
    for (let i = 0; i < 32; i++) out[r * cols + b * 32 + i] = Math.fround(d * dv.getInt8(o + 2 + i));
  }
  return out;
}

async function shape(M, N, K) {
  const sec = cRef('kernels', [M, N, K]).sec;
  const rb = K / 32 * 34;
  const W = { buf: upload(sec('w')), rb };
  const Wf = upload(dequant(sec('w'), N, K));
  const x = upload(sec('x')), dy = upload(sec('dy')), bias = upload(sec('b'));
  const y = zeros(M * N), yf = zeros(M * N), dx = zeros(M * K), dxf = zeros(M * K);
  run(() => {
    I.mm({ M, N, K, a: x, sam: K, sak: 1, q: W, bmode: 1, c: y, ldc: N, bias });
    I.mm({ M, N, K, a: x, sam: K, sak: 1, b: Wf, sbk: 1, sbn: K, c: yf, ldc: N, bias });
    I.mm({ M, N: K, K: N, a: dy, sam: N, sak: 1, q: W, bmode: 2, c: dx, ldc: K });
    I.mm({ M, N: K, K: N, a: dy, sam: N, sak: 1, b: Wf, sbk: K, sbn: 1, c: dxf, ldc: K });
  });
  // LayerNorm over rows of K; backward accumulates into a zeroed dX
  const lw = upload(sec('ln_w')), lb = upload(sec('ln_b')), ly = zeros(M * K), st = zeros(2 * M);
  const ldo = upload(sec('ln_dout')), ldx = zeros(M * K);
  run(() => {
    I.op('layernorm', [M, K, I.F(1e-5), 0, M, 0, 0, 0], [x, lw, lb, ly, st, I.A.dummy], [M, 1, 1]);
    I.op('layernorm', [M, K, I.F(1e-5), 1, M, 0, 0, 0], [x, lw, lb, ldx, st, ldo], [M, 1, 1]);
  });
  // gelu_new on 3x (both tails), as gpu_ref
  const x3 = upload(sec('x').map((v) => Math.fround(v * 3)));
  const gy = zeros(M * K), gd = zeros(M * K);
  run(() => { I.ew(3, M * K, x3, gy); I.ew(4, M * K, x3, gd, ldo); });

  const read = (b, n) => tr.readBuffer(b, n);
  return {
    y: relErr(await read(y, M * N), sec('y')), y_f32: relErr(await read(yf, M * N), sec('y')),
    dx: relErr(await read(dx, M * K), sec('dx')), dx_f32: relErr(await read(dxf, M * K), sec('dx')),
    ln_y: relErr(await read(ly, M * K), sec('ln_y')), ln_dx: relErr(await read(ldx, M * K), sec('ln_dx')),
    gelu_y: relErr(await read(gy, M * K), sec('gelu_y')), gelu_dx: relErr(await read(gd, M * K), sec('gelu_dx')),
  };
}

const out = {};
for (const a of process.argv.slice(2)) out[a] = await shape(...a.split(',').map(Number));
for (const b of bufs) b.destroy();
tr.destroy();
device.destroy();
console.log(JSON.stringify(out));
