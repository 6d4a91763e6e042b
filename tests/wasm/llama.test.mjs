// The Llama family (llama, qwen2) in the wasm builds under Node: a tiny random
// checkpoint in Hugging Face layout (tests/llama_ref.py; f32 llama with an untied
// head, bf16 qwen2 with q/k/v biases) converts inside the module to the same GGUF
// bytes as the native converter; the sliced ablation of the API trains all-linear and
// qv, each lowering the eval loss, with PEFT keys under model.layers; and the CLI
// compiled to wasm trains like the native CLI (1e-4 relative).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const wasmDir = path.resolve(process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const nativeCli = path.join(path.resolve(process.env.LPL_BUILD_DIR || 'build'), 'loralab');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lab-llama-'));
const trainJson = readFileSync('data/alpaca_train.json', 'utf8');
const evalJson = readFileSync('data/alpaca_eval.json', 'utf8');
const cliFlags = ['--train', 'data/alpaca_train.json', '--eval', 'data/alpaca_eval.json', '--n-train', '4',
  '--n-eval', '2', '--max-len', '40', '--lr', '0.005', '--r', '4', '--alpha', '8', '--placement', 'qv', '--quiet'];
const archs = { llama: 'f32', qwen2: 'bf16' };

for (const [arch, dtype] of Object.entries(archs))
  execFileSync('/usr/bin/python3', ['tests/llama_ref.py', '--arch', arch, '--dtype', dtype, '--out', path.join(tmp, arch)]);

const modules = {};
function load(variant) {
  modules[variant] ??= require(path.join(wasmDir, `loralab_${variant}.js`))({
    wasmBinary: readFileSync(path.join(wasmDir, `loralab_${variant}.wasm`)),
    locateFile: (f) => path.join(wasmDir, f),
  });
  return modules[variant];
}

after(async () => {
  for (const mod of await Promise.all(Object.values(modules)))
    if (mod.PThread) mod.PThread.terminateAllThreads();
  rmSync(tmp, { recursive: true, force: true });
});

const call = (mod, name, ret, types = [], args = []) => mod.ccall(name, ret, types, args);
const lastError = (mod) => call(mod, 'lab_last_error', 'string');
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

// Converts tmp/<arch> to an f32 GGUF inside the module and loads it; returns its bytes.
function convertInModule(mod, arch) {
  const dir = path.join(tmp, arch);
  const ckptBytes = readFileSync(path.join(dir, 'model.safetensors'));
  const ckpt = heapBytes(mod, ckptBytes);
  const strs = ['config.json', 'vocab.json', 'merges.txt'].map((f) => heapString(mod, readFileSync(path.join(dir, f), 'utf8')));
  const rc = call(mod, 'lab_convert_hf', 'number', ['number', 'number', 'number', 'number', 'number', 'string'],
    [strs[0], ckpt, ckptBytes.length, strs[1], strs[2], 'f32']);
  [ckpt, ...strs].forEach((p) => mod._free(p));
  assert.equal(rc, 0, lastError(mod));
  const gguf = takeBuffer(mod);
  const p = heapBytes(mod, gguf);
  assert.equal(call(mod, 'lab_load_model', 'number', ['number', 'number'], [p, gguf.length]), 0, lastError(mod));
  return gguf;
}

function runAblation(mod, exp) {
  assert.equal(call(mod, 'lab_ablate_start', 'number', ['string'], [JSON.stringify(exp)]), 0, lastError(mod));
  let rc, guard = 0;
  do {
    rc = call(mod, 'lab_ablate_step', 'number');
    call(mod, 'lab_events', 'string');
  } while (rc > 0 && ++guard < 100000);
  assert.equal(rc, 0, `step returned ${rc}: ${lastError(mod)}`);
  return JSON.parse(call(mod, 'lab_results_json', 'string'));
}

for (const variant of ['mt', 'st']) {
  for (const arch of Object.keys(archs)) {
    test(`${variant}: ${arch} converts like the native converter and trains all-linear and qv`, async () => {
      const mod = await load(variant);
      const gguf = convertInModule(mod, arch);
      const file = path.join(tmp, `${arch}.${variant}.gguf`);
      writeFileSync(file, gguf);
      if (existsSync(nativeCli)) {
        const native = path.join(tmp, `${arch}.native.gguf`);
        execFileSync(nativeCli, ['convert', '--from', path.join(tmp, arch), '--to', native, '--type', 'f32', '--name', arch,
          '--quiet']);
        assert.ok(readFileSync(native).equals(gguf), `${arch}: the module's GGUF differs from the native converter's`);
      }
      const a = heapString(mod, trainJson), b = heapString(mod, evalJson);
      assert.equal(call(mod, 'lab_set_data', 'number', ['number', 'number'], [a, b]), 0, lastError(mod));
      mod._free(a);
      mod._free(b);
      const res = runAblation(mod, { n_train: 4, n_eval: 2, max_len: 40, epochs: 2, lr: 0.005, r: 4, alpha: 8,
        dropout: 0, placements: ['all-linear', 'qv'] });
      for (const p of res.trainings) {
        assert.equal(p.status, 'done', p.name);
        assert.ok(p.eval_loss < p.eval_loss_before, `${p.name}: ${p.eval_loss} !< ${p.eval_loss_before}`);
      }
      const mods = (i) => [...new Set(res.trainings[i].selected.map(([, m]) => m))].sort();
      assert.deepEqual(mods(1), ['self_attn.q_proj', 'self_attn.v_proj']);
      assert.equal(mods(0).length, 7);
      assert.deepEqual(res.trainings[1].target_modules, ['q_proj', 'v_proj']);
    });
  }
}

const cliLosses = (out) => [...out.matchAll(/^step \d+\/\d+ loss (\S+)/gm)].map((m) => Number(m[1]));

test('loralab_node.js trains the llama and qwen2 models like the native CLI', { skip: !existsSync(nativeCli) && `no ${nativeCli}` },
  () => {
    for (const arch of Object.keys(archs)) {
      const file = path.join(tmp, `${arch}.st.gguf`);
      const args = ['train', '--model', file, ...cliFlags, '--steps', '8'];
      const native = execFileSync(nativeCli, [...args, '--threads', '1', '--out', path.join(tmp, `n-${arch}`)], { encoding: 'utf8' });
      const wasm = execFileSync(process.execPath, ['--no-experimental-fetch', path.join(wasmDir, 'loralab_node.js'), ...args,
        '--out', path.join(tmp, `w-${arch}`)], { encoding: 'utf8' });
      const a = cliLosses(wasm), b = cliLosses(native);
      assert.equal(b.length, 8, native);
      a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= 1e-4 * b[i], `${arch} step ${i}: ${x} vs ${b[i]}`));
      const keys = Object.keys(JSON.parse((() => {
        const buf = readFileSync(path.join(tmp, `n-${arch}`, 'adapter_model.safetensors'));
        return buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString('utf8');
      })()));
      assert.ok(keys.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'), keys.join(' '));
    }
  });
