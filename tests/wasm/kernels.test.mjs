// Kernels of the wasm builds of the library (threaded and single-threaded) under Node,
// through the test-only modules kernels_test_{mt,st} (the checks are not shipped):
// the library self-check, bitwise thread-count independence, real use of several
// threads, loading without SharedArrayBuffer, and agreement with the native build.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const wasmDir = path.resolve(process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const nativeDir = path.resolve(process.env.LPL_BUILD_DIR || 'build');
const modules = {};

// One instance per variant, shared by the tests (a threaded instance starts 8 workers).
function load(variant) {
  modules[variant] ??= instantiate(variant);
  return modules[variant];
}

async function instantiate(variant) {
  const js = path.join(wasmDir, `kernels_test_${variant}.js`);
  const factory = require(js);
  const mod = await factory({
    wasmBinary: readFileSync(path.join(wasmDir, `kernels_test_${variant}.wasm`)),
    locateFile: (f) => path.join(wasmDir, f),
  });
  return mod;
}

const call = (mod, name, ret = 'number', types = [], args = []) => mod.ccall(name, ret, types, args);
const fingerprint = (mod, threads) =>
  JSON.parse(call(mod, 'kx_fingerprint', 'string', ['number'], [threads]));

// Pthread workers keep Node alive: stop the pool, then Emscripten's workers.
after(async () => {
  for (const mod of await Promise.all(Object.values(modules))) {
    if (mod.PThread) {
      call(mod, 'kx_threads_shutdown', null);
      mod.PThread.terminateAllThreads();
    }
  }
});

for (const variant of ['mt', 'st']) {
  test(`${variant}: every kernel matches the reference loops`, async () => {
    const mod = await load(variant);
    assert.equal(call(mod, 'kx_simd_name', 'string'), 'wasm128');
    const report = JSON.parse(call(mod, 'kx_selfcheck', 'string'));
    assert.equal(report.failures, 0, `first failure: ${report.first_failure}`);
    assert.ok(report.checks > 300, `only ${report.checks} checks ran`);
  });
}

test('the shipped modules carry no kernel checks', () => {
  for (const v of ['mt', 'st', 'rx']) {
    if (v === 'rx' && !existsSync(path.join(wasmDir, 'loralab_rx.js'))) continue;
    const js = readFileSync(path.join(wasmDir, `loralab_${v}.js`), 'utf8');
    assert.ok(js.includes('_lab_version'), `loralab_${v}.js is the lab module`);
    assert.ok(!js.includes('kx_selfcheck'), `loralab_${v}.js exports kx_selfcheck`);
  }
});

test('mt: results are bitwise identical with 1, 2 and 4 threads, and equal to st', async () => {
  const mt = await load('mt');
  const st = await load('st');
  const one = call(mt, 'kx_fingerprint', 'string', ['number'], [1]);
  assert.equal(call(mt, 'kx_threads_count'), 1);
  const two = call(mt, 'kx_fingerprint', 'string', ['number'], [2]);
  assert.equal(call(mt, 'kx_threads_count'), 2);
  const four = call(mt, 'kx_fingerprint', 'string', ['number'], [4]);
  assert.equal(call(mt, 'kx_threads_count'), 4);
  assert.ok(one.length > 1000);
  assert.equal(two, one);
  assert.equal(four, one);
  assert.equal(call(st, 'kx_fingerprint', 'string', ['number'], [0]), one);
});

test('mt: a large matmul really runs on more than one thread', async () => {
  const mt = await load('mt');
  const n = call(mt, 'kx_threads_init', 'number', ['number'], [0]);
  assert.ok(n >= Math.min(2, os.cpus().length), `pool has ${n} threads`);
  assert.ok(n <= 8, 'more threads than the prewarmed pthread pool');
  const nt = call(mt, 'kx_threads_init', 'number', ['number'], [4]);
  assert.equal(nt, 4);
  const r = call(mt, 'kx_big_matmul');
  assert.ok(Number.isFinite(r) && r !== -1);
  assert.ok(call(mt, 'kx_threads_used') > 1, `threads used: ${call(mt, 'kx_threads_used')}`);
});

test('st: loads and runs where SharedArrayBuffer does not exist', () => {
  const js = path.join(wasmDir, 'kernels_test_st.js');
  const script = `
    delete globalThis.SharedArrayBuffer;
    const fs = require('fs');
    require(${JSON.stringify(js)})({ wasmBinary: fs.readFileSync(${JSON.stringify(js.replace(/js$/, 'wasm'))}) })
      .then((m) => {
        const r = JSON.parse(m.ccall('kx_selfcheck', 'string', [], []));
        console.log(JSON.stringify({ sab: typeof SharedArrayBuffer, threads: r.threads, failures: r.failures }));
      });`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
  assert.deepEqual(out, { sab: 'undefined', threads: 1, failures: 0 });
});

