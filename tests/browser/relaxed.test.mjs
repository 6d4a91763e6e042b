// The relaxed-SIMD build (loralab_rx, kernels_test_rx) in Chromium: the probe the worker
// uses (web/relaxed_probe.js), the library's kernel self-check with the relaxed
// mappings (relaxed_madd in the f32 tiles, the 7-bit relaxed dot in the int8 products:
// the shipped loralab_rx leaves the dot out, as it lost to SIMD128's products, but
// kernels_test_rx keeps it; Chromium runs the dot correctly, Node 20 does not, so only
// here are its int8 checks run), and the page's fallback to the SIMD128 build with
// ?wasm=simd128. Chromium 156 has no flag that turns relaxed SIMD off (V8 dropped
// --experimental-wasm-relaxed-simd when it shipped), so ?wasm=simd128 is the fallback test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { open, openLab, findModel, wasmHasApi, WASM_DIR } from './harness.mjs';

const MODEL = findModel();
const HAVE_RX = fs.existsSync(path.join(WASM_DIR, 'kernels_test_rx.js'));
const T = { timeout: 240000 };

test('Chromium: the probe passes and every kernel of the relaxed build matches the reference loops', {
  ...T, skip: !HAVE_RX && `no relaxed build in ${WASM_DIR}`,
}, async () => {
  const h = await open();
  try {
    // any same-origin document: the server's COOP/COEP make it cross-origin isolated
    await h.page.goto(`${h.url}relaxed_probe.js`);
    const r = await h.page.evaluate(async () => {
      const load = (src) => new Promise((ok, fail) => {
        const s = document.createElement('script');
        s.src = src;
        s.onload = ok;
        s.onerror = () => fail(new Error(`cannot load ${src}`));
        document.head.appendChild(s);
      });
      await load('/relaxed_probe.js');
      const probe = self.probeRelaxedSimd();
      await load('/build-wasm/kernels_test_rx.js');
      const m = await self.createKernelsTest({ locateFile: (f) => `/build-wasm/${f}` });
      const report = JSON.parse(m.ccall('kx_selfcheck', 'string', [], []));
      return { probe, isolated: self.crossOriginIsolated, simd: m.ccall('kx_simd_name', 'string', [], []), report };
    });
    assert.equal(r.isolated, true);
    assert.deepEqual([r.probe.validates, r.probe.ok, r.probe.dotOk, r.probe.dot, r.probe.madd], [true, true, true, -59, 7],
      r.probe.reason || r.probe.dotReason);
    assert.equal(r.simd, 'wasm-relaxed');
    assert.equal(r.report.failures, 0, `first failure: ${r.report.first_failure}`);
    assert.ok(r.report.checks > 300, `only ${r.report.checks} checks ran`);
    assert.deepEqual(h.consoleErrors.filter((e) => !/Failed to load resource/.test(e)), []); // favicon
  } finally {
    await h.close();
  }
});

test('?wasm=simd128 makes the page run the plain SIMD128 build; a bad value is refused', {
  ...T, skip: !wasmHasApi() ? 'no lab API in the wasm build' : !MODEL ? 'no model' : false,
}, async () => {
  const h = await openLab(MODEL, {}, '&wasm=simd128');
  try {
    await h.page.waitForFunction(() => window.__lab.state.engine, null, { timeout: 60000 });
    const e = await h.page.evaluate(() => window.__lab.state.engine);
    assert.equal(e.variant, 'mt');
    assert.equal(e.build, 'wasm threads');
    assert.match(e.version, /wasm simd128 threads/);
    assert.equal(e.relaxedSimd.ok, true, 'the probe still ran and passed: the choice was the page\'s');
    assert.match(await h.page.textContent('#engine'), /wasm simd128 threads/);
    await h.page.goto(`${h.url}?model=${encodeURIComponent(MODEL.file)}&quick=1&test=1&wasm=avx9`);
    await h.page.waitForFunction(() => /did not start/.test(document.querySelector('#engine').textContent), null,
      { timeout: 60000 });
    const errors = await h.page.evaluate(() => window.__lab.state.errors.join('\n'));
    assert.match(errors, /unknown wasm build "avx9"/);
  } finally {
    await h.close();
  }
});
