// Shared pieces of the WebGPU engine's Node tests: a SwiftShader device from the npm
// `webgpu` package (dawn), and the C reference (build/gpu_ref, tests/support/gpu_ref.c).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stepInputs as refInputs } from '../support/gpu_ref_inputs.mjs';

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

/** Engine inputs (API.md) from a `gpu_ref step` run (tests/support/gpu_ref_inputs.mjs).
 *  headSliceRows 64: the LM head's input gradient in several slices even for these
 *  small vocabularies (301 rows: 5 slices, the last of 45), as for a real one. */
export function stepInputs(ref) {
  return refInputs(ref.meta, ref.sec, { headSliceRows: 64 });
}

/** max |a-b| / max(|b|) over the arrays. */
export function relErr(a, b) {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / (m || 1);
}
