// Causal multi-head attention over the real rows (lpl_attention_forward/backward).
// qkv [T][3C]: q | k | v, head h at column h*hd. One workgroup of 64 per (row, head);
// the row's scores live in workgroup memory (T <= 1024).
// mode 0 forward: out[i][h*hd..] = sum_j m_ij p_ij v_j, lse[h*maxT + i] = log-sum-exp of
//   the scaled scores.
// mode 1 backward, per query row i: p_ij from lse, dp_ij = m_ij dO_i.v_j,
//   D = sum p dp, ds = p (dp - D) scale; dq_i = sum_j ds_ij k_j; keeps ds and m p in
//   DS, PM [H][maxT][maxT] for mode 2.
// mode 2 backward, per key row j: dk_j = sum_i ds_ij q_i, dv_j = sum_i m_ij p_ij dO_i.
// m_ij: lpl_dropout_scale(key, stream, h << 32 | i << 16 | j, p), 1 without dropout.
struct AT {
  T: u32, C: u32, H: u32, hd: u32,
  scale: f32, dropOn: u32, keyLo: u32, keyHi: u32,
  stream: u32, p: f32, keep: f32, maxT: u32,
  mode: u32, p0: u32, p1: u32, p2: u32,
};
@group(0) @binding(0) var<uniform> u: AT;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> outb: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(6) var<storage, read_write> PM: array<f32>;
@group(0) @binding(7) var<storage, read_write> DS: array<f32>;

var<workgroup> sc: array<f32, 1024>;

fn keepm(h: u32, i: u32, j: u32) -> f32 {
  if (u.dropOn == 0u) { return 1.0; }
  return dropout_scale(vec2<u32>(u.keyLo, u.keyHi), u.stream, vec2<u32>((i << 16u) | j, h), u.p, u.keep);
}
fn qat(t: u32, h: u32) -> u32 { return t * 3u * u.C + h * u.hd; }
fn kat(t: u32, h: u32) -> u32 { return t * 3u * u.C + u.C + h * u.hd; }
fn vat(t: u32, h: u32) -> u32 { return t * 3u * u.C + 2u * u.C + h * u.hd; }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = wg.x; let h = wg.y; let hd = u.hd;
  if (u.mode == 0u) {
    var mx = -3.0e38;
    for (var j = li; j <= i; j += 64u) {
      var s = 0.0;
      for (var d = 0u; d < hd; d++) { s += qkv[qat(i, h) + d] * qkv[kat(j, h) + d]; }
      sc[j] = s; mx = max(mx, s);
    }
    let m = wg_max(li, 64u, mx) * u.scale;
    var sum = 0.0;
    for (var j = li; j <= i; j += 64u) { let e = exp(sc[j] * u.scale - m); sc[j] = e; sum += e; }
    let tot = wg_sum(li, 64u, sum);
    let inv = 1.0 / tot;
    for (var j = li; j <= i; j += 64u) { sc[j] = sc[j] * inv * keepm(h, i, j); }
    workgroupBarrier();
    for (var d = li; d < hd; d += 64u) {
      var o = 0.0;
      for (var j = 0u; j <= i; j++) { o += sc[j] * qkv[vat(j, h) + d]; }
      outb[i * u.C + h * hd + d] = o;
    }
    if (li == 0u) { lse[h * u.maxT + i] = m + log(tot); }
  } else if (u.mode == 1u) {
    let l = lse[h * u.maxT + i];
    let ob = i * u.C + h * hd;
    var dsum = 0.0;
    for (var j = li; j <= i; j += 64u) {
      var s = 0.0; var dp = 0.0;
      for (var d = 0u; d < hd; d++) {
        s += qkv[qat(i, h) + d] * qkv[kat(j, h) + d];
        dp += dout[ob + d] * qkv[vat(j, h) + d];
      }
      let pj = exp(s * u.scale - l);
      let mj = keepm(h, i, j);
      dp *= mj;
      sc[j] = dp;
      let o = (h * u.maxT + i) * u.maxT + j;
      PM[o] = pj * mj;
      DS[o] = pj;
      dsum += pj * dp;
    }
    let D = wg_sum(li, 64u, dsum);
    for (var j = li; j <= i; j += 64u) {
      let o = (h * u.maxT + i) * u.maxT + j;
      let pj = DS[o];
      let ds = pj * (sc[j] - D) * u.scale;
      DS[o] = ds; sc[j] = ds;
    }
    workgroupBarrier();
    for (var d = li; d < hd; d += 64u) {
      var a = 0.0;
      for (var j = 0u; j <= i; j++) { a += sc[j] * qkv[kat(j, h) + d]; }
      dqkv[qat(i, h) + d] = a;
    }
  } else {
    let j = i;
    for (var d = li; d < hd; d += 64u) {
      var dk = 0.0; var dv = 0.0;
      for (var r = j; r < u.T; r++) {
        let o = (h * u.maxT + r) * u.maxT + j;
        dk += DS[o] * qkv[qat(r, h) + d];
        dv += PM[o] * dout[r * u.C + h * hd + d];
      }
      dqkv[kat(j, h) + d] = dk;
      dqkv[vat(j, h) + d] = dv;
    }
  }
}
