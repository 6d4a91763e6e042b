#!/usr/bin/env node
// Where the page's import time goes, without the browser: the wasm module the worker
// runs (build-wasm/loralab_mt, under Node) is fed a checkpoint from disk through the
// page's own bridge (web/bridge.js importer: 4 MB staging copies into the heap), in
// three ways, alternating in every round:
//   read    the file read in 4 MB chunks and copied into wasm memory, nothing else
//   f32     the streamed import to an f32 GGUF: framing, fp16 -> fp32, Conv1D
//           transposes, copies (no quantization)
//   q8_0    the page's import (Q8_0), once per thread count in --threads
// So "convert" = f32 - read and "quantize" = q8_0 - f32, to the precision of the
// spread (CPU time, all threads, is the steadier measure on a loaded machine). The download and the OPFS write happen only in the page:
// bench/import_browser.mjs measures those.
//
//   node bench/import_phases.mjs --checkpoint DIR [--rounds 5] [--threads 1,2] [--json FILE]
//                                [--baseline-wasm DIR2]
//
// --baseline-wasm adds "q8_0 1 thread, baseline": the same import by another build of
// loralab_mt (e.g. an older commit's), in the same rounds, for a before/after ratio.
// DIR holds config.json, vocab.json, merges.txt and pytorch_model.bin or
// model.safetensors (scripts/make_checkpoint.py makes them).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHUNK = 4 << 20;

function args(argv) {
  const o = { checkpoint: null, rounds: 5, threads: [1, 2], json: null,
              wasm: path.resolve(REPO, process.env.LPL_WASM_BUILD_DIR || 'build-wasm') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = () => argv[++i];
    if (a === '--checkpoint') o.checkpoint = path.resolve(next());
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--threads') o.threads = next().split(',').map(Number);
    else if (a === '--json') o.json = path.resolve(next());
    else if (a === '--wasm-build') o.wasm = path.resolve(next());
    else if (a === '--baseline-wasm') o.baseline = path.resolve(next());
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 22).join('\n'));
      process.exit(0);
    } else { console.error(`import_phases: unknown option ${a}`); process.exit(2); }
  }
  if (!o.checkpoint) { console.error('import_phases: --checkpoint DIR is required'); process.exit(2); }
  if (!(o.rounds >= 1) || !o.threads.every((t) => t >= 1)) { console.error('import_phases: bad --rounds or --threads'); process.exit(2); }
  return o;
}

function weightsOf(dir) {
  for (const f of ['model.safetensors', 'pytorch_model.bin']) if (fs.existsSync(path.join(dir, f))) return path.join(dir, f);
  console.error(`import_phases: ${dir} has no model.safetensors or pytorch_model.bin`);
  process.exit(2);
}

/** Calls sink(u8) on the file's 4 MB chunks, in order. */
function eachChunk(file, sink) {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  try {
    for (let pos = 0; ;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, pos);
      if (n <= 0) break;
      sink(buf.subarray(0, n));
      pos += n;
    }
  } finally { fs.closeSync(fd); }
}

function tail(file, n) {
  const size = fs.statSync(file).size, k = Math.min(n, size), fd = fs.openSync(file, 'r');
  const b = Buffer.alloc(k);
  fs.readSync(fd, b, 0, k, size - k);
  fs.closeSync(fd);
  return { bytes: new Uint8Array(b), size };
}

async function module(wasmDir) {
  const require = createRequire(import.meta.url);
  globalThis.self = globalThis;
  if (!self.LabBridge) vm.runInThisContext(fs.readFileSync(path.join(REPO, 'web', 'bridge.js'), 'utf8'), { filename: 'web/bridge.js' });
  const M = await require(path.join(wasmDir, 'loralab_mt.js'))({
    wasmBinary: fs.readFileSync(path.join(wasmDir, 'loralab_mt.wasm')), locateFile: (f) => path.join(wasmDir, f),
  });
  return { M, lab: self.LabBridge(M) };
}

