// The wasm API of docs/WASM_API.md (src/wasm/api.c) under Node, in the threaded and
// single-threaded modules: converting and loading a model, accounting, a sliced
// ablation with its events, results, adapters in PEFT layout, cancel, generation, the
// errors it reports, and the same losses as the native CLI (within 1e-4 relative) --
// also for the CLI itself compiled to wasm (loralab_node.js, a 20-step run).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const wasmDir = path.resolve(process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const nativeDir = path.resolve(process.env.LPL_BUILD_DIR || 'build');
const fixture = 'tests/fixtures/tiny-gpt2';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lab-api-'));
const trainJson = readFileSync('data/alpaca_train.json', 'utf8');
const evalJson = readFileSync('data/alpaca_eval.json', 'utf8');

// The experiment every run here uses, and the same as CLI flags.
const experiment = {
  n_train: 4, n_eval: 2, max_len: 40, epochs: 2, lr: 0.005, r: 4, alpha: 8,
  placements: ['baseline', 'attn-exact'],
};
const cliFlags = ['--train', 'data/alpaca_train.json', '--eval', 'data/alpaca_eval.json', '--n-train', '4',
  '--n-eval', '2', '--max-len', '40', '--lr', '0.005', '--r', '4', '--alpha', '8', '--placement', 'baseline',
  '--quiet'];

const modules = {};
function load(variant) {
  modules[variant] ??= (async () => {
    const factory = require(path.join(wasmDir, `loralab_${variant}.js`));
    return factory({
      wasmBinary: readFileSync(path.join(wasmDir, `loralab_${variant}.wasm`)),
      locateFile: (f) => path.join(wasmDir, f),
    });
  })();
  return modules[variant];
}

after(async () => {
  for (const mod of await Promise.all(Object.values(modules)))
    if (mod.PThread) mod.PThread.terminateAllThreads();
  rmSync(tmp, { recursive: true, force: true });
});

const call = (mod, name, ret, types = [], args = []) => mod.ccall(name, ret, types, args);
const lastError = (mod) => call(mod, 'lab_last_error', 'string');

// A heap copy of bytes or a string (the caller frees it, or hands it over).
function heapBytes(mod, u8) {
  const p = mod._malloc(u8.length);
  mod.HEAPU8.set(u8, p);
  return p;
}
const heapString = (mod, s) => heapBytes(mod, Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]));

function takeBuffer(mod) {
  const p = call(mod, 'lab_buffer_ptr', 'number');
  const n = call(mod, 'lab_buffer_size', 'number');
  return Buffer.from(mod.HEAPU8.slice(p, p + n));
}

// Converts the HF fixture to an f32 GGUF inside the module and loads it.
async function loadTinyModel(mod) {
  const ckpt = heapBytes(mod, readFileSync(path.join(fixture, 'model.safetensors')));
  const strs = ['config.json', 'vocab.json', 'merges.txt'].map((f) =>
    heapString(mod, readFileSync(path.join(fixture, f), 'utf8')));
  const rc = call(mod, 'lab_convert_hf', 'number',
    ['number', 'number', 'number', 'number', 'number', 'string'],
    [strs[0], ckpt, readFileSync(path.join(fixture, 'model.safetensors')).length, strs[1], strs[2], 'f32']);
  [ckpt, ...strs].forEach((p) => mod._free(p));
  assert.equal(rc, 0, lastError(mod));
  const gguf = takeBuffer(mod);
  assert.equal(gguf.subarray(0, 4).toString('latin1'), 'GGUF');
  const p = heapBytes(mod, gguf);
  assert.equal(call(mod, 'lab_load_model', 'number', ['number', 'number'], [p, gguf.length]), 0, lastError(mod));
  return gguf;
}

function setData(mod) {
  const a = heapString(mod, trainJson), b = heapString(mod, evalJson);
  const rc = call(mod, 'lab_set_data', 'number', ['number', 'number'], [a, b]);
  mod._free(a);
  mod._free(b);
  assert.equal(rc, 0, lastError(mod));
}

