// C[m][n] = alpha * sum_k A(m,k) B(k,n) (+ C if acc) (+ bias[n] if biasOn).
// A(m,k) = A[aOff + m*sam + k*sak] (f32). B is f32, B(k,n) = Bf[bOff + k*sbk + n*sbn],
// or a Q8_0 matrix W (rows x cols, rowBytes per row, ggml blocks of 34 bytes) read
// as W[n][k] (bmode 1: Y = X W^T, the forward) or W[k][n] (bmode 2: dX = dY W, the
// input gradient), dequantised while the tile is loaded (never stored as f32).
// Tiling: 64x64 outputs per workgroup of 16x16 invocations, 4x4 outputs each in
// registers, K in steps of 16 through workgroup-shared tiles.
struct MM {
  M: u32, N: u32, K: u32, aOff: u32,
  sam: u32, sak: u32, bOff: u32, sbk: u32,
  sbn: u32, cOff: u32, ldc: u32, acc: u32,
  alpha: f32, bmode: u32, rowBytes: u32, biasOn: u32,
};
@group(0) @binding(0) var<uniform> p: MM;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> Bf: array<f32>;
@group(0) @binding(3) var<storage, read> Bq: array<u32>;
@group(0) @binding(4) var<storage, read_write> Cm: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> As: array<f32, 1024>; // [TK][TM]
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]

fn qbyte(off: u32) -> u32 { return (Bq[off >> 2u] >> ((off & 3u) * 8u)) & 0xffu; }
// W[row][col] of the Q8_0 matrix: fp16 scale of the block times the int8.
fn q8(row: u32, col: u32) -> f32 {
  let boff = row * p.rowBytes + (col >> 5u) * 34u;
  let dbits = qbyte(boff) | (qbyte(boff + 1u) << 8u);
  let d = unpack2x16float(dbits).x;
  let q = i32(qbyte(boff + 2u + (col & 31u)) << 24u) >> 24u;
  return d * f32(q);
}
fn bval(k: u32, n: u32) -> f32 {
  if (p.bmode == 0u) { return Bf[p.bOff + k * p.sbk + n * p.sbn]; }
  if (p.bmode == 1u) { return q8(n, k); }
  return q8(k, n);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) li: vec3<u32>) {
  let m0 = wg.y * TM; let n0 = wg.x * TN;
  let tid = li.y * 16u + li.x;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    // each invocation loads 4 elements of each tile
    for (var e = 0u; e < 4u; e++) {
      let idx = tid * 4u + e;          // 0..1023
      let kk = idx / TM; let mm = idx % TM;
      let gm = m0 + mm; let gk = k0 + kk;
      var a = 0.0;
      if (gm < p.M && gk < p.K) { a = A[p.aOff + gm * p.sam + gk * p.sak]; }
      As[kk * TM + mm] = a;
      let gn = n0 + mm;
      var b = 0.0;
      if (gn < p.N && gk < p.K) { b = bval(gk, gn); }
      Bs[kk * TN + mm] = b;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var av: array<f32, 4>; var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { av[i] = As[kk * TM + li.y * 4u + i]; bv[i] = Bs[kk * TN + li.x * 4u + i]; }
      for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += av[i] * bv[j]; } }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let gm = m0 + li.y * 4u + i;
    if (gm >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let gn = n0 + li.x * 4u + j;
      if (gn >= p.N) { continue; }
      let o = p.cOff + gm * p.ldc + gn;
      var v = p.alpha * acc[i * 4u + j];
      if (p.biasOn != 0u) { v += bias[gn]; }
      if (p.acc != 0u) { v += Cm[o]; }
      Cm[o] = v;
    }
  }
}
