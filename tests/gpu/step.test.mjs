// The whole LoRA training step on WebGPU (SwiftShader) against the C core on a tiny
// GPT-2: adapter gradients of a step, several AdamW steps' losses, the final
// adapters and an eval loss, with base-model and LoRA dropout on (same masks).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gpu, cRef, stepInputs, relErr } from './support.mjs';
import { requestGpuDevice, createGpuTrainer } from '../../web/gpu/engine.js';

let device;
before(async () => { ({ device } = await requestGpuDevice(await gpu())); });
after(() => device.destroy());

async function runCase(args) {
  const ref = cRef('step', args);
  const inp = stepInputs(ref);
  const tr = await createGpuTrainer(device, inp);
  const losses = [], norms = [];
  let grads1 = null;
  for (let s = 0; s < inp.batches.length; s++) {
    const r = await tr.step(inp.batches[s], ref.meta.lr);
    assert.equal(r.skipped, false);
    losses.push(r.loss); norms.push(r.gradNorm);
    if (s === 0) grads1 = await tr.grads();
  }
  const params = await tr.readAdapters();
  const ev = await tr.evalLoss(inp.batches[0]);
  tr.destroy();
  return { ref, losses, norms, grads1, params, ev };
}

test('training steps with dropout match the C core (tiny GPT-2, T = 9 and 7, odd widths)', async () => {
  // L C H CTX V T NB STEPS LR R ALPHA LORA_P EMBD_P ATTN_P RESID_P CLIP SEED
  const { ref, losses, norms, grads1, params, ev } = await runCase([2, 96, 3, 16, 301, 9, 2, 4, 0.01, 4, 8, 0.1, 0.1, 0.1, 0.1, 1.0, 5]);
  const cl = ref.sec('losses'), cn = ref.sec('norms');
  for (let s = 0; s < cl.length; s++) {
    assert.ok(Math.abs(losses[s] - cl[s]) / cl[s] < 1e-4, `step ${s} loss GPU ${losses[s]} C ${cl[s]}`);
    assert.ok(Math.abs(norms[s] - cn[s]) / cn[s] < 1e-3, `step ${s} grad norm GPU ${norms[s]} C ${cn[s]}`);
  }
  const g = relErr(grads1, ref.sec('grads1'));
  assert.ok(g < 1e-3, `first step's adapter gradients: relative error ${g}`);
  const p = relErr(params, ref.sec('params_final'));
  assert.ok(p < 1e-3, `final adapters: relative error ${p}`);
  const e = ref.sec('eval')[0];
  assert.ok(Math.abs(ev.loss - e) / e < 1e-4, `eval loss GPU ${ev.loss} C ${e}`);
  console.log(`# losses GPU ${losses.map((x) => x.toFixed(6))} C ${Array.from(cl, (x) => x.toFixed(6))}; grads rel ${g.toExponential(2)}; params rel ${p.toExponential(2)}`);
});

test('T = 1 and no dropout: one step matches', async () => {
  const { ref, losses, grads1 } = await runCase([1, 64, 2, 8, 97, 1, 1, 1, 0.001, 2, 4, 0, 0, 0, 0, 0, 3]);
  const cl = ref.sec('losses');
  assert.ok(Math.abs(losses[0] - cl[0]) / cl[0] < 1e-4, `loss GPU ${losses[0]} C ${cl[0]}`);
  const g = relErr(grads1, ref.sec('grads1'));
  assert.ok(g < 1e-3, `gradients: relative error ${g}`);
});
