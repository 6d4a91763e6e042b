// LayerNorm over rows of C, one workgroup of 256 per row; sums by wg_sum (reduce.wgsl
// or reduce_subgroups.wgsl).
// mode 0 (forward): Y = (X - mean) * rstd * W + B, stats[t] = mean, stats[sOff + t] = rstd.
// mode 1 (backward): Y += dX given dY, X, W and the forward's stats (lpl_layernorm_backward).
struct LN { T: u32, C: u32, eps: f32, mode: u32, sOff: u32, p0: u32, p1: u32, p2: u32 };
@group(0) @binding(0) var<uniform> u: LN;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
@group(0) @binding(5) var<storage, read_write> S: array<f32>;
@group(0) @binding(6) var<storage, read> dY: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let t = wg.x;
  let C = u.C;
  let base = t * C;
  if (u.mode == 0u) {
    var s = 0.0;
    for (var i = li; i < C; i += 256u) { s += X[base + i]; }
    let m = wg_sum(li, 256u, s) / f32(C);
    var v = 0.0;
    for (var i = li; i < C; i += 256u) { let d = X[base + i] - m; v += d * d; }
    let rs = 1.0 / sqrt(wg_sum(li, 256u, v) / f32(C) + u.eps);
    for (var i = li; i < C; i += 256u) { Y[base + i] = (X[base + i] - m) * rs * W[i] + B[i]; }
    if (li == 0u) { S[t] = m; S[u.sOff + t] = rs; }
  } else {
    let m = S[t]; let rs = S[u.sOff + t];
    var a = 0.0; var b = 0.0;
    for (var i = li; i < C; i += 256u) {
      let xh = (X[base + i] - m) * rs; let dn = dY[base + i] * W[i];
      a += dn; b += dn * xh;
    }
    let ab = wg_sum2(li, 256u, vec2<f32>(a, b));
    let mdn = ab.x / f32(C); let mdnx = ab.y / f32(C);
    for (var i = li; i < C; i += 256u) {
      let xh = (X[base + i] - m) * rs; let dn = dY[base + i] * W[i];
      Y[base + i] = Y[base + i] + (dn - mdn - xh * mdnx) * rs;
    }
  }
}