// Native AVX2 (8 lanes, FMA) and wasm (4 lanes, no FMA) sum in different orders:
// each sampled output may differ by at most 1e-5 of the mean |output| of its kernel
// (sums: 1e-5 of the sum of |outputs|); conversions (exact_*) must agree bit for bit.
// A 128-bit native build (-DLPL_SIMD_FLAGS=-msse4.2: SSE2 mapping, no FMA) does the
// same operations in the same order as wasm, so there every output must match exactly.
test('wasm and native kernels agree on a fixed input', async () => {
  const bin = path.join(nativeDir, 'test_kernels');
  assert.ok(existsSync(bin), `native ${bin} not built (set LPL_BUILD_DIR)`);
  const native = JSON.parse(execFileSync(bin, ['--dump'], { encoding: 'utf8' }));
  const wasm = fingerprint(await load('st'), 0);
  assert.deepEqual(Object.keys(wasm).sort(), Object.keys(native).sort());
  assert.equal(wasm.simd, 'wasm128');
  const sameOps = native.simd === 'sse2';
  for (const [name, w] of Object.entries(wasm)) {
    if (name === 'simd') continue;
    const n = native[name];
    assert.equal(w.n, n.n, name);
    if (name.startsWith('exact_') || sameOps) {
      assert.equal(w.hash, n.hash, `${name}: bits differ`);
      continue;
    }
    const scale = n.abssum / n.n;
    assert.ok(Math.abs(w.sum - n.sum) <= 1e-5 * n.abssum, `${name}: sum ${w.sum} vs ${n.sum}`);
    assert.equal(w.sample.length, n.sample.length, name);
    w.sample.forEach((x, i) => {
      const y = n.sample[i];
      assert.ok(Math.abs(x - y) <= 1e-5 * scale, `${name}[${i}]: wasm ${x} native ${y}`);
    });
  }
});

// The relaxed-SIMD build (kernels_test_rx, built with the relaxed dot that the shipped
// relaxed build leaves out, so the mapping stays checked) in a Node child: Node 20 runs
// relaxed SIMD only with --experimental-wasm-relaxed-simd (Node 22+ without a flag). Its
// i32x4.relaxed_dot_i8x16_i7x16_add_s is wrong (web/relaxed_probe.js: -120 for the
// expected -59), so where the probe's dotOk is false the int8 products are left out
// here, with the reason printed; tests/browser/relaxed.test.mjs runs them in Chromium.
const RELAXED_NODE_FLAGS = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-wasm-relaxed-simd'] : [];
const HAVE_RX = existsSync(path.join(wasmDir, 'kernels_test_rx.js'));

test('rx: relaxed_madd and (where the engine runs it right) the 7-bit relaxed dot match the reference loops',
  { skip: !HAVE_RX && 'no relaxed build (kernels_test_rx)' }, (t) => {
    const js = path.join(wasmDir, 'kernels_test_rx.js');
    const probe = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'web', 'relaxed_probe.js');
    const script = `
      const fs = require('fs'), path = require('path');
      const probe = require(${JSON.stringify(probe)}).probeRelaxedSimd();
      require(${JSON.stringify(js)})({ wasmBinary: fs.readFileSync(${JSON.stringify(js.replace(/js$/, 'wasm'))}),
                                       locateFile: (f) => path.join(${JSON.stringify(wasmDir)}, f) })
        .then((m) => {
          const report = JSON.parse(m.ccall(probe.dotOk ? 'kx_selfcheck' : 'kx_selfcheck_no_q8', 'string', [], []));
          const simd = m.ccall('kx_simd_name', 'string', [], []);
          m.ccall('kx_threads_shutdown', null, [], []);
          m.PThread.terminateAllThreads();
          console.log(JSON.stringify({ probe, simd, report }));
          process.exit(0);
        });`;
    const out = JSON.parse(execFileSync(process.execPath, [...RELAXED_NODE_FLAGS, '-e', script], { encoding: 'utf8' }));
    assert.equal(out.probe.validates, true, 'relaxed SIMD validates under Node with the flag');
    assert.equal(out.probe.madd, 7);
    assert.equal(out.simd, 'wasm-relaxed');
    assert.equal(out.report.failures, 0, `first failure: ${out.report.first_failure}`);
    assert.equal(out.probe.ok, true, out.probe.reason);
    assert.equal(out.report.q8, out.probe.dotOk);
    assert.ok(out.report.checks > 300, `only ${out.report.checks} checks ran`);
    if (!out.probe.dotOk) t.diagnostic(`int8 products not checked under Node ${process.version}: ${out.probe.dotReason}`);
  });