// Runs the experiment to the end (or cancels after `cancelAfter` placements); returns all events.
function runAblation(mod, exp, cancelAfter = 0) {
  assert.equal(call(mod, 'lab_ablate_start', 'number', ['string'], [JSON.stringify(exp)]), 0, lastError(mod));
  const events = [];
  let rc, guard = 0;
  do {
    rc = call(mod, 'lab_ablate_step', 'number');
    const evs = JSON.parse(call(mod, 'lab_events', 'string'));
    events.push(...evs);
    if (cancelAfter && events.filter((e) => e.type === 'training_done').length >= cancelAfter)
      call(mod, 'lab_ablate_cancel', null);
  } while (rc > 0 && ++guard < 100000);
  assert.equal(rc, 0, `step returned ${rc}: ${lastError(mod)}`);
  return events;
}

function safetensorsHeader(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  delete h.__metadata__;
  return h;
}

// "step i/n loss X" lines of `loralab train` (native or wasm).
const cliLosses = (out) => [...out.matchAll(/^step \d+\/\d+ loss (\S+)/gm)].map((m) => Number(m[1]));
const cliEvals = (out) => [...out.matchAll(/^eval epoch \d+ loss (\S+)/gm)].map((m) => Number(m[1]));

function assertClose(got, want, rel, what) {
  assert.equal(got.length, want.length, `${what}: ${got.length} values, want ${want.length}`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= rel * Math.abs(want[i]),
    `${what}[${i}]: ${g} vs ${want[i]} (rel ${Math.abs(g - want[i]) / Math.abs(want[i])})`));
}

const results = {};

