// Thin wrapper over the wasm exports of docs/WASM_API.md (classic script: loaded with
// importScripts by worker.js, defines self.LabBridge). Strings and buffers go through
// _malloc'd memory (not the 4 MB stack), so large data files are fine. Every failing
// call throws an Error carrying lab_last_error().
'use strict';

self.LabBridge = function LabBridge(M) {
  // A missing export (an older build) fails on use with a message, not at load.
  const fn = (name, ret, args) => (M['_' + name] ? M.cwrap(name, ret, args) : () => {
    throw new Error(`this wasm build has no ${name}: rebuild build-wasm (docs/WASM_API.md)`);
  });
  const c = {
    init: fn('lab_init', 'number', ['number']),
    version: fn('lab_version', 'string', []),
    presets: fn('lab_presets', 'string', []),
    lastError: fn('lab_last_error', 'string', []),
    loadModel: fn('lab_load_model', 'number', ['number', 'number']),
    modelInfo: fn('lab_model_info', 'number', []),
    convertHf: fn('lab_convert_hf', 'number', ['number', 'number', 'number', 'number', 'number', 'number']),
    setData: fn('lab_set_data', 'number', ['number', 'number']),
    count: fn('lab_count', 'number', ['number']),
    estimate: fn('lab_estimate', 'number', ['number']),
    ablateStart: fn('lab_ablate_start', 'number', ['number']),
    ablateResume: fn('lab_ablate_resume', 'number', ['number']),
    ablateStep: fn('lab_ablate_step', 'number', []),
    events: fn('lab_events', 'number', []),
    ablateCancel: fn('lab_ablate_cancel', null, []),
    resultsJson: fn('lab_results_json', 'number', []),
    resultsCsv: fn('lab_results_csv', 'number', []),
    adapter: fn('lab_adapter', 'number', ['number']),
    adapterConfig: fn('lab_adapter_config', 'number', ['number']),
    generate: fn('lab_generate', 'number', ['number']),
    tokenView: fn('lab_token_view', 'number', ['number']),
    bufferPtr: fn('lab_buffer_ptr', 'number', []),
    bufferSize: fn('lab_buffer_size', 'number', []),
    memory: fn('lab_memory', 'number', []),
  };

  // The current view of wasm memory: with threads the buffer is a growable
  // SharedArrayBuffer whose JS view goes stale when another thread grows it.
  function heap() {
    if (M.wasmMemory) return new Uint8Array(M.wasmMemory.buffer);
    return M.HEAPU8;
  }

  function fail(what) {
    const msg = c.lastError() || 'unknown error';
    const e = new Error(`${what}: ${msg}`);
    e.detail = msg;
    return e;
  }

  function alloc(n, what) {
    const p = M._malloc(Math.max(1, n));
    if (!p) throw new Error(`out of memory: could not allocate ${n} bytes for ${what} in wasm memory`);
    return p;
  }

  // Copies a JS string into malloc'd NUL-terminated UTF-8; 0 for null/undefined.
  function cstr(s, what) {
    if (s === null || s === undefined) return 0;
    const n = M.lengthBytesUTF8(s) + 1;
    const p = alloc(n, what);
    M.stringToUTF8(s, p, n);
    return p;
  }

  function bytes(u8, what) {
    const p = alloc(u8.length, what);
    heap().set(u8, p);
    return p;
  }

  // Calls f with C strings for each of strs, freeing them afterwards.
  function withStrings(strs, f) {
    const ptrs = [];
    try {
      for (const s of strs) ptrs.push(cstr(s, 'a string argument'));
      return f(...ptrs);
    } finally {
      for (const p of ptrs) if (p) M._free(p);
    }
  }

  const str = (p) => (p ? M.UTF8ToString(p) : null);
  // A failing call returns NULL (or an empty string) and leaves lab_last_error.
  const jsonOrThrow = (p, what) => {
    const text = p ? M.UTF8ToString(p) : '';
    if (!text) throw fail(what);
    return JSON.parse(text);
  };
  const takeBuffer = () => {
    const p = c.bufferPtr(), n = c.bufferSize();
    return heap().slice(p, p + n);  // a copy, safe after the next call
  };

  return {
    init(threads) { if (c.init(threads | 0) !== 0) throw fail('lab_init'); },
    version: () => c.version(),
    presets: () => JSON.parse(c.presets()),
    lastError: () => c.lastError(),
    /** Loads a GGUF model (the module takes ownership of the copy). */
    loadModel(u8) {
      const p = bytes(u8, 'the model file');
      if (c.loadModel(p, u8.length) !== 0) throw fail('loading the model');
      return jsonOrThrow(c.modelInfo(), 'lab_model_info');
    },
    modelInfo() { return jsonOrThrow(c.modelInfo(), 'lab_model_info'); },
    /** Converts a HF checkpoint; returns the GGUF bytes (a JS copy). */
    convertHf(configText, ckpt, vocabText, mergesText, type) {
      const p = bytes(ckpt, 'the checkpoint');
      try {
        return withStrings([configText, vocabText, mergesText, type], (cfg, voc, mer, ty) => {
          if (c.convertHf(cfg, p, ckpt.length, voc, mer, ty) !== 0) throw fail('converting the checkpoint');
          return takeBuffer();
        });
      } finally {
        M._free(p);
      }
    },
    setData(trainText, evalText) {
      return withStrings([trainText, evalText || null], (t, e) => {
        if (c.setData(t, e) !== 0) throw fail('reading the data');
      });
    },
    count(exp) { return withStrings([JSON.stringify(exp)], (e) => jsonOrThrow(c.count(e), 'counting parameters')); },
    estimate(exp) { return withStrings([JSON.stringify(exp)], (e) => jsonOrThrow(c.estimate(e), 'estimating memory')); },
    ablateStart(exp) {
      withStrings([JSON.stringify(exp)], (e) => { if (c.ablateStart(e) !== 0) throw fail('starting the run'); });
    },
    /** Takes the completed placements of an earlier run's results document (JSON text). */
    ablateResume(resultsJson) {
      withStrings([resultsJson], (r) => { if (c.ablateResume(r) !== 0) throw fail('resuming'); });
    },
    /** 1 more work, 0 finished; throws on a fatal error. */
    ablateStep() {
      const r = c.ablateStep();
      if (r < 0) throw fail('training');
      return r;
    },
    events() { const p = c.events(); return p ? JSON.parse(M.UTF8ToString(p)) : []; },
    ablateCancel() { c.ablateCancel(); },
    resultsJson() { return str(c.resultsJson()); },
    resultsCsv() { return str(c.resultsCsv()); },
    adapter(i) {
      if (c.adapter(i) !== 0) throw fail(`adapter of placement ${i}`);
      return takeBuffer();
    },
    adapterConfig(i) {
      const p = c.adapterConfig(i);
      if (!p) throw fail(`adapter config of placement ${i}`);
      return M.UTF8ToString(p);
    },
    generate(req) { return withStrings([JSON.stringify(req)], (r) => jsonOrThrow(c.generate(r), 'generating')); },
    tokenView(req) { return withStrings([JSON.stringify(req)], (r) => jsonOrThrow(c.tokenView(r), 'token view')); },
    memory() { const p = c.memory(); return p ? JSON.parse(M.UTF8ToString(p)) : null; },
    heapBytes() { return heap().length; },
  };
};
