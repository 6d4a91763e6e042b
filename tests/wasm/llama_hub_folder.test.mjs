// A Llama-family folder as the Hub has it converts with no extra flags: config.json,
// bf16 model.safetensors and tokenizer.json + tokenizer_config.json (SmolLM2 and
// TinyLlama folders have no vocab.json / merges.txt; Qwen2.5's has them too, but the
// importer must take tokenizer.json, which alone holds its added tokens and digit
// rule). The tokenizers are real-format files made here (scripts/make_test_tokenizers.mjs:
// SmolLM2's byte-level BPE, Qwen2's, and TinyLlama's SentencePiece-style BPE with byte
// fallback), the checkpoints tiny random ones (tests/llama_ref.py) with vocab_size
// 1024, more rows than tokens, as Qwen2.5's 151,936 for 151,665.
//  - native `loralab convert`: the GGUF's tokenizer gives the ids of npm
//    @huggingface/tokenizers on a unicode-heavy text, with and without BOS/EOS;
//  - the CLI compiled to wasm writes the same bytes; the page's bridge (web/bridge.js,
//    lab_import_begin_json) streams the folder into the module to the same bytes;
//  - the converted models train: ablate all-linear and qv, each lowering the eval loss.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { Tokenizer } from '@huggingface/tokenizers';
import { corpus, writeTokenizers } from '../../scripts/make_test_tokenizers.mjs';

