// Shared helpers, prepended to every kernel file by engine.js.
// 64-bit integers as vec2<u32>(lo, hi): the dropout hash (lpl_mix64 /
// lpl_dropout_scale in src/internal/lpl/core/rng.h) bit for bit.

fn mul32w(a: u32, b: u32) -> vec2<u32> { // full 64-bit product of two u32
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2<u32>((p00 & 0xffffu) | (mid << 16u), p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}
fn mul64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = mul32w(a.x, b.x);
  return vec2<u32>(lo.x, lo.y + a.x * b.y + a.y * b.x);
}
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.x + b.x;
  return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}
fn shr64(a: vec2<u32>, s: u32) -> vec2<u32> { // 0 < s < 32
  return vec2<u32>((a.x >> s) | (a.y << (32u - s)), a.y >> s);
}
fn mix64(z0: vec2<u32>) -> vec2<u32> {
  var z = z0;
  z = mul64(z ^ shr64(z, 30u), vec2<u32>(0x1ce4e5b9u, 0xbf58476du));
  z = mul64(z ^ shr64(z, 27u), vec2<u32>(0x133111ebu, 0x94d049bbu));
  return z ^ shr64(z, 31u);
}
// lpl_dropout_scale(key, stream, idx, p): 0 with probability p, else keep (= 1/(1-p)
// rounded to f32 on the host). stream < 2^24 so stream << 40 is (0, stream << 8).
fn dropout_scale(key: vec2<u32>, stream: u32, idx: vec2<u32>, p: f32, keep: f32) -> f32 {
  let h = mix64(key ^ mix64(vec2<u32>(0u, stream << 8u) ^ idx));
  let u = f32(h.y >> 8u) * (1.0 / 16777216.0);
  return select(keep, 0.0, u < p);
}
