// The streamed import's memory discipline, for every checkpoint format, in the page's
// wasm module through the page's bridge (web/bridge.js): a checkpoint of DialoGPT-small
// width but few layers and the same with many (scripts/make_checkpoint.py --layers,
// random weights), each as
//   - torch's legacy stream (.bin, fp16),
//   - torch.save's zip (.bin, fp16; storages in its string order data/0, data/1,
//     data/10, data/100, ... while the pickle numbers them 0, 1, 2, ...),
//   - the same zip with zip64 records throughout (scripts/zip64.py),
//   - model.safetensors (fp32),
// is fed in 4 MB chunks as the page feeds it. Two measures of what the import holds
// beyond the GGUF it builds must stay under a bound that does not grow with the file:
// the importer's own high-water mark (lab_import_progress: held_peak_bytes) and the
// heap's bytes in use (mallinfo, lab_memory) sampled after every chunk, over what
// they were once the GGUF was laid out. The bigger file is 2.5x (safetensors) to 4x
// the smaller one; its peaks may exceed the smaller's only by what its longer tensor
// list takes (index, pickle), 2 KB a tensor, and both stay within the importer's own estimate of its
// peak (lab_import_check: bytes_needed - gguf_bytes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';

const require = createRequire(import.meta.url);
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const wasmDir = path.resolve(process.env.LPL_WASM_BUILD_DIR || path.join(REPO, 'build-wasm'));
const CHUNK = 4 << 20;
const LAYERS = [2, 40];          // the same widths, 2.5x to 4x the bytes
const EMBD = 192;
// what 38 more layers may add to the peaks: 2 KB for each of their 14 tensors (its name,
// storage key, sink and zip directory entry, a longer pickle)
const GROWTH = (LAYERS[1] - LAYERS[0]) * 14 * 2048;
const FORMATS = [['bin16', 'pytorch legacy'], ['bin16-zip', 'pytorch zip'], ['bin16-zip64', 'pytorch zip'],
                 ['st32', 'safetensors']];

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const hasWasm = fs.existsSync(path.join(wasmDir, 'loralab_mt.js'));
const SKIP = !hasWasm ? 'no wasm build' : !hasTorch ? 'python3-torch is missing (scripts/make_checkpoint.py)' : false;

let tmp, M, lab;
before(async () => {
  if (SKIP) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-import-memory-'));
  globalThis.self = globalThis;
  if (!self.LabBridge) vm.runInThisContext(fs.readFileSync(path.join(REPO, 'web', 'bridge.js'), 'utf8'), { filename: 'web/bridge.js' });
  M = await require(path.join(wasmDir, 'loralab_mt.js'))({
    wasmBinary: fs.readFileSync(path.join(wasmDir, 'loralab_mt.wasm')), locateFile: (f) => path.join(wasmDir, f),
  });
  lab = self.LabBridge(M);
  lab.init(2);
});
after(() => {
  if (M && M.PThread) M.PThread.terminateAllThreads();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function make(format, layers) {
  const out = path.join(tmp, `${format}-${layers}`);
  const r = spawnSync('/usr/bin/python3', [path.join(REPO, 'scripts', 'make_checkpoint.py'), '--shape', 'small',
    '--layers', String(layers), '--embd', String(EMBD), '--format', format, '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

/** Imports dir as the page does; returns what it held at its peak and the file's size. */
function importDir(dir) {
  const rd = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
  const file = ['model.safetensors', 'pytorch_model.bin'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  const files = { config: rd('config.json'), vocab: rd('vocab.json'), merges: rd('merges.txt') };
  const check = lab.importCheck(files.config, 'q8_0');
  const imp = lab.importer({ ...files, type: 'q8_0', name: 'memory' });
  const size = fs.statSync(file).size, fd = fs.openSync(file, 'r');
  try {
    const tail = Buffer.alloc(Math.min(size, 1 << 20));
    fs.readSync(fd, tail, 0, tail.length, size - tail.length);
    imp.zipTail(new Uint8Array(tail), size);
    const base = lab.memory().heap_bytes;      // the GGUF laid out, the staging buffer, the index of the directory
    let heapPeak = 0;
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; pos < size;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, pos);
      imp.feed(buf.subarray(0, n));
      pos += n;
      heapPeak = Math.max(heapPeak, lab.memory().heap_bytes - base);
    }
    const p = imp.finish().import;            // the last progress, after the last chunk
    assert.equal(p.tensors_done, p.tensors_total, `${dir}: every tensor converted`);
    return { size, format: p.format, held: p.held_peak_bytes, heap: heapPeak, promised: check.bytes_needed - check.gguf_bytes };
  } finally {
    fs.closeSync(fd);
  }
}

const kb = (n) => `${(n / 1024).toFixed(0)} KB`;

for (const [format, name] of FORMATS) {
  test(`${format}: what the import holds does not grow with the file`, { skip: SKIP, timeout: 600000 }, () => {
    const [small, big] = LAYERS.map((l) => importDir(make(format, l)));
    console.log(`${format}: files ${(small.size / 2 ** 20).toFixed(1)} and ${(big.size / 2 ** 20).toFixed(1)} MB; ` +
                `importer's peak ${kb(small.held)} and ${kb(big.held)}; heap in use over the GGUF ${kb(small.heap)} and ${kb(big.heap)}`);
    assert.equal(small.format, name);
    assert.ok(big.size > 2.4 * small.size, `the bigger file (${big.size} bytes) is 2.5x the smaller (${small.size}) or more`);
    for (const r of [small, big]) {
      assert.ok(Number.isInteger(r.held) && r.held > 0, `the importer reports its high-water mark (held_peak_bytes: ${r.held})`);
      assert.ok(r.held <= r.promised, `held ${r.held} bytes at its peak, more than its own estimate ${r.promised}`);
      assert.ok(r.heap <= r.promised, `heap in use grew by ${r.heap} bytes over the GGUF, more than the estimate ${r.promised}`);
    }
    assert.ok(big.held - small.held <= GROWTH,
              `the importer's peak grew by ${kb(big.held - small.held)} with the file (${kb(big.size - small.size)} more)`);
    assert.ok(big.heap - small.heap <= GROWTH,
              `the heap's peak in use grew by ${kb(big.heap - small.heap)} with the file (${kb(big.size - small.size)} more)`);
  });
}
