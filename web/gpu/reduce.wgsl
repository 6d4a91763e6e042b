// Workgroup reductions, shared-memory tree (the fallback without `subgroups`).
// reduce_subgroups.wgsl defines the same functions with subgroup operations; engine.js
// prepends one of the two to the kernels that reduce. Each call must be reached by
// every invocation of the workgroup (uniform control flow); n = invocations (a power
// of two <= 256), li = local_invocation_index. Every invocation gets the result; the
// trailing barrier lets the next call reuse the scratch.
var<workgroup> wg_red: array<vec2<f32>, 256>;

fn wg_sum2(li: u32, n: u32, v: vec2<f32>) -> vec2<f32> {
  wg_red[li] = v;
  for (var s = n >> 1u; s > 0u; s >>= 1u) { workgroupBarrier(); if (li < s) { wg_red[li] += wg_red[li + s]; } }
  workgroupBarrier();
  let r = wg_red[0];
  workgroupBarrier();
  return r;
}
fn wg_sum(li: u32, n: u32, v: f32) -> f32 { return wg_sum2(li, n, vec2<f32>(v, 0.0)).x; }
fn wg_max(li: u32, n: u32, v: f32) -> f32 {
  wg_red[li].x = v;
  for (var s = n >> 1u; s > 0u; s >>= 1u) { workgroupBarrier(); if (li < s) { wg_red[li].x = max(wg_red[li].x, wg_red[li + s].x); } }
  workgroupBarrier();
  let r = wg_red[0].x;
  workgroupBarrier();
  return r;
}