for (const variant of ['mt', 'st']) {
  test(`${variant}: init, version, convert + load, model info`, async () => {
    const mod = await load(variant);
    assert.match(call(mod, 'lab_version', 'string'), variant === 'mt' ? /threads/ : /single-thread/);
    assert.equal(call(mod, 'lab_init', 'number', ['number'], [2]), 0, lastError(mod));
    await loadTinyModel(mod);
    const info = JSON.parse(call(mod, 'lab_model_info', 'string'));
    assert.equal(info.n_layer, 2);
    assert.equal(info.n_embd, 64);
    assert.equal(info.n_vocab, 512);
    assert.equal(info.n_ctx, 64);
    assert.equal(info.matrix_type, 'f32');
    assert.match(info.sha256, /^[0-9a-f]{64}$/);
  });

  test(`${variant}: accounting for a preset and for the loaded model`, async () => {
    const mod = await load(variant);
    const counts = JSON.parse(call(mod, 'lab_count', 'string', ['string'], ['{"preset": "dialogpt-medium"}']));
    assert.deepEqual(counts.map((c) => c.trainable), [6291456, 1966080, 4325376]);
    assert.deepEqual(counts.map((c) => c.percent.toFixed(2)), ['1.74', '0.55', '1.20']);
    assert.equal(counts[2].modules, '24×attn.c_attn, 24×attn.c_proj, 24×mlp.c_proj');
    assert.ok(counts[2].selected.some(([l, m]) => l === 0 && m === 'mlp.c_proj'));
    const tiny = JSON.parse(call(mod, 'lab_count', 'string', ['string'], [JSON.stringify(experiment)]));
    // 2 layers * 4 * ((64+192) + (64+64) + (64+256) + (256+64)) and attention only
    assert.deepEqual(tiny.map((c) => c.trainable), [8192, 2 * 4 * (256 + 128)]);
    const est = JSON.parse(call(mod, 'lab_estimate', 'string', ['string'], [JSON.stringify(experiment)]));
    assert.ok(est.bytes_needed > 0 && est.bytes_available > est.bytes_needed, JSON.stringify(est));
  });

  test(`${variant}: errors are reported, not thrown`, async () => {
    const mod = await load(variant);
    assert.equal(call(mod, 'lab_count', 'string', ['string'], ['{"epochz": 1}']), '');
    assert.match(lastError(mod), /unknown key "epochz"/);
    const bad = heapString(mod, '[{"instruction": 3}]');
    assert.notEqual(call(mod, 'lab_set_data', 'number', ['number', 'number'], [bad, 0]), 0);
    mod._free(bad);
    assert.match(lastError(mod), /training data/);
    assert.notEqual(call(mod, 'lab_ablate_start', 'number', ['string'], ['{}']), 0);
    assert.match(lastError(mod), /no data/);
    setData(mod);
    assert.notEqual(call(mod, 'lab_ablate_start', 'number', ['string'], ['{"max_len": 500}']), 0);
    assert.match(lastError(mod), /context of 64/);
    assert.notEqual(call(mod, 'lab_convert_hf', 'number', ['number', 'number', 'number', 'number', 'number', 'string'],
      [0, 0, 0, 0, 0, 'q3']), 0);
    assert.match(lastError(mod), /type 'q3'/);
  });

  test(`${variant}: a sliced ablation with events, results and PEFT adapters`, async () => {
    const mod = await load(variant);
    setData(mod);
    const events = runAblation(mod, experiment);
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'start');
    assert.equal(types.at(-1), 'done');
    assert.equal(events.at(-1).cancelled, false);
    assert.deepEqual(events[0].placements, ['baseline', 'attn-exact']);
    assert.equal(types.filter((t) => t === 'step').length, 16); // 4 examples, 2 epochs, 2 placements
    assert.equal(types.filter((t) => t === 'training_done').length, 2);
    const step = events.find((e) => e.type === 'step');
    for (const k of ['training', 'placement', 'placement_index', 'seed', 'epoch', 'step', 'steps', 'loss', 'lr', 'tokens_per_s', 'elapsed_s', 'eta_s'])
      assert.ok(k in step, `step event lacks ${k}`);
    assert.ok(!('run' in step) && !('index' in step), 'one word per concept: training and placement_index, no run or index');
    // each training's events name it: the second training is the second placement at the first seed
    const second = events.filter((e) => e.type === 'training_done')[1];
    assert.deepEqual([second.training, second.placement, second.placement_index], [1, 'attn-exact', 1]);

    const res = JSON.parse(call(mod, 'lab_results_json', 'string'));
    assert.equal(res.environment.build, variant === 'mt' ? 'wasm threads' : 'wasm single-thread');
    assert.match(res.data.train.sha256, /^[0-9a-f]{64}$/);
    for (const p of res.trainings) {
      assert.equal(p.status, 'done');
      assert.ok(p.eval_loss < p.eval_loss_before, `${p.name}: ${p.eval_loss} !< ${p.eval_loss_before}`);
      assert.ok(Math.abs(p.perplexity - Math.exp(p.eval_loss)) <= 1e-12 * p.perplexity);
    }
    const done = events.find((e) => e.type === 'training_done');
    assert.deepEqual(done.result.steps.loss, res.trainings[0].steps.loss);
    results[variant] = res;
    const csv = call(mod, 'lab_results_csv', 'string').trim().split('\n');
    assert.equal(csv.length, 3);
    assert.match(csv[1], /^baseline,42,done,/);

    assert.equal(call(mod, 'lab_adapter', 'number', ['number'], [1]), 0, lastError(mod));
    const hdr = safetensorsHeader(takeBuffer(mod));
    assert.deepEqual(Object.keys(hdr).sort(), [0, 1].flatMap((l) => ['c_attn', 'c_proj'].flatMap((m) =>
      ['A', 'B'].map((x) => `base_model.model.transformer.h.${l}.attn.${m}.lora_${x}.weight`))).sort());
    assert.deepEqual(hdr['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'].shape, [4, 64]);
    assert.deepEqual(hdr['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight'].shape, [192, 4]);
    const cfg = JSON.parse(call(mod, 'lab_adapter_config', 'string', ['number'], [1]));
    assert.equal(cfg.peft_type, 'LORA');
    assert.deepEqual(cfg.target_modules, ['attn.c_attn', 'attn.c_proj']);
    assert.notEqual(call(mod, 'lab_adapter', 'number', ['number'], [5]), 0);
    assert.match(lastError(mod), /training 5/);

    const gen = (training) => JSON.parse(call(mod, 'lab_generate', 'string', ['string'],
      [JSON.stringify({ prompt: 'The colour', raw: true, training, max_new_tokens: 6, temperature: 0 })]));
    assert.equal(typeof gen(-1).text, 'string', lastError(mod));
    assert.deepEqual(gen(0), gen(0), 'greedy generation is deterministic');
    const mem = JSON.parse(call(mod, 'lab_memory', 'string'));
    assert.ok(mem.peak_bytes >= mem.heap_bytes && mem.heap_bytes > 0, JSON.stringify(mem));
  });

  test(`${variant}: cancel keeps completed trainings`, async () => {
    const mod = await load(variant);
    const events = runAblation(mod, experiment, 1);
    assert.equal(events.at(-1).type, 'done');
    assert.equal(events.at(-1).cancelled, true);
    const res = JSON.parse(call(mod, 'lab_results_json', 'string'));
    assert.deepEqual(res.trainings.map((p) => p.status), ['done', 'pending']);
    assert.equal(call(mod, 'lab_adapter', 'number', ['number'], [0]), 0, lastError(mod));
  });
}

