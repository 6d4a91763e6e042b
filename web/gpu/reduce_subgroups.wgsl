// Workgroup reductions with subgroup operations (WebGPU feature `subgroups`): one
// subgroupAdd / subgroupMax per subgroup, one barrier, then every invocation combines
// the subgroups' partials in the same order (so all get the identical value). Same
// contract as reduce.wgsl. Assumes subgroup k holds invocations k*size .. k*size+size-1
// and n is a multiple of the size (or one partial subgroup holds them all): engine.js
// checks both on the device with a probe kernel before it picks this file.
var<workgroup> wg_red: array<vec2<f32>, 256>;

fn wg_sum2(li: u32, n: u32, v: vec2<f32>) -> vec2<f32> {
  let s = subgroupAdd(v);
  let size = subgroupAdd(1u);
  if (li % size == 0u) { wg_red[li / size] = s; }
  workgroupBarrier();
  var t = wg_red[0];
  for (var k = 1u; k < (n + size - 1u) / size; k++) { t += wg_red[k]; }
  workgroupBarrier();
  return t;
}
fn wg_sum(li: u32, n: u32, v: f32) -> f32 { return wg_sum2(li, n, vec2<f32>(v, 0.0)).x; }
fn wg_max(li: u32, n: u32, v: f32) -> f32 {
  let s = subgroupMax(v);
  let size = subgroupAdd(1u);
  if (li % size == 0u) { wg_red[li / size].x = s; }
  workgroupBarrier();
  var t = wg_red[0].x;
  for (var k = 1u; k < (n + size - 1u) / size; k++) { t = max(t, wg_red[k].x); }
  workgroupBarrier();
  return t;
}
