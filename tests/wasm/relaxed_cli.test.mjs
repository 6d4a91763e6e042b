// The CLI in the relaxed-SIMD build (loralab_node_rx.js, clang-19 through emcc with
// cmake/wasm_main_shim.c as its entry) against the SIMD128 build (loralab_node.js) and the
// native CLI: the same help text and errors with the same exit codes, and a short run on
// the bundled Q8_0 model with the same losses.
//
// Tolerance: 1e-4 relative, as for the SIMD128 wasm CLI against native (api.test.mjs).
// The relaxed build's f32 tiles use f32x4.relaxed_madd, fused on CPUs with FMA, so its
// sums may round differently; bitwise equality is not asked (issue 23).
//
// Compute int8, held within 5e-3 relative (compute int8's own rule against f32): the
// integer sums are exact, but an activation that lands near a rounding tie takes a
// neighbouring code when the float work before it rounds differently (FMA, vector
// widths), and training carries that on. The SIMD128 wasm CLI against the native CLI
// with 8-bit codes differs by 3.6e-4 in eval loss on this very run (6 steps, lab-small,
// Node 20, AVX2 machine). The shipped relaxed build (LPL_RELAXED_DOT OFF, the default:
// the relaxed dot lost, docs/BENCHMARKS.md) keeps SIMD128's int8 products with 8-bit
// codes, so its run is held to the native CLI's and runs wherever relaxed_madd is right.
// Built with -DLPL_RELAXED_DOT=ON its int8 products take 7-bit activation codes, as the
// native loralab_qa7 does (LPL_QA_MAX 63), so its run is held to loralab_qa7's; Node 20
// (--experimental-wasm-relaxed-simd) computes i32x4.relaxed_dot_i8x16_i7x16_add_s wrongly
// (web/relaxed_probe.js), so there that case is skipped with the probe's reason, and
// tests/browser/relaxed.test.mjs checks the relaxed dot in Chromium (kernels_test_rx).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const wasmDir = path.resolve(root, process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const nativeDir = path.resolve(root, process.env.LPL_BUILD_DIR || 'build');
const plainCli = path.join(wasmDir, 'loralab_node.js');
const rxCli = path.join(wasmDir, 'loralab_node_rx.js');
const nativeCli = path.join(nativeDir, 'loralab');
const qa7Cli = path.join(nativeDir, 'loralab_qa7');
const RELAXED_NODE_FLAGS = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-wasm-relaxed-simd'] : [];
const missing = !existsSync(rxCli) ? `no ${rxCli} (cmake --build build-wasm --target loralab_node_rx)`
  : !existsSync(plainCli) ? `no ${plainCli}` : false;
// The build's LPL_RELAXED_DOT, from its CMake cache (OFF, the default, when not set there).
function buildHasRelaxedDot() {
  const cache = path.join(wasmDir, 'CMakeCache.txt');
  const m = existsSync(cache) && /^LPL_RELAXED_DOT:BOOL=(\S+)/m.exec(readFileSync(cache, 'utf8'));
  return Boolean(m) && /^(ON|1|TRUE|YES|Y)$/i.test(m[1]);
}
const RX_DOT = buildHasRelaxedDot();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lab-rx-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// {status, stdout, stderr} of one CLI run: 'rx', 'plain' (wasm under Node) or a native path.
function run(which, args) {
  const [cmd, pre] = which === 'rx' ? [process.execPath, [...RELAXED_NODE_FLAGS, '--no-experimental-fetch', rxCli]]
    : which === 'plain' ? [process.execPath, ['--no-experimental-fetch', plainCli]] : [which, []];
  const r = spawnSync(cmd, [...pre, ...args], { cwd: root, encoding: 'utf8', timeout: 120e3 });
  assert.equal(r.error, undefined, `${which}: ${r.error}`);
  return r;
}

const stepLosses = (out) => [...out.matchAll(/^step \d+\/\d+ loss (\S+)/gm)].map((m) => Number(m[1]));
const evalLosses = (out) => [...out.matchAll(/^eval epoch \d+ loss (\S+)/gm)].map((m) => Number(m[1]));

function assertClose(got, want, rel, what) {
  assert.equal(got.length, want.length, `${what}: ${got.length} values, want ${want.length}`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= rel * Math.abs(want[i]),
    `${what}[${i}]: ${g} vs ${want[i]} (rel ${Math.abs(g - want[i]) / Math.abs(want[i])})`));
}

// A short run on the bundled model: 6 steps over 4 records, evals before and after each epoch (the default model
// and data, found beside the program as the installed CLI finds them).
const trainArgs = (compute, out) => ['train', '--n-train', '4', '--n-eval', '2', '--max-len', '40', '--steps', '6',
  '--r', '4', '--alpha', '8', '--lr', '0.005', '--placement', 'baseline', '--compute', compute, '--quiet',
  '--out', path.join(tmp, out)];

