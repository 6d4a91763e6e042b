// C[m][n] = alpha * sum_k A(m,k) B(k,n) (+ C if acc) (+ bias[n] if biasOn).
// A(m,k) = A[aOff + m*sam + k*sak] (f32). B is f32, B(k,n) = Bf[bOff + k*sbk + n*sbn],
// or a Q8_0 matrix W (rows x cols, rowBytes per row, ggml blocks of 34 bytes) read
// as W[bOff + n][k] (bmode 1: Y = X W^T, the forward) or W[bOff + k][n] (bmode 2:
// dX = dY W, the input gradient; bOff is then a first row: a slice of the LM head),
// dequantised while the tile is loaded (never stored as f32).
// Tiling: 64x64 outputs per workgroup of 16x16 invocations, 4x4 outputs each in
// registers, K in steps of 16 through workgroup-shared tiles held as vec4 (a row of
// 4 outputs' operands per read).
// Loads: A and an f32 B are bound as vec4 arrays. When the operand's contiguous axis
// (stride 1) is k or m/n, its offset and other stride are multiples of 4 and that
// extent is a multiple of 4, each invocation loads one aligned vec4 per tile; otherwise
// it falls back to 4 scalar reads (a component of a vec4). A Q8_0 B is always read 4
// codes at a time along its rows (cols % 32 == 0): one u32 (or two halves, the codes
// of a block start 2 bytes in) and one fp16 scale per 4 weights.
// Every output's sum runs over k in ascending order, one multiply-add per k, whichever
// load path ran.
struct MM {
  M: u32, N: u32, K: u32, aOff: u32,
  sam: u32, sak: u32, bOff: u32, sbk: u32,
  sbn: u32, cOff: u32, ldc: u32, acc: u32,
  alpha: f32, bmode: u32, rowBytes: u32, biasOn: u32,
};
@group(0) @binding(0) var<uniform> p: MM;
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> Bf: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> Bq: array<u32>;
@group(0) @binding(4) var<storage, read_write> Cm: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> As: array<vec4<f32>, 256>; // [TK][TM/4]
var<workgroup> Bs: array<vec4<f32>, 256>; // [TK][TN/4]

fn af(i: u32) -> f32 { return A[i >> 2u][i & 3u]; }
fn bf(i: u32) -> f32 { return Bf[i >> 2u][i & 3u]; }

// fp16 scale of the Q8_0 block at byte offset boff (even: 34-byte blocks, even rowBytes).
fn q8scale(boff: u32) -> f32 {
  let w = Bq[boff >> 2u];
  return unpack2x16float(select(w & 0xffffu, w >> 16u, (boff & 2u) != 0u)).x;
}
// The 4 int8 codes at byte offset off (even), sign-extended.
fn q8codes(off: u32) -> vec4<f32> {
  let i = off >> 2u;
  var w = Bq[i];
  if ((off & 2u) != 0u) { w = (w >> 16u) | (Bq[i + 1u] << 16u); }
  return vec4<f32>(f32(i32(w << 24u) >> 24u), f32(i32(w << 16u) >> 24u), f32(i32(w << 8u) >> 24u), f32(i32(w) >> 24u));
}
// W[row][col..col+3] (col % 4 == 0: the 4 share a block).
fn q8x4(row: u32, col: u32) -> vec4<f32> {
  let boff = row * p.rowBytes + (col >> 5u) * 34u;
  return q8scale(boff) * q8codes(boff + 2u + (col & 31u));
}

// Tile element (kk, x) of an operand loaded as a vec4 along k: thread t takes row
// x = t / 4 and k = 4 (t % 4) .. +3.
fn put_k4(T: ptr<workgroup, array<vec4<f32>, 256>>, x: u32, kq: u32, v: vec4<f32>) {
  for (var e = 0u; e < 4u; e++) { (*T)[(kq + e) * 16u + (x >> 2u)][x & 3u] = v[e]; }
}

