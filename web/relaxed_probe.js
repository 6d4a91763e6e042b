// Does this engine run relaxed SIMD correctly? A 100-byte module with two relaxed
// instructions, f32x4.relaxed_madd and i32x4.relaxed_dot_i8x16_i7x16_add_s, must
// validate, and running them on fixed inputs must give the values the spec allows:
// 2 * 3 + 1 = 7, and (-3) * 5 summed over 4 lanes + 1 = -59. Shipping Safari rejects
// the module (validate is false). `ok` asks only for what the shipped "rx" build uses:
// relaxed_madd (its int8 products are SIMD128's, as the relaxed dot lost to them,
// docs/BENCHMARKS.md). `dotOk` is the relaxed dot's answer, for the builds that still
// use it (kernels_test_rx, bench_kernels_rx, -DLPL_RELAXED_DOT=ON): Node 20 with
// --experimental-wasm-relaxed-simd validates the module but its dot returns -120.
// A classic script: the worker loads it with importScripts, Node with require.
'use strict';
(function (root) {
  const BYTES = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x09, 0x02, 0x60, 0x00, 0x01, 0x7f, 0x60, 0x00, 0x01, 0x7d,   // types () -> i32, () -> f32
    0x03, 0x03, 0x02, 0x00, 0x01,                                       // two functions
    0x07, 0x09, 0x02, 0x01, 0x64, 0x00, 0x00, 0x01, 0x6d, 0x00, 0x01,   // exports "d", "m"
    0x0a, 0x34, 0x02,
    0x14, 0x00,                                   // d: no locals
    0x41, 0x7d, 0xfd, 0x0f,                       //   i8x16.splat(-3)
    0x41, 0x05, 0xfd, 0x0f,                       //   i8x16.splat(5)
    0x41, 0x01, 0xfd, 0x11,                       //   i32x4.splat(1)
    0xfd, 0x93, 0x02,                             //   i32x4.relaxed_dot_i8x16_i7x16_add_s
    0xfd, 0x1b, 0x00, 0x0b,                       //   i32x4.extract_lane 0
    0x1d, 0x00,                                   // m: no locals
    0x43, 0x00, 0x00, 0x00, 0x40, 0xfd, 0x13,     //   f32x4.splat(2)
    0x43, 0x00, 0x00, 0x40, 0x40, 0xfd, 0x13,     //   f32x4.splat(3)
    0x43, 0x00, 0x00, 0x80, 0x3f, 0xfd, 0x13,     //   f32x4.splat(1)
    0xfd, 0x85, 0x02,                             //   f32x4.relaxed_madd
    0xfd, 0x1f, 0x00, 0x0b,                       //   f32x4.extract_lane 0
  ];

  /** {validates, ok, dotOk, madd, dot, reason, dotReason}: ok when the module validates and
   *  relaxed_madd computes right; dotOk when the relaxed dot does too. */
  function probeRelaxedSimd() {
    const bytes = new Uint8Array(BYTES);
    const r = { validates: false, ok: false, dotOk: false, madd: null, dot: null, reason: '', dotReason: '' };
    try {
      r.validates = typeof WebAssembly === 'object' && WebAssembly.validate(bytes);
    } catch (e) {
      r.reason = r.dotReason = `WebAssembly.validate threw: ${e.message}`;
      return r;
    }
    if (!r.validates) {
      r.reason = r.dotReason = 'relaxed SIMD does not validate in this engine';
      return r;
    }
    try {
      const e = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
      r.dot = e.d();
      r.madd = e.m();
    } catch (e) {
      r.reason = r.dotReason = `the relaxed-SIMD probe failed to run: ${e.message}`;
      return r;
    }
    r.ok = r.madd === 7;
    r.dotOk = r.dot === -59;
    if (!r.ok) r.reason = `relaxed SIMD validates but relaxed_madd computes ${r.madd}, expected 7`;
    if (!r.dotOk) r.dotReason = `the relaxed dot computes ${r.dot}, expected -59`;
    if (!r.dotOk && !r.reason) r.dotReason = `relaxed SIMD validates but ${r.dotReason}`;
    return r;
  }

  root.probeRelaxedSimd = probeRelaxedSimd;
  if (typeof module === 'object' && module.exports) module.exports = { probeRelaxedSimd };
})(typeof self !== 'undefined' ? self : globalThis);
