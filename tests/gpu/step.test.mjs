// The whole LoRA training step on WebGPU (SwiftShader) against the C core on tiny GPT-2s.
// Each case runs Dawn (npm webgpu) in tests/gpu/step_run.mjs in a child process, which
// prints GPU and C numbers as JSON: a crash inside Dawn fails that case, not the runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const env = { ...process.env, NODE_TEST_CONTEXT: '', LD_LIBRARY_PATH: ['/usr/lib/chromium', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
function run(args) {
  const out = execFileSync(process.execPath, [path.join(here, 'step_run.mjs'), ...args.map(String)], { env, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}
test('steps with base and LoRA dropout match the C core (L 2, C 96, H 3, V 301, T 9/8/7)', () => {
  const r = run([2, 96, 3, 16, 301, 9, 2, 4, 0.01, 4, 8, 0.1, 0.1, 0.1, 0.1, 1.0, 5]);
  r.gpuLosses.forEach((l, s) => assert.ok(Math.abs(l - r.cLosses[s]) / r.cLosses[s] < 1e-4, `step ${s}: GPU ${l} C ${r.cLosses[s]}`));
  assert.ok(r.gradRel < 1e-3, `gradients rel ${r.gradRel}`);
  assert.ok(r.paramRel < 1e-3, `params rel ${r.paramRel}`);
  assert.ok(Math.abs(r.gpuEval - r.cEval) / r.cEval < 1e-4, `eval GPU ${r.gpuEval} C ${r.cEval}`);
  // trainings on one shared upload of the model: the same losses as with their own
  assert.deepEqual(r.sharedLosses, [r.gpuLosses, r.gpuLosses]);
});
test('T = 1, no dropout', () => {
  const r = run([1, 64, 2, 8, 97, 1, 1, 1, 0.001, 2, 4, 0, 0, 0, 0, 0, 3]);
  assert.ok(Math.abs(r.gpuLosses[0] - r.cLosses[0]) / r.cLosses[0] < 1e-4);
  assert.ok(r.gradRel < 1e-3, `gradients rel ${r.gradRel}`);
});