fn load_a(tid: u32, m0: u32, k0: u32) {
  let k4 = p.sak == 1u && (p.aOff & 3u) == 0u && (p.sam & 3u) == 0u && (p.K & 3u) == 0u;
  let m4 = p.sam == 1u && (p.aOff & 3u) == 0u && (p.sak & 3u) == 0u && (p.M & 3u) == 0u;
  if (k4) {
    let mm = tid >> 2u; let kq = (tid & 3u) * 4u;
    let gm = m0 + mm; let gk = k0 + kq;
    var v = vec4<f32>(0.0);
    if (gm < p.M && gk < p.K) { v = A[(p.aOff + gm * p.sam + gk) >> 2u]; }
    put_k4(&As, mm, kq, v);
  } else if (m4) {
    let mq = (tid & 15u) * 4u; let kk = tid >> 4u;
    let gm = m0 + mq; let gk = k0 + kk;
    var v = vec4<f32>(0.0);
    if (gm < p.M && gk < p.K) { v = A[(p.aOff + gk * p.sak + gm) >> 2u]; }
    As[kk * 16u + (mq >> 2u)] = v;
  } else {
    for (var e = 0u; e < 4u; e++) {
      let idx = tid * 4u + e;          // 0..1023
      let kk = idx / TM; let mm = idx % TM;
      let gm = m0 + mm; let gk = k0 + kk;
      var a = 0.0;
      if (gm < p.M && gk < p.K) { a = af(p.aOff + gm * p.sam + gk * p.sak); }
      As[kk * 16u + (mm >> 2u)][mm & 3u] = a;
    }
  }
}

fn load_b(tid: u32, n0: u32, k0: u32) {
  if (p.bmode == 1u) { // W[n][k]: 4 codes along k (K % 32 == 0)
    let nn = tid >> 2u; let kq = (tid & 3u) * 4u;
    let gn = n0 + nn; let gk = k0 + kq;
    var v = vec4<f32>(0.0);
    if (gn < p.N && gk < p.K) { v = q8x4(p.bOff + gn, gk); }
    put_k4(&Bs, nn, kq, v);
    return;
  }
  if (p.bmode == 2u) { // W[k][n]: 4 codes along n (N = cols, % 32 == 0)
    let nq = (tid & 15u) * 4u; let kk = tid >> 4u;
    let gn = n0 + nq; let gk = k0 + kk;
    var v = vec4<f32>(0.0);
    if (gn < p.N && gk < p.K) { v = q8x4(p.bOff + gk, gn); }
    Bs[kk * 16u + (nq >> 2u)] = v;
    return;
  }
  let k4 = p.sbk == 1u && (p.bOff & 3u) == 0u && (p.sbn & 3u) == 0u && (p.K & 3u) == 0u;
  let n4 = p.sbn == 1u && (p.bOff & 3u) == 0u && (p.sbk & 3u) == 0u && (p.N & 3u) == 0u;
  if (k4) {
    let nn = tid >> 2u; let kq = (tid & 3u) * 4u;
    let gn = n0 + nn; let gk = k0 + kq;
    var v = vec4<f32>(0.0);
    if (gn < p.N && gk < p.K) { v = Bf[(p.bOff + gn * p.sbn + gk) >> 2u]; }
    put_k4(&Bs, nn, kq, v);
  } else if (n4) {
    let nq = (tid & 15u) * 4u; let kk = tid >> 4u;
    let gn = n0 + nq; let gk = k0 + kk;
    var v = vec4<f32>(0.0);
    if (gn < p.N && gk < p.K) { v = Bf[(p.bOff + gk * p.sbk + gn) >> 2u]; }
    Bs[kk * 16u + (nq >> 2u)] = v;
  } else {
    for (var e = 0u; e < 4u; e++) {
      let idx = tid * 4u + e;
      let kk = idx / TN; let nn = idx % TN;
      let gn = n0 + nn; let gk = k0 + kk;
      var b = 0.0;
      if (gn < p.N && gk < p.K) { b = bf(p.bOff + gk * p.sbk + gn * p.sbn); }
      Bs[kk * 16u + (nn >> 2u)][nn & 3u] = b;
    }
  }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) li: vec3<u32>) {
  let m0 = wg.y * TM; let n0 = wg.x * TN;
  let tid = li.y * 16u + li.x;
  // acc[i] holds outputs (m0 + 4 li.y + i, n0 + 4 li.x .. +3)
  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    load_a(tid, m0, k0);
    load_b(tid, n0, k0);
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let av = As[kk * 16u + li.y];
      let bv = Bs[kk * 16u + li.x];
      acc[0] += av.x * bv; acc[1] += av.y * bv; acc[2] += av.z * bv; acc[3] += av.w * bv;
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
      var v = p.alpha * acc[i][j];
      if (p.biasOn != 0u) { v += bias[gn]; }
      if (p.acc != 0u) { v += Cm[o]; }
      Cm[o] = v;
    }
  }
}
