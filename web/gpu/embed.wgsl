// out[t][c] = wte[tokens[t]][c] + wpe[t][c] for the tokens whose rows lie in this
// chunk of wte, rows [r0, r1) (a large vocabulary is split across bindings).
// q8 != 0: the chunk is Q8_0 blocks (dequantised here), else f32.
struct EM { T: u32, C: u32, rowBytes: u32, r0: u32, r1: u32, q8: u32, tOff: u32, p0: u32 };
@group(0) @binding(0) var<uniform> u: EM;
@group(0) @binding(1) var<storage, read> Wq: array<u32>;
@group(0) @binding(2) var<storage, read> wpe: array<f32>;
@group(0) @binding(3) var<storage, read> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> outb: array<f32>;

fn qbyte(off: u32) -> u32 { return (Wq[off >> 2u] >> ((off & 3u) * 8u)) & 0xffu; }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let t = wg.x;
  let tok = ids[u.tOff + t];
  if (tok < u.r0 || tok >= u.r1) { return; }
  let row = tok - u.r0;
  for (var c = li; c < u.C; c += 256u) {
    var w = 0.0;
    if (u.q8 != 0u) {
      let boff = row * u.rowBytes + (c >> 5u) * 34u;
      let d = unpack2x16float(qbyte(boff) | (qbyte(boff + 1u) << 8u)).x;
      w = d * f32(i32(qbyte(boff + 2u + (c & 31u)) << 24u) >> 24u);
    } else {
      w = bitcast<f32>(Wq[row * u.C + c]);
    }
    outb[t * u.C + c] = w + wpe[t * u.C + c];
  }
}
