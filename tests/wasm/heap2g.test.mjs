// Past 2 GiB of wasm heap: pointers handed to JavaScript are unsigned there, and the
// page's bridge (web/bridge.js) must read them as such. Each module runs the same
// streamed import (the fp16 PyTorch zip fixture), a short ablation (training steps and
// eval forward passes) and a greedy generation twice: once with everything below
// 2^31, once after the low heap is filled so that the model and the run's buffers are
// allocated above 2^31. Both runs must agree exactly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

const require = createRequire(import.meta.url);
const wasmDir = path.resolve(process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const fix = 'tests/fixtures/tiny-gpt2-bin16';
const LINE = 2 ** 31;

globalThis.self = globalThis;
vm.runInThisContext(readFileSync('web/bridge.js', 'utf8'), { filename: 'web/bridge.js' });

const files = {
  config: readFileSync(path.join(fix, 'config.json'), 'utf8'),
  vocab: readFileSync(path.join(fix, 'vocab.json'), 'utf8'),
  merges: readFileSync(path.join(fix, 'merges.txt'), 'utf8'),
  bin: new Uint8Array(readFileSync(path.join(fix, 'pytorch_model.bin'))),
};
const train = readFileSync('data/alpaca_train.json', 'utf8');
const evalSet = readFileSync('data/alpaca_eval.json', 'utf8');
const experiment = { n_train: 3, n_eval: 2, max_len: 32, epochs: 1, lr: 0.005, r: 4, alpha: 8, placements: ['baseline'] };

const mods = [];
after(() => { for (const M of mods) if (M.PThread) M.PThread.terminateAllThreads(); });

// Import, train, evaluate, generate; returns what must not depend on where it ran.
function runOnce(M, lab) {
  const imp = lab.importer({ ...files, type: 'q8_0', name: 'tiny' });
  imp.zipTail(files.bin.subarray(files.bin.length - 65536), files.bin.length);
  for (let i = 0; i < files.bin.length; i += 10007) imp.feed(files.bin.subarray(i, i + 10007));
  const info = imp.finish();
  const modelPtr = M._lab_model_ptr() >>> 0;
  lab.setData(train, evalSet);
  lab.ablateStart(experiment);
  const events = [];
  while (lab.ablateStep()) events.push(...lab.events());
  events.push(...lab.events());
  const results = JSON.parse(lab.resultsJson());
  const adapter = lab.adapter(0);
  const bufferPtr = M._lab_buffer_ptr() >>> 0;
  const text = lab.generate({ prompt: 'the cat', raw: true, max_new_tokens: 12, temperature: 0 }).text;
  return {
    modelPtr, bufferPtr,
    same: {
      sha256: info.sha256,
      losses: results.trainings[0].steps.loss,
      evals: results.trainings[0].evals.map((e) => e.eval_loss),
      adapterBytes: Buffer.from(adapter).toString('base64'),
      text,
    },
  };
}

async function instance(variant) {
  const factory = require(path.join(wasmDir, `loralab_${variant}.js`));
  const M = await factory({
    wasmBinary: readFileSync(path.join(wasmDir, `loralab_${variant}.wasm`)),
    locateFile: (f) => path.join(wasmDir, f),
  });
  mods.push(M);
  const lab = self.LabBridge(M);
  lab.init(variant === 'mt' ? 2 : 1);
  return { M, lab };
}

for (const variant of ['st', 'mt']) {
  test(`${variant}: a model and buffers above 2 GiB give the same forward pass and training step`, async () => {
    const low = await instance(variant);
    const below = runOnce(low.M, low.lab);
    assert.ok(below.modelPtr > 0 && below.modelPtr < LINE, `first model at ${below.modelPtr}`);
    if (low.M.PThread) low.M.PThread.terminateAllThreads();

    // A second instance whose heap below the line is filled with small blocks first
    // (never touched, so they cost address space, not memory): everything the run
    // allocates afterwards lands above 2^31.
    const high = await instance(variant);
    const fillers = [];
    for (let p = 0; p < LINE;) {
      p = high.M._malloc(16384) >>> 0;
      assert.notEqual(p, 0, 'the heap could not grow past 2 GiB');
      fillers.push(p);
    }
    assert.ok(high.lab.heapBytes() > LINE, `heap is ${high.lab.heapBytes()} bytes`);
    const above = runOnce(high.M, high.lab);
    assert.ok(above.modelPtr >= LINE, `model at ${above.modelPtr}, not above 2^31`);
    assert.ok(above.bufferPtr >= LINE, `adapter buffer at ${above.bufferPtr}, not above 2^31`);
    assert.deepEqual(above.same, below.same);
  });
}
