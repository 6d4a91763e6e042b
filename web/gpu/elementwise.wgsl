// Element-wise kernels over n elements, 256 per workgroup (grid folded in 2-D).
// mode 0: Y = X + Z (residual)          mode 1: Y = X * mask (dropout)
// mode 2: Y += X * mask                 mode 3: Y = gelu_new(X)
// mode 4: Y = Z * gelu_new'(X)          mode 5: Y += X
// mode 6: Y *= mask (in place)
// mask = lpl_dropout_scale(key, stream, i, p) of element i (common.wgsl).
struct EW {
  n: u32, mode: u32, keyLo: u32, keyHi: u32,
  stream: u32, p: f32, keep: f32, xOff: u32,
  yOff: u32, zOff: u32, pad0: u32, pad1: u32,
};
@group(0) @binding(0) var<uniform> u: EW;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> Z: array<f32>;

const GK: f32 = 0.7978845608028654;
const GC: f32 = 0.044715;
fn tanh_safe(x: f32) -> f32 {
  let y = clamp(2.0 * x, -40.0, 40.0);
  if (abs(x) < 0.3) { return tanh(x); }
  return 1.0 - 2.0 / (exp(y) + 1.0);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * nw.x + wg.x) * 256u + li;
  if (i >= u.n) { return; }
  let yo = u.yOff + i;
  switch (u.mode) {
    case 0u: { Y[yo] = X[u.xOff + i] + Z[u.zOff + i]; }
    case 6u: {
      Y[yo] = Y[yo] * dropout_scale(vec2<u32>(u.keyLo, u.keyHi), u.stream, vec2<u32>(i, 0u), u.p, u.keep);
    }
    case 1u, 2u: {
      let m = dropout_scale(vec2<u32>(u.keyLo, u.keyHi), u.stream, vec2<u32>(i, 0u), u.p, u.keep);
      let v = X[u.xOff + i] * m;
      if (u.mode == 1u) { Y[yo] = v; } else { Y[yo] = Y[yo] + v; }
    }
    case 3u: {
      let x = X[u.xOff + i];
      Y[yo] = 0.5 * x * (1.0 + tanh_safe(GK * (x + GC * x * x * x)));
    }
    case 4u: {
      let x = X[u.xOff + i];
      let th = tanh_safe(GK * (x + GC * x * x * x));
      let g = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * GK * (1.0 + 3.0 * GC * x * x);
      Y[yo] = Z[u.zOff + i] * g;
    }
    default: { Y[yo] = Y[yo] + X[u.xOff + i]; }
  }
}
