// C[m][n] = alpha * sum_k A(m,k) B(k,n) (+ C if acc) (+ bias[n] if biasOn).
// A(m,k) = A[aOff + m*sam + k*sak] (f32). B is f32, B(k,n) = Bf[bOff + k*sbk + n*sbn],
// or a Q8_0 matrix W (rows x cols, rowBytes per row, ggml blocks of 34 bytes) read
// as W[bOff + n][k] (bmode 1: Y = X W^T, the forward) or W[bOff + k][n] (bmode 2:
// dX = dY W, the input gradient; bOff is then a first row), dequantised while the
// tile is loaded (never stored as f32).
// Tiling: 64x64 outputs per workgroup of 16x16 invocations, 4x4 outputs each in
// registers (4 rows: RM below), K in steps of 16 through workgroup-shared tiles. A Q8_0 tile is loaded as
// runs of 4 consecutive weights of one row (one fp16 scale, one packed word of int8s
// per run: a 16-wide K step never crosses a 32-weight block) rather than weight by
// weight, which cut the LM head's time about 4x under SwiftShader.
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

// RM output rows per invocation (pipeline constant 4, 2 or 1): a workgroup covers TM =
// 16 RM rows, so the LM head's few scored rows (M <= 32 or 16) do not compute a
// 64-row tile of which most is padding.
override RM: u32 = 4u;
override TM: u32 = 16u * RM;
const TN: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> As: array<f32, 1024>; // [TK][TM], TM <= 64
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]

// 4 consecutive weights W[row][col..col+3] (col % 4 == 0, same block), dequantised.
fn q8x4(row: u32, col: u32) -> vec4<f32> {
  let boff = row * p.rowBytes + (col >> 5u) * 34u;     // even: 34-byte blocks
  let dw = Bq[boff >> 2u] >> ((boff & 2u) * 8u);        // the fp16 scale's word
  let d = unpack2x16float(dw & 0xffffu).x;
  let o = boff + 2u + (col & 31u);                      // even, maybe 2 mod 4
  var w = Bq[o >> 2u];
  if ((o & 2u) != 0u) { w = (w >> 16u) | (Bq[(o >> 2u) + 1u] << 16u); }
  let q = vec4<i32>(i32(w << 24u) >> 24u, i32(w << 16u) >> 24u, i32(w << 8u) >> 24u, i32(w) >> 24u);
  return d * vec4<f32>(q);
}
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) li: vec3<u32>) {
  let m0 = wg.y * TM; let n0 = wg.x * TN;
  let tid = li.y * 16u + li.x;
  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    // each invocation loads up to 4 elements of each tile
    for (var e = 0u; e < 4u; e++) {
      let idx = tid * 4u + e;          // 0..1023
      if (idx < TK * TM) {
        let kk = idx / TM; let mm = idx % TM;
        let gm = m0 + mm; let gk = k0 + kk;
        var a = 0.0;
        if (gm < p.M && gk < p.K) { a = A[p.aOff + gm * p.sam + gk * p.sak]; }
        As[idx] = a;
      }
      if (p.bmode == 0u) {
        let kk = idx / TN; let nn = idx % TN;
        let gn = n0 + nn; let gk = k0 + kk;
        var b = 0.0;
        if (gn < p.N && gk < p.K) { b = Bf[p.bOff + gk * p.sbk + gn * p.sbn]; }
        Bs[idx] = b;
      }
    }
    if (p.bmode == 1u) {               // B(k,n) = W[n][k]: row n, 4 consecutive k
      let nn = tid >> 2u; let kq = (tid & 3u) * 4u;
      let gn = n0 + nn; let gk = k0 + kq;
      var b = vec4<f32>(0.0);
      if (gn < p.N && gk < p.K) { b = q8x4(p.bOff + gn, gk); }   // K = cols: a multiple of 32
      for (var i = 0u; i < 4u; i++) { Bs[(kq + i) * TN + nn] = b[i]; }
    } else if (p.bmode == 2u) {        // B(k,n) = W[k][n]: row k, 4 consecutive n
      let kk = tid >> 4u; let nq = (tid & 15u) * 4u;
      let gk = k0 + kk; let gn = n0 + nq;
      var b = vec4<f32>(0.0);
      if (gk < p.K && gn < p.N) { b = q8x4(p.bOff + gk, gn); }   // N = cols: a multiple of 32
      for (var i = 0u; i < 4u; i++) { Bs[kk * TN + nq + i] = b[i]; }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let b4 = vec4<f32>(Bs[kk * TN + li.x * 4u], Bs[kk * TN + li.x * 4u + 1u],
                         Bs[kk * TN + li.x * 4u + 2u], Bs[kk * TN + li.x * 4u + 3u]);
      for (var i = 0u; i < RM; i++) { acc[i] += As[kk * TM + li.y * RM + i] * b4; }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < RM; i++) {
    let gm = m0 + li.y * RM + i;
    if (gm >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let gn = n0 + li.x * 4u + j;
      if (gn >= p.N) { continue; }
      let o = p.cOff + gm * p.ldc + gn;
      var v = p.alpha * acc[i][j];
      if (p.biasOn != 0u) { v += bias[gn]; }
      if (p.acc != 0u) { v += Cm[o]; }
      Cm[o] = v;
    }
  }
}
