// Moves rows of C floats through an index list (the scored rows of a sequence).
// mode 0 gather: dst[k] = src[rows[k]];  mode 1 scatter: dst[rows[k]] = src[k].
struct RW { n: u32, C: u32, mode: u32, rOff: u32 };
@group(0) @binding(0) var<uniform> u: RW;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> ids: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let k = wg.x; let r = ids[u.rOff + k];
  for (var c = li; c < u.C; c += 256u) {
    if (u.mode == 0u) { dst[k * u.C + c] = src[r * u.C + c]; } else { dst[r * u.C + c] = src[k * u.C + c]; }
  }
}