test('loralab_node_rx.js prints the same help as loralab_node.js', { skip: missing }, () => {
  for (const args of [['--help'], ['train', '--help']]) {
    const rx = run('rx', args), plain = run('plain', args);
    assert.equal(rx.status, 0, `rx ${args.join(' ')}: exit ${rx.status}, stderr ${rx.stderr}`);
    assert.match(rx.stdout, /^usage: loralab/m, `rx ${args.join(' ')} printed: ${JSON.stringify(rx.stdout.slice(0, 200))}`);
    assert.equal(rx.stdout, plain.stdout, args.join(' '));
  }
});

test('loralab_node_rx.js reports errors with the same message and exit code', { skip: missing }, () => {
  for (const args of [['train', '--model', path.join(tmp, 'absent.gguf')], ['no-such-command']]) {
    const rx = run('rx', args), plain = run('plain', args);
    assert.notEqual(plain.status, 0, args.join(' '));
    assert.equal(rx.status, plain.status, `${args.join(' ')}: exit ${rx.status} vs ${plain.status}`);
    assert.equal(rx.stderr, plain.stderr, args.join(' '));
  }
});

test('compute f32: loralab_node_rx.js trains like loralab_node.js and the native CLI (1e-4)', { skip: missing }, () => {
  const rx = run('rx', trainArgs('f32', 'rx-f32'));
  const plain = run('plain', trainArgs('f32', 'plain-f32'));
  assert.equal(rx.status, 0, rx.stderr);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(stepLosses(rx.stdout).length, 6, rx.stdout);
  assert.ok(evalLosses(rx.stdout).length >= 2, rx.stdout);
  assertClose(stepLosses(rx.stdout), stepLosses(plain.stdout), 1e-4, 'step loss, relaxed vs SIMD128');
  assertClose(evalLosses(rx.stdout), evalLosses(plain.stdout), 1e-4, 'eval loss, relaxed vs SIMD128');
  // Training moved the loss: the comparison is of a real run, not of two idle evals.
  const ev = evalLosses(rx.stdout);
  assert.ok(ev.at(-1) < ev[0] - 0.05, `eval loss ${ev[0]} -> ${ev.at(-1)}`);
  if (existsSync(nativeCli)) {
    const native = run(nativeCli, [...trainArgs('f32', 'native-f32'), '--threads', '1']);
    assert.equal(native.status, 0, native.stderr);
    assertClose(stepLosses(rx.stdout), stepLosses(native.stdout), 1e-4, 'step loss, relaxed vs native');
    assertClose(evalLosses(rx.stdout), evalLosses(native.stdout), 1e-4, 'eval loss, relaxed vs native');
  }
});

// The relaxed instructions as this Node runs them (web/relaxed_probe.js in a child with the flag).
function nodeProbe() {
  const probe = path.join(root, 'web', 'relaxed_probe.js');
  return JSON.parse(execFileSync(process.execPath, [...RELAXED_NODE_FLAGS, '-e',
    `console.log(JSON.stringify(require(${JSON.stringify(probe)}).probeRelaxedSimd()))`], { encoding: 'utf8' }));
}

test(`compute int8: loralab_node_rx.js trains like ${RX_DOT ? 'the native 7-bit CLI (loralab_qa7' : 'the native CLI (loralab'}, 5e-3)`, {
  skip: missing || (!existsSync(RX_DOT ? qa7Cli : nativeCli) && `no ${RX_DOT ? qa7Cli : nativeCli}`),
}, (t) => {
  const probe = nodeProbe();
  if (!probe.ok || (RX_DOT && !probe.dotOk)) {
    t.skip(`Node ${process.version} runs relaxed SIMD wrongly: ${probe.ok ? probe.dotReason : probe.reason}`);
    return;
  }
  const [refCli, refName] = RX_DOT ? [qa7Cli, 'loralab_qa7'] : [nativeCli, 'loralab'];
  const rx = run('rx', trainArgs('int8', 'rx-int8'));
  const ref = run(refCli, [...trainArgs('int8', 'ref-int8'), '--threads', '1']);
  assert.equal(rx.status, 0, rx.stderr);
  assert.equal(ref.status, 0, ref.stderr);
  assert.equal(stepLosses(rx.stdout).length, 6, rx.stdout);
  assertClose(stepLosses(rx.stdout), stepLosses(ref.stdout), 5e-3, `step loss, relaxed vs ${refName}`);
  assertClose(evalLosses(rx.stdout), evalLosses(ref.stdout), 5e-3, `eval loss, relaxed vs ${refName}`);
  const gap = (a, b) => Math.max(...a.map((x, i) => Math.abs(x - b[i]) / Math.abs(b[i])));
  t.diagnostic(`relaxed dot ${RX_DOT ? 'on' : 'off'}; largest relative gap to ${refName}: step loss `
    + `${gap(stepLosses(rx.stdout), stepLosses(ref.stdout)).toExponential(2)}, eval loss `
    + `${gap(evalLosses(rx.stdout), evalLosses(ref.stdout)).toExponential(2)}`);
});