test('mt and st give the same losses', async () => {
  assert.ok(results.mt && results.st, 'both ablations ran');
  for (let i = 0; i < 2; i++) {
    assertClose(results.mt.trainings[i].steps.loss, results.st.trainings[i].steps.loss, 1e-6, `placement ${i}`);
    assertClose([results.mt.trainings[i].eval_loss], [results.st.trainings[i].eval_loss], 1e-6, 'eval loss');
  }
});

// The GGUF the modules converted, on disk for the command-line programs.
async function ggufFile() {
  const file = path.join(tmp, 'tiny.gguf');
  if (!existsSync(file)) {
    const mod = await load('st');
    const gguf = await loadTinyModel(mod);
    writeFileSync(file, gguf);
  }
  return file;
}

const nativeCli = path.join(nativeDir, 'loralab');

test('the wasm API trains like the native CLI (1e-4 relative)', { skip: !existsSync(nativeCli) && `no ${nativeCli}` },
  async () => {
    const file = await ggufFile();
    const out = execFileSync(nativeCli, ['train', '--model', file, ...cliFlags, '--epochs', '2', '--threads', '1',
      '--out', path.join(tmp, 'native')], { encoding: 'utf8' });
    const res = results.st ?? results.mt;
    assertClose(res.trainings[0].steps.loss, cliLosses(out), 1e-4, 'step loss');
    assertClose(res.trainings[0].evals.map((e) => e.eval_loss), cliEvals(out), 1e-4, 'eval loss');
  });

test('the runs train with the converted model\'s own base dropout (config: 0.1 from config.json)', async () => {
  const res = results.st ?? results.mt;
  assert.deepEqual(res.base_dropout, { setting: 'config', embd_pdrop: 0.1, attn_pdrop: 0.1, resid_pdrop: 0.1, source: 'model' });
  assert.equal(res.config.base_dropout, 'config');
});

test('with base dropout 0.3 the wasm CLI matches the native CLI (and differs from 0)', {
  skip: !existsSync(nativeCli) && `no ${nativeCli}`,
}, async () => {
  const file = await ggufFile();
  const args = (rate) => ['train', '--model', file, ...cliFlags, '--steps', '8', '--base-dropout', rate];
  const native = execFileSync(nativeCli, [...args('0.3'), '--threads', '1', '--out', path.join(tmp, 'nd')], { encoding: 'utf8' });
  const wasm = execFileSync(process.execPath, ['--no-experimental-fetch', path.join(wasmDir, 'loralab_node.js'),
    ...args('0.3'), '--out', path.join(tmp, 'wd')], { encoding: 'utf8' });
  const none = execFileSync(nativeCli, [...args('0'), '--threads', '1', '--out', path.join(tmp, 'n0')], { encoding: 'utf8' });
  assert.equal(cliLosses(native).length, 8);
  assertClose(cliLosses(wasm), cliLosses(native), 1e-4, 'step loss with base dropout');
  assertClose(cliEvals(wasm), cliEvals(native), 1e-4, 'eval loss with base dropout');
  assert.ok(cliLosses(none).some((l, i) => Math.abs(l - cliLosses(native)[i]) > 1e-3), 'base dropout 0.3 changed the losses');
});

test('loralab_node.js (the CLI in wasm) matches the native CLI over 20 steps', {
  skip: !existsSync(nativeCli) && `no ${nativeCli}`,
}, async () => {
  const file = await ggufFile();
  const args = ['train', '--model', file, ...cliFlags, '--steps', '20'];
  const native = execFileSync(nativeCli, [...args, '--threads', '1', '--out', path.join(tmp, 'n20')], { encoding: 'utf8' });
  const wasm = execFileSync(process.execPath, ['--no-experimental-fetch', path.join(wasmDir, 'loralab_node.js'), ...args,
    '--out', path.join(tmp, 'w20')], { encoding: 'utf8' });
  const a = cliLosses(wasm), b = cliLosses(native);
  assert.equal(b.length, 20);
  assertClose(a, b, 1e-4, 'step loss');
  assertClose(cliEvals(wasm), cliEvals(native), 1e-4, 'eval loss');
});
