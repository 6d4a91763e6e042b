// Cross-entropy on the packed scored rows (lpl_crossentropy_forward/backward), one
// workgroup of 256 per row streaming over the vocabulary (reductions: reduce*.wgsl).
// mode 0: nll[p0 + r];  mode 1: also logits[r] becomes scale*(softmax - onehot);
// mode 2 (one invocation): stats[0] += sum of nll[p0..p0 + n), stats[1] += n.
// p0 places the rows' losses in a longer buffer: an eval keeps every scored position's
// loss of a batch (one slot of maxT per example) for the run's own reduction.
struct CE { n: u32, V: u32, scale: f32, mode: u32, tOff: u32, p0: u32, p1: u32, p2: u32 };
@group(0) @binding(0) var<uniform> u: CE;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> nll: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;


@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  if (u.mode == 2u) {
    if (li == 0u) {
      var s = 0.0;
      for (var r = 0u; r < u.n; r++) { s += nll[u.p0 + r]; }
      stats[0] += s; stats[1] += f32(u.n);
    }
    return;
  }
  let r = wg.x; let V = u.V; let base = r * V;
  var mx = -3.0e38;
  for (var i = li; i < V; i += 256u) { mx = max(mx, logits[base + i]); }
  let m = wg_max(li, 256u, mx);
  var s = 0.0;
  for (var i = li; i < V; i += 256u) { s += exp(logits[base + i] - m); }
  let tot = wg_sum(li, 256u, s);
  let l = m + log(tot);
  let tg = ids[u.tOff + r];
  if (li == 0u) { nll[u.p0 + r] = l - logits[base + tg]; }
  storageBarrier();
  workgroupBarrier();
  if (u.mode == 1u) {
    for (var i = li; i < V; i += 256u) {
      var d = exp(logits[base + i] - l) * u.scale;
      if (i == tg) { d -= u.scale; }
      logits[base + i] = d;
    }
  }
}
