// Gradient clipping and AdamW over the adapters (lpl_clip_grad_norm, lpl_adamw_step).
// stats: [0] nll sum, [1] scored rows, [2] grad norm, [3] 1 when the update was skipped.
// mode 0 (one workgroup): stats[2] = sqrt(sum g^2), stats[3] = guard verdict.
// mode 1: clip and one AdamW step per element unless stats[3] != 0.
struct OP {
  n: u32, mode: u32, maxNorm: f32, lossLimit: f32,
  b1: f32, b2: f32, eps: f32, stepSize: f32,
  bc2Sqrt: f32, decay: f32, p0: u32, p1: u32,
};
@group(0) @binding(0) var<uniform> u: OP;
@group(0) @binding(1) var<storage, read_write> P: array<f32>;
@group(0) @binding(2) var<storage, read_write> G: array<f32>;
@group(0) @binding(3) var<storage, read_write> M: array<f32>;
@group(0) @binding(4) var<storage, read_write> Vv: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

fn finite(x: f32) -> bool { return x == x && abs(x) <= 3.4028234e38; }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  if (u.mode == 0u) {
    var s = 0.0;
    for (var i = li; i < u.n; i += 256u) { let g = G[i]; s += g * g; }
    let ss = wg_sum(li, 256u, s);
    if (li == 0u) {
      let norm = sqrt(ss);
      let loss = stats[0] / max(stats[1], 1.0);
      stats[2] = norm;
      stats[3] = select(0.0, 1.0, !finite(norm) || !finite(loss) || loss > u.lossLimit);
    }
    return;
  }
  let i = (wg.y * nw.x + wg.x) * 256u + li;
  if (i >= u.n || stats[3] != 0.0) { return; }
  let norm = stats[2];
  var g = G[i];
  if (u.maxNorm > 0.0 && norm > u.maxNorm) { g *= u.maxNorm / (norm + 1e-6); G[i] = g; }
  let p = P[i] * u.decay;
  let m = M[i] * u.b1 + (1.0 - u.b1) * g;
  let v = Vv[i] * u.b2 + (1.0 - u.b2) * g * g;
  M[i] = m; Vv[i] = v;
  let denom = sqrt(v) / u.bc2Sqrt + u.eps;
  P[i] = p - u.stepSize * (m / denom);
}
