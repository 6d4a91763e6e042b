// The WebGPU engine's kernels against the C core (tests/support/gpu_ref.c `kernels`) on
// awkward shapes: T = 1, widths that are not a multiple of the 64-wide tile, row counts
// that take each matmul tiling (16, 32 and 64 rows: matmul.wgsl RM), and weight rows
// whose scales differ by 40x. The Q8_0 linear forward and input gradient (dequantised in
// the shader) and the same product from an f32 B, LayerNorm forward and backward,
// gelu_new forward and backward. Dawn (npm webgpu, SwiftShader) runs them all in
// tests/gpu/kernels_run.mjs, one child process (one device, one pipeline compilation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const env = { ...process.env, NODE_TEST_CONTEXT: '', LD_LIBRARY_PATH: ['/usr/lib/chromium', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
const SHAPES = [[1, 37, 32, 'T = 1, 37 outputs'], [17, 65, 64, '32-row tiles, 65 outputs'],
  [33, 100, 96, '64-row tiles, 33 rows'], [70, 130, 160, 'two row tiles, 130 outputs']];
let results = null;
function run(M, N, K) {
  if (!results) {
    const out = execFileSync(process.execPath, [path.join(here, 'kernels_run.mjs'), ...SHAPES.map((s) => s.slice(0, 3).join(','))],
      { env, encoding: 'utf8' });
    results = JSON.parse(out.trim().split('\n').pop());
  }
  return results[[M, N, K].join(',')];
}

for (const [M, N, K, what] of SHAPES) {
  test(`kernels match the C core: M ${M}, N ${N}, K ${K} (${what})`, { timeout: 180000 }, (t) => {
    const e = run(M, N, K);
    t.diagnostic(JSON.stringify(e));
    for (const k of ['y', 'y_f32', 'dx', 'dx_f32', 'ln_y', 'ln_dx', 'gelu_y', 'gelu_dx'])
      assert.ok(e[k] < 1e-5, `${k}: max |gpu - c| / max |c| = ${e[k]}`);
  });
}
