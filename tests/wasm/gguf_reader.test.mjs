// GGUF files written by `loralab convert` read by an independent reader (npm
// @huggingface/gguf): metadata, tokenizer, tensor names/types/shapes/offsets agree with
// `loralab inspect --json`, and the tensor bytes sit where the reader says (token_embd
// in an f32 file is byte-identical to wte in the fixture's model.safetensors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gguf } from '@huggingface/gguf';

const buildDir = path.resolve(process.env.LPL_BUILD_DIR || 'build');
const wasmDir = path.resolve(process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const loralab = path.join(buildDir, 'loralab');
const fixtures = path.resolve('tests/fixtures');
const ggmlType = { f32: 0, f16: 1, q4_0: 2, q8_0: 8 };
const typeName = Object.fromEntries(Object.entries(ggmlType).map(([k, v]) => [v, k]));

function convert(dir, type, out) {
  execFileSync(loralab, ['convert', '--from', path.join(fixtures, dir), '--to', out, '--type', type, '--quiet'],
               { stdio: ['ignore', 'pipe', 'pipe'] });
}

function inspectJson(file) {
  return JSON.parse(execFileSync(loralab, ['inspect', file, '--json'], { encoding: 'utf8' }));
}

// The tensor entries of a safetensors file (header only).
function safetensorsHeader(file) {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { buf, base: 8 + n, header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) };
}

test('loralab is built', () => {
  assert.ok(existsSync(loralab), `${loralab} missing: build natively first (LPL_BUILD_DIR)`);
});

for (const dir of ['tiny-gpt2', 'tiny-gpt2-bin16']) {
  for (const type of ['f32', 'f16', 'q8_0', 'q4_0']) {
    test(`${dir} -> ${type} reads back with @huggingface/gguf`, async () => {
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'lpl-gguf-'));
      try {
        const file = path.join(tmp, `m.${type}.gguf`);
        convert(dir, type, file);
        const { metadata: m, tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
        const ours = inspectJson(file);
        const config = JSON.parse(readFileSync(path.join(fixtures, dir, 'config.json'), 'utf8'));
        const vocab = JSON.parse(readFileSync(path.join(fixtures, dir, 'vocab.json'), 'utf8'));
        const merges = readFileSync(path.join(fixtures, dir, 'merges.txt'), 'utf8').split('\n')
          .filter((l, i) => l && !(i === 0 && l.startsWith('#version')));

        assert.equal(m.version, 3);
        assert.equal(m['general.architecture'], 'gpt2');
        assert.equal(m['general.name'], dir);
        assert.equal(m['gpt2.block_count'], config.n_layer);
        assert.equal(m['gpt2.embedding_length'], config.n_embd);
        assert.equal(m['gpt2.feed_forward_length'], 4 * config.n_embd);
        assert.equal(m['gpt2.attention.head_count'], config.n_head);
        assert.equal(m['gpt2.context_length'], config.n_positions);
        assert.ok(Math.abs(m['gpt2.attention.layer_norm_epsilon'] - config.layer_norm_epsilon) < 1e-12);
        assert.equal(m['tokenizer.ggml.model'], 'gpt2');
        const byId = Object.entries(vocab).sort((a, b) => a[1] - b[1]).map(([t]) => t);
        assert.deepEqual(m['tokenizer.ggml.tokens'], byId);
        assert.deepEqual(m['tokenizer.ggml.merges'], merges);
        assert.equal(m['tokenizer.ggml.token_type'].length, byId.length);
        assert.equal(m['tokenizer.ggml.eos_token_id'], vocab['<|endoftext|>']);
        assert.equal(m['tokenizer.ggml.bos_token_id'], vocab['<|endoftext|>']);

        // Our inspector and the independent reader see the same file.
        assert.equal(Number(m.tensor_count), ours.tensors.length);
        assert.equal(ours.config.n_layer, config.n_layer);
        assert.equal(ours.config.n_vocab, config.vocab_size);
        assert.equal(ours.tokenizer.n_tokens, byId.length);
        assert.equal(ours.tokenizer.n_merges, merges.length);
        assert.equal(ours.file_size, statSync(file).size);
        assert.equal(tensorInfos.length, 4 + 12 * config.n_layer);
        assert.ok(!tensorInfos.some((t) => t.name === 'output.weight'), 'tied head must not be stored');
        assert.equal(Number(tensorDataOffset) % 32, 0);
        tensorInfos.forEach((t, i) => {
          const o = ours.tensors[i];
          assert.equal(t.name, o.name);
          assert.equal(typeName[t.dtype], o.type, t.name);
          assert.deepEqual(t.shape.map(Number), o.shape, t.name);
          assert.equal(Number(t.offset), o.offset, t.name);
          assert.ok(Number(tensorDataOffset + t.offset) + o.bytes <= ours.file_size, `${t.name} inside the file`);
          const matrix = t.name === 'token_embd.weight' || /attn_qkv\.weight|attn_output\.weight|ffn_up\.weight|ffn_down\.weight/.test(t.name);
          assert.equal(t.dtype, matrix ? ggmlType[type] : ggmlType.f32, t.name);
        });
        const emb = tensorInfos.find((t) => t.name === 'token_embd.weight');
        assert.deepEqual(emb.shape.map(Number), [config.n_embd, config.vocab_size]);
        const qkv = tensorInfos.find((t) => t.name === 'blk.0.attn_qkv.weight');
        assert.deepEqual(qkv.shape.map(Number), [config.n_embd, 3 * config.n_embd]);

        if (type === 'f32' && dir === 'tiny-gpt2') {
          const st = safetensorsHeader(path.join(fixtures, dir, 'model.safetensors'));
          const [b, e] = st.header['wte.weight'].data_offsets;
          const wte = st.buf.subarray(st.base + b, st.base + e);
          const file_ = readFileSync(file);
          const start = Number(tensorDataOffset + emb.offset);
          assert.ok(file_.subarray(start, start + wte.length).equals(wte), 'token_embd bytes == wte bytes');
        }
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
}

// The same converter compiled to wasm (the CLI under Node) writes the same bytes.
test('wasm convert (legacy fp16 .bin -> q8_0) equals native byte for byte', () => {
  const cli = path.join(wasmDir, 'loralab_node.js');
  assert.ok(existsSync(cli), `${cli} missing: build the wasm targets (LPL_WASM_BUILD_DIR)`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lpl-gguf-'));
  try {
    const from = path.join(fixtures, 'tiny-gpt2-legacy16');
    const w = path.join(tmp, 'w.gguf'), n = path.join(tmp, 'n.gguf');
    execFileSync('node', ['--no-experimental-fetch', cli, 'convert', '--from', from, '--to', w, '--type', 'q8_0', '--quiet'],
                 { stdio: ['ignore', 'pipe', 'pipe'] });
    execFileSync(loralab, ['convert', '--from', from, '--to', n, '--type', 'q8_0', '--quiet']);
    assert.ok(readFileSync(w).equals(readFileSync(n)));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