/** Wall and CPU seconds (all threads of this process) of fn(); {s, cpu, ...fn()}. */
function timed(fn) {
  const c0 = process.cpuUsage(), t0 = performance.now();
  const r = fn();
  const c = process.cpuUsage(c0);
  return { ...r, s: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

function readOnly(M, file) {
  const stage = M._malloc(CHUNK) >>> 0;
  eachChunk(file, (u8) => M.HEAPU8.set(u8, stage));
  M._free(stage);
  return {};
}

function importOnce(lab, files, file, type) {
  const imp = lab.importer({ ...files, type, name: 'bench' });
  const t = tail(file, 1 << 20);
  imp.zipTail(t.bytes, t.size);
  eachChunk(file, (u8) => imp.feed(u8));
  const info = imp.finish();
  return { sha256: info.sha256 };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function main() {
  const o = args(process.argv.slice(2));
  const file = weightsOf(o.checkpoint);
  const rd = (f) => fs.readFileSync(path.join(o.checkpoint, f), 'utf8');
  const files = { config: rd('config.json'), vocab: rd('vocab.json'), merges: rd('merges.txt') };
  // the checkout when the run starts (it may move while the run goes on)
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const { M, lab } = await module(o.wasm);
  const base = o.baseline ? await module(o.baseline) : null;
  const cases = [['read', 0], ['f32', 1], ...o.threads.map((t) => [`q8_0 ${t} thread${t > 1 ? 's' : ''}`, t])];
  if (base) cases.push(['q8_0 1 thread, baseline', 1]);
  const times = Object.fromEntries(cases.map(([n]) => [n, []]));
  const cpus = Object.fromEntries(cases.map(([n]) => [n, []]));
  const shas = {};
  eachChunk(file, () => {});    // page cache warm: every case reads from memory
  for (let r = 0; r < o.rounds; r++) {
    for (const [name, threads] of cases) {
      let res;
      if (name === 'read') res = timed(() => readOnly(M, file));
      else if (name.endsWith('baseline')) {
        base.lab.init(1);
        res = timed(() => importOnce(base.lab, files, file, 'q8_0'));
        (shas.baseline ||= new Set()).add(res.sha256);   // may differ: the GGUF's metadata can change between commits
      } else {
        lab.init(threads);
        res = timed(() => importOnce(lab, files, file, name === 'f32' ? 'f32' : 'q8_0'));
        (shas[name === 'f32' ? 'f32' : 'q8_0'] ||= new Set()).add(res.sha256);
      }
      times[name].push(res.s);
      cpus[name].push(res.cpu);
      console.error(`round ${r + 1}: ${name} ${res.s.toFixed(2)} s wall, ${res.cpu.toFixed(2)} s CPU`);
    }
  }
  const machine = `${os.cpus().length} x ${os.cpus()[0].model}, load ${os.loadavg()[0].toFixed(1)}`;
  const row = (n) => ({ case: n, median_s: median(times[n]), min_s: Math.min(...times[n]), max_s: Math.max(...times[n]),
                        cpu_median_s: median(cpus[n]), cpu_min_s: Math.min(...cpus[n]), cpu_max_s: Math.max(...cpus[n]),
                        rounds_s: times[n], rounds_cpu_s: cpus[n] });
  const doc = { commit, wasm_build: o.wasm, machine, baseline: o.baseline || null, checkpoint: path.basename(o.checkpoint), bytes: fs.statSync(file).size, rounds: o.rounds,
                rows: cases.map(([n]) => row(n)),
                identical_q8_0_across_threads: shas.q8_0 ? shas.q8_0.size === 1 : null,
                identical_to_baseline: shas.baseline && shas.q8_0 ? [...shas.baseline].every((h) => shas.q8_0.has(h)) : null };
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(doc, null, 2) + '\n');
  console.log(`${doc.checkpoint} (${(doc.bytes / 2 ** 20).toFixed(0)} MB), ${o.rounds} alternating rounds, commit ${commit}; ${machine}\n`);
  console.log('| case | wall, median | wall, min - max | CPU time, median | CPU time, min - max |\n| --- | ---: | ---: | ---: | ---: |');
  const f = (x) => x.toFixed(2);
  for (const r of doc.rows) {
    console.log(`| ${r.case} | ${f(r.median_s)} s | ${f(r.min_s)} - ${f(r.max_s)} s | ${f(r.cpu_median_s)} s | ${f(r.cpu_min_s)} - ${f(r.cpu_max_s)} s |`);
  }
  if (doc.identical_q8_0_across_threads === false) { console.error('import_phases: the Q8_0 GGUF differs between thread counts'); process.exitCode = 1; }
  for (const m of [M, base && base.M]) if (m && m.PThread) m.PThread.terminateAllThreads();
}

main().catch((e) => { console.error(`import_phases: ${e.message}`); process.exit(1); });
