// Child of step.test.mjs: runs gpu_ref step ARGS and the WebGPU engine on the same
// inputs; prints one JSON line with both sides' numbers.
import { gpu, cRef, stepInputs, relErr } from './support.mjs';
import { requestGpuDevice, createGpuTrainer, createGpuModel } from '../../web/gpu/engine.js';
// Dawn's gpu object must outlive the device: once collected, Dawn aborts
// (std::system_error) in a later callback. Kept in a global until the end.
globalThis.lplGpu = await gpu();
const { device } = await requestGpuDevice(globalThis.lplGpu);
const ref = cRef('step', process.argv.slice(2));
const inp = stepInputs(ref);
const tr = await createGpuTrainer(device, inp);
const gpuLosses = [];
let gradRel = 0;
for (let s = 0; s < inp.batches.length; s++) {
  gpuLosses.push((await tr.step(inp.batches[s], ref.meta.lr)).loss);
  if (s === 0) gradRel = relErr(await tr.grads(), ref.sec('grads1'));
}
const paramRel = relErr(await tr.readAdapters(), ref.sec('params_final'));
const gpuEval = (await tr.evalLoss(inp.batches[0])).loss;
tr.destroy();
// The same training twice on one uploaded model (createGpuModel, as the worker shares it
// between a run's trainings): the first trainer's destroy leaves the model usable.
const model = await createGpuModel(device, inp.config, inp.tensors);
const sharedLosses = [];
for (let k = 0; k < 2; k++) {
  const t2 = await createGpuTrainer(device, { model, lora: { ...inp.lora, params: inp.lora.params.slice() }, train: inp.train });
  const ls = [];
  for (const b of inp.batches) ls.push((await t2.step(b, ref.meta.lr)).loss);
  sharedLosses.push(ls);
  t2.destroy();
}
model.destroy();
console.log(JSON.stringify({ sharedLosses, gpuLosses, cLosses: Array.from(ref.sec('losses')), gradRel, paramRel, gpuEval, cEval: ref.sec('eval')[0] }));
device.destroy();
