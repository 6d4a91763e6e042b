// A streamed model.safetensors whose tensors sit past 4 GiB, in the wasm build (32-bit
// size_t and pointers): GPT-2 XL's fp32 file is 6.4 GB, DialoGPT-large's 3.1 GB. The
// tiny fixture's header is rewritten with 4.36 GB of buffers first (attn.masked_bias,
// which the importer skips), so every real tensor's data_offsets exceed 2^32; its bytes are
// generated as zeros while they are fed, never stored. The import must give the GGUF of
// the original file, byte for byte, and count every byte it was fed. Then the CLI
// compiled to wasm (loralab_node.js) converts a sparse 2.3 GB file (past 2^31, where a
// 32-bit long fails) to the same GGUF as the native CLI from the original.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync, mkdtempSync, copyFileSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';

const require = createRequire(import.meta.url);
const wasmDir = path.resolve(process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const fix = 'tests/fixtures/tiny-gpt2';
// two buffers the importer skips, each below 4 GiB (one tensor of more is refused in a
// 32-bit build), together past it: [1, 1, 32000, 32000] and [1, 1, 8192, 8192] fp32
const PAD = [['h.0.attn.masked_bias', 32000], ['h.1.attn.masked_bias', 8192]];
const BIG = PAD.reduce((n, [, side]) => n + 4 * side * side, 0);   // 4,364,435,456 > 2^32

globalThis.self = globalThis;
vm.runInThisContext(readFileSync('web/bridge.js', 'utf8'), { filename: 'web/bridge.js' });

const files = {
  config: readFileSync(path.join(fix, 'config.json'), 'utf8'),
  vocab: readFileSync(path.join(fix, 'vocab.json'), 'utf8'),
  merges: readFileSync(path.join(fix, 'merges.txt'), 'utf8'),
};
const original = new Uint8Array(readFileSync(path.join(fix, 'model.safetensors')));

/** The fixture with pad = [[name, side], ...] buffers in front of its data: {header, data}. */
function shifted(pad = PAD) {
  const view = new DataView(original.buffer, original.byteOffset);
  const hlen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(original.subarray(8, 8 + hlen)).toString('utf8'));
  const out = {};
  let off = 0;
  for (const [name, side] of pad) {
    assert.ok(!(name in header), `the fixture already has ${name}`);
    out[name] = { dtype: 'F32', shape: [1, 1, side, side], data_offsets: [off, off + 4 * side * side] };
    off += 4 * side * side;
  }
  for (const [name, t] of Object.entries(header)) {
    out[name] = name === '__metadata__' ? t : { ...t, data_offsets: t.data_offsets.map((o) => o + off) };
  }
  let text = Buffer.from(JSON.stringify(out), 'utf8');
  text = Buffer.concat([text, Buffer.alloc((8 - (text.length % 8)) % 8, 0x20)]);
  const head = Buffer.alloc(8 + text.length);
  head.writeBigUInt64LE(BigInt(text.length), 0);
  text.copy(head, 8);
  return { header: new Uint8Array(head), data: original.subarray(8 + hlen) };
}

let M = null;
after(() => { if (M && M.PThread) M.PThread.terminateAllThreads(); });

test('safetensors tensors past 4 GiB import to the same GGUF (wasm, 32-bit size_t)', async () => {
  const factory = require(path.join(wasmDir, 'loralab_st.js'));
  M = await factory({ wasmBinary: readFileSync(path.join(wasmDir, 'loralab_st.wasm')), locateFile: (f) => path.join(wasmDir, f) });
  const lab = self.LabBridge(M);
  lab.init(1);

  const ref = lab.importer({ ...files, type: 'q8_0', name: 'tiny' });
  ref.feed(original);
  const want = ref.finish();

  const { header, data } = shifted();
  const imp = lab.importer({ ...files, type: 'q8_0', name: 'tiny' });
  imp.feed(header);
  const zeros = new Uint8Array(16 << 20);
  for (let left = BIG; left > 0; left -= zeros.length) imp.feed(left >= zeros.length ? zeros : zeros.subarray(0, left));
  imp.feed(data);
  // the bridge holds up to 4 MB in its staging buffer until finish()
  const total = header.length + BIG + data.length, seen = imp.progress().bytes;
  assert.ok(seen > 2 ** 32 && seen <= total && total - seen <= 4 << 20, `progress counts ${seen} of ${total} bytes`);
  const got = imp.finish();
  assert.equal(got.sha256, want.sha256, 'the GGUF differs from the one of the original file');
  assert.equal(got.params, want.params);
});

test('the wasm CLI converts a checkpoint past 2 GiB (sparse file) as the native CLI does', (t) => {
  const nodeCli = path.join(wasmDir, 'loralab_node.js');
  const nativeCli = path.resolve(process.env.LPL_BUILD_DIR || 'build', 'loralab');
  const side = 24000;                                   // 2,304,000,000 bytes of padding > 2^31
  const { header, data } = shifted([['h.0.attn.masked_bias', side]]);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lpl-sparse-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['config.json', 'vocab.json', 'merges.txt']) copyFileSync(path.join(fix, f), path.join(dir, f));
  const fd = openSync(path.join(dir, 'model.safetensors'), 'w');
  writeSync(fd, header, 0, header.length, 0);
  writeSync(fd, data, 0, data.length, header.length + 4 * side * side);   // the hole reads as zeros
  closeSync(fd);
  const sha = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');
  execFileSync(process.execPath, ['--no-experimental-fetch', nodeCli, 'convert', '--from', dir, '--to',
    path.join(dir, 'wasm.gguf'), '--name', 'tiny', '--quiet'], { stdio: 'pipe' });
  execFileSync(nativeCli, ['convert', '--from', fix, '--to', path.join(dir, 'native.gguf'), '--name', 'tiny', '--quiet']);
  assert.equal(sha(path.join(dir, 'wasm.gguf')), sha(path.join(dir, 'native.gguf')));
});
