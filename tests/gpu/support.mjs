// Shared pieces of the WebGPU engine's Node tests: a SwiftShader device from the npm
// `webgpu` package (dawn), and the C reference (build/gpu_ref, tests/support/gpu_ref.c).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const BUILD = process.env.LPL_BUILD_DIR || path.join(ROOT, 'build');

// Dawn finds SwiftShader's Vulkan driver through these (brief: Chromium ships it).
if (!process.env.VK_ICD_FILENAMES && fs.existsSync('/usr/lib/chromium/vk_swiftshader_icd.json'))
  process.env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';

export async function gpu() {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  return create([]);
}

/** Runs gpu_ref with args; returns {meta, sec(name) -> typed array}. */
export function cRef(mode, args) {
  const exe = path.join(BUILD, 'gpu_ref');
  if (!fs.existsSync(exe)) throw new Error(`${exe} is missing: build the native tree (cmake --build build --target gpu_ref)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-gpuref-'));
  const out = path.join(dir, 'ref');
  const meta = JSON.parse(execFileSync(exe, [mode, out, ...args.map(String)], { encoding: 'utf8', maxBuffer: 1 << 26 }));
  const bin = fs.readFileSync(out + '.bin');
  fs.rmSync(dir, { recursive: true, force: true });
  const sec = (name) => {
    const s = meta.sections[name];
    if (!s) throw new Error(`gpu_ref: no section ${name}`);
    const b = bin.buffer.slice(bin.byteOffset + s.offset, bin.byteOffset + s.offset + s.bytes);
    if (s.type === 'f32') return new Float32Array(b);
    if (s.type === 'i32') return new Int32Array(b);
    return new Uint8Array(b);
  };
  return { meta, sec };
}

/** Engine inputs (API.md) from a `gpu_ref step` run. */
export function stepInputs(ref) {
  const { meta, sec } = ref;
  const c = meta.config, C = c.n_embd;
  const mat = (name, rows, cols) => ({ type: meta.sections[name].type, rows, cols, data: sec(name) });
  const shapes = [[3 * C, C], [C, C], [4 * C, C], [C, 4 * C]];
  const tensors = {
    wte: mat('wte', c.n_vocab, C), wpe: sec('wpe'), lnf_w: sec('lnf_w'), lnf_b: sec('lnf_b'),
    blocks: Array.from({ length: c.n_layer }, (_, l) => ({
      ln1_w: sec(`h${l}.ln1_w`), ln1_b: sec(`h${l}.ln1_b`), ln2_w: sec(`h${l}.ln2_w`), ln2_b: sec(`h${l}.ln2_b`),
      w: shapes.map(([o, i], s) => mat(`h${l}.w${s}`, o, i)), b: shapes.map((_, s) => sec(`h${l}.b${s}`)),
    })),
  };
  const lora = { r: meta.r, scaling: meta.scaling, dropout: meta.lora_dropout, modules: meta.modules, params: sec('params0') };
  // headSliceRows 64: the LM head's input gradient in several slices even for these
  // small vocabularies (301 rows: 5 slices, the last of 45), as for a real one.
  const train = { maxT: meta.T, maxBatch: meta.NB, gradClip: meta.clip, dropout: meta.dropout, headSliceRows: 64,
    baseSeed: BigInt(meta.base_seed), loraSeed: BigInt(meta.lora_seed) };
  const lens = sec('lens'), tok = sec('tokens'), tg = sec('targets'), mask = sec('mask');
  const T = meta.T;
  const examples = Array.from(lens, (n, e) => ({ tokens: tok.subarray(e * T, e * T + n), targets: tg.subarray(e * T, e * T + n),
    mask: mask.subarray(e * T, e * T + n) }));
  const batches = Array.from({ length: meta.steps }, (_, s) => examples.slice(s * meta.NB, (s + 1) * meta.NB));
  return { config: c, tensors, lora, train, batches };
}

/** max |a-b| / max(|b|) over the arrays. */
export function relErr(a, b) {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / (m || 1);
}