const require = createRequire(import.meta.url);
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const cli = path.resolve(REPO, process.env.LPL_BUILD_DIR || 'build', 'loralab');
const wasmDir = path.resolve(REPO, process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const SKIP = !fs.existsSync(cli) ? `no ${cli}` : !hasTorch ? 'python3-torch is missing (tests/llama_ref.py)' : false;
const SKIP_WASM = SKIP || (!fs.existsSync(path.join(wasmDir, 'loralab_mt.js')) && 'no wasm build');

// tokenizer style -> the architecture of the folder it goes in
const FOLDERS = { smollm2: 'llama', qwen2: 'qwen2', llama: 'llama' };
const TEXT = "Café naïve résumé 你好，世界！ 한국어 😀👍🏽 12345 and 3.14; I'M here   twice\n\n\tCall me Ishmael.";

let tmp;
const dirs = {}, ggufs = {};
before(() => {
  if (SKIP) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-llama-folder-'));
  const toks = writeTokenizers(path.join(tmp, 'tok'), Object.keys(FOLDERS), { text: corpus().slice(0, 300000), merges: 300 });
  for (const t of toks) {
    const style = path.basename(t), dir = path.join(tmp, `m-${style}`);
    const r = spawnSync('/usr/bin/python3', ['tests/llama_ref.py', '--arch', FOLDERS[style], '--dtype', 'bf16',
      '--vocab', '1024', '--tokenizer', t, '--out', dir], { cwd: REPO });
    assert.equal(r.status, 0, r.stderr.toString());
    dirs[style] = dir;
  }
});
after(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

function loralab(args, input) {
  const r = spawnSync(cli, args, { input, cwd: REPO, maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout.toString();
}

function reference(style) {
  const read = (f) => JSON.parse(fs.readFileSync(path.join(dirs[style], f), 'utf8'));
  return new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
}

test('native convert takes tokenizer.json; the GGUF tokenizes as @huggingface/tokenizers does', { skip: SKIP }, () => {
  for (const style of Object.keys(FOLDERS)) {
    assert.equal(fs.existsSync(path.join(dirs[style], 'vocab.json')), style === 'qwen2', `${style}: vocab.json`);
    ggufs[style] = path.join(tmp, `${style}.gguf`);
    loralab(['convert', '--from', dirs[style], '--to', ggufs[style], '--quiet']);
    const info = JSON.parse(loralab(['inspect', ggufs[style], '--json']));
    assert.equal(info.config.n_vocab, 1024, style);
    const ref = reference(style);
    for (const special of [false, true]) {
      const got = JSON.parse(loralab(['tokenize', '--model', ggufs[style], ...(special ? ['--add-special'] : [])],
        Buffer.from(TEXT, 'utf8')));
      assert.deepEqual(got, ref.encode(TEXT, { add_special_tokens: special }).ids, `${style} add_special=${special}`);
    }
    // the padding rows are [PAD<id>] tokens, as llama.cpp's converter writes them
    assert.equal(loralab(['tokenize', '--model', ggufs[style], '--decode'], '[1023]'), '[PAD1023]', style);
  }
});

test('a folder whose tokenizer.json has more tokens than vocab_size is refused, naming both', { skip: SKIP }, () => {
  const dir = path.join(tmp, 'small-vocab');
  fs.cpSync(dirs.smollm2, dir, { recursive: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  cfg.vocab_size = 512;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const r = spawnSync(cli, ['convert', '--from', dir, '--to', path.join(tmp, 'small.gguf'), '--quiet']);
  assert.equal(r.status, 2);   // unreadable input
  assert.match(r.stderr.toString(), /tokenizer\.json has \d+ tokens but config\.json vocab_size is 512/);
  assert.equal(fs.existsSync(path.join(tmp, 'small.gguf')), false);
});

test('the converted folders train: all-linear and qv each lower the eval loss', { skip: SKIP }, () => {
  for (const style of ['smollm2', 'qwen2']) {
    const out = path.join(tmp, `run-${style}`);
    loralab(['ablate', '--model', ggufs[style], '--train', 'data/alpaca_train.json', '--eval', 'data/alpaca_eval.json',
      '--n-train', '4', '--n-eval', '2', '--max-len', '40', '--epochs', '2', '--lr', '5e-3', '--r', '4', '--alpha', '8',
      '--dropout', '0', '--base-dropout', '0', '--threads', '1', '--placements', 'all-linear,qv', '--out', out]);
    const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    assert.equal(res.trainings.length, 2);
    for (const p of res.trainings) {
      assert.equal(p.status, 'done', `${style} ${p.name}`);
      assert.ok(p.eval_loss < p.eval_loss_before, `${style} ${p.name}: ${p.eval_loss} !< ${p.eval_loss_before}`);
    }
  }
});

test('wasm: the CLI and the page\'s bridge (lab_import_begin_json) write the native bytes', { skip: SKIP_WASM }, async () => {
  for (const style of ['smollm2', 'llama']) {
    const out = path.join(tmp, `${style}-wasm.gguf`);
    const r = spawnSync(process.execPath, ['--no-experimental-fetch', path.join(wasmDir, 'loralab_node.js'), 'convert',
      '--from', dirs[style], '--to', out, '--quiet', '--threads', '1'], { cwd: REPO });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.ok(fs.readFileSync(out).equals(fs.readFileSync(ggufs[style])), `${style}: wasm CLI bytes`);
  }
  globalThis.self = globalThis;
  if (!self.LabBridge) vm.runInThisContext(fs.readFileSync(path.join(REPO, 'web', 'bridge.js'), 'utf8'), { filename: 'web/bridge.js' });
  const M = await require(path.join(wasmDir, 'loralab_mt.js'))({
    wasmBinary: fs.readFileSync(path.join(wasmDir, 'loralab_mt.wasm')), locateFile: (f) => path.join(wasmDir, f),
  });
  try {
    const lab = self.LabBridge(M);
    lab.init(1);
    for (const style of ['smollm2', 'qwen2']) {
      const read = (f) => fs.readFileSync(path.join(dirs[style], f), 'utf8');
      const imp = lab.importer({ config: read('config.json'), tokenizer: read('tokenizer.json'),
        tokenizerConfig: read('tokenizer_config.json'), type: 'q8_0', name: path.basename(dirs[style]) });
      const ckpt = fs.readFileSync(path.join(dirs[style], 'model.safetensors'));
      for (let i = 0; i < ckpt.length; i += 65536) imp.feed(ckpt.subarray(i, i + 65536));
      const info = imp.finish();
      assert.equal(info.n_vocab ?? info.config?.n_vocab ?? 1024, 1024);
      const bytes = Buffer.concat([...lab.modelChunks()].map((u) => Buffer.from(u)));
      assert.ok(bytes.equals(fs.readFileSync(ggufs[style])), `${style}: bridge import bytes`);
    }
    // no tokenizer at all is refused with a message naming the files
    assert.throws(() => lab.importer({ config: fs.readFileSync(path.join(dirs.smollm2, 'config.json'), 'utf8') }),
      /vocab and merges/);
  } finally {
    if (M.PThread) M.PThread.terminateAllThreads();
  }
});
