// Does this engine run relaxed SIMD correctly? A 100-byte module with the two relaxed
// instructions the "rx" build uses (f32x4.relaxed_madd, i32x4.relaxed_dot_i8x16_i7x16_add_s)
// must validate, and running them on fixed inputs must give the values the spec
// allows: 2 * 3 + 1 = 7, and (-3) * 5 summed over 4 lanes + 1 = -59. Shipping Safari
// rejects the module (validate is false); Node 20 with --experimental-wasm-relaxed-simd
// validates it but its relaxed dot returns -120, so `ok` is false there too.
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

  /** {validates, ok, madd, dot, reason}: ok only when both instructions validate and compute right. */
  function probeRelaxedSimd() {
    const bytes = new Uint8Array(BYTES);
    const r = { validates: false, ok: false, madd: null, dot: null, reason: '' };
    try {
      r.validates = typeof WebAssembly === 'object' && WebAssembly.validate(bytes);
    } catch (e) {
      r.reason = `WebAssembly.validate threw: ${e.message}`;
      return r;
    }
    if (!r.validates) {
      r.reason = 'relaxed SIMD does not validate in this engine';
      return r;
    }
    try {
      const e = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
      r.dot = e.d();
      r.madd = e.m();
    } catch (e) {
      r.reason = `the relaxed-SIMD probe failed to run: ${e.message}`;
      return r;
    }
    r.ok = r.dot === -59 && r.madd === 7;
    if (!r.ok) r.reason = `relaxed SIMD validates but computes wrong values (dot ${r.dot}, expected -59; madd ${r.madd}, expected 7)`;
    return r;
  }

  root.probeRelaxedSimd = probeRelaxedSimd;
  if (typeof module === 'object' && module.exports) module.exports = { probeRelaxedSimd };
})(typeof self !== 'undefined' ? self : globalThis);
