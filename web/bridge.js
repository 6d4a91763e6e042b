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
  // Pointers and sizes come back from wasm as signed 32-bit numbers: above 2 GiB of
  // heap they are negative, and HEAPU8.slice(p, ...) or UTF8ToString(p) would read
  // from the wrong place. Every pointer or size_t result goes through >>> 0.
  const ptrFn = (name, args) => {
    const f = fn(name, 'number', args);
    return (...a) => f(...a) >>> 0;
  };
  const strFn = (name, args) => {
    const f = ptrFn(name, args);
    return (...a) => { const p = f(...a); return p ? M.UTF8ToString(p) : ''; };
  };
  const c = {
    init: fn('lab_init', 'number', ['number']),
    version: strFn('lab_version', []),
    presets: strFn('lab_presets', []),
    lastError: strFn('lab_last_error', []),
    loadModel: fn('lab_load_model', 'number', ['number', 'number']),
    modelInfo: ptrFn('lab_model_info', []),
    convertHf: fn('lab_convert_hf', 'number', ['number', 'number', 'number', 'number', 'number', 'number']),
    importCheck: ptrFn('lab_import_check', ['number', 'number']),
    importBegin: fn('lab_import_begin', 'number', ['number', 'number', 'number', 'number', 'number']),
    importBeginJson: fn('lab_import_begin_json', 'number', ['number', 'number', 'number', 'number', 'number']),
    importZipTail: fn('lab_import_zip_tail', 'number', ['number', 'number', 'number']),  // size as a double
    importFeed: fn('lab_import_feed', 'number', ['number', 'number']),
    importProgress: ptrFn('lab_import_progress', []),
    importFinish: fn('lab_import_finish', 'number', []),
    importAbort: fn('lab_import_abort', null, []),
    modelPtr: ptrFn('lab_model_ptr', []),
    modelSize: ptrFn('lab_model_size', []),
    setData: fn('lab_set_data', 'number', ['number', 'number']),
    setDataNames: fn('lab_set_data_names', null, ['number', 'number']),
    count: ptrFn('lab_count', ['number']),
    estimate: ptrFn('lab_estimate', ['number']),
    ablateStart: fn('lab_ablate_start', 'number', ['number']),
    ablateResume: fn('lab_ablate_resume', 'number', ['number']),
    ablateStep: fn('lab_ablate_step', 'number', []),
    events: ptrFn('lab_events', []),
    ablateCancel: fn('lab_ablate_cancel', null, []),
    resultsJson: ptrFn('lab_results_json', []),
    resultsCsv: ptrFn('lab_results_csv', []),
    adapter: fn('lab_adapter', 'number', ['number']),
    adapterConfig: ptrFn('lab_adapter_config', ['number']),
    generate: ptrFn('lab_generate', ['number']),
    tokenView: ptrFn('lab_token_view', ['number']),
    bufferPtr: ptrFn('lab_buffer_ptr', []),
    bufferSize: ptrFn('lab_buffer_size', []),
    memory: ptrFn('lab_memory', []),
    modelTensors: ptrFn('lab_model_tensors', []),
    hostNext: fn('lab_host_next', 'number', []),
    hostStep: ptrFn('lab_host_step', []),
    hostRecord: fn('lab_host_record', 'number', ['number', 'number', 'number']),
    hostSetAdapters: fn('lab_host_set_adapters', 'number', ['number', 'number']),
    hostEvals: fn('lab_host_evals', 'number', ['number']),
    hostRecordEval: fn('lab_host_record_eval', 'number', ['number', 'number']),
    setDeviceInfo: fn('lab_set_device_info', 'number', ['number']),
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
    const p = M._malloc(Math.max(1, n)) >>> 0;
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
    /** {bytes_needed, gguf_bytes, bytes_available} of importing a checkpoint of this config.json. */
    importCheck(config, type = 'q8_0') {
      return withStrings([config, type], (cf, ty) => jsonOrThrow(c.importCheck(cf, ty), 'checking memory'));
    },
    /**
     * Starts a streamed import (docs/WASM_API.md, lab_import_*): the checkpoint goes in
     * chunk by chunk and is converted into a GGUF built in wasm memory, which becomes
     * the loaded model. Returns {zipTail(u8, fileSize), feed(u8), progress(), finish(),
     * abort()}; feed copies through one bounded staging buffer. The tokenizer is
     * vocab + merges (GPT-2) or tokenizer (tokenizer.json, with tokenizerConfig:
     * tokenizer_config.json or null; the Llama family).
     */
    importer({ config, vocab, merges, tokenizer = null, tokenizerConfig = null, type = 'q8_0', name = null }) {
      if (tokenizer != null) {
        withStrings([config, tokenizer, tokenizerConfig, type, name], (cf, tj, tc, ty, nm) => {
          if (c.importBeginJson(cf, tj, tc, ty, nm) !== 0) throw fail('preparing the import');
        });
      } else {
        withStrings([config, vocab, merges, type, name], (cf, vo, me, ty, nm) => {
          if (c.importBegin(cf, vo, me, ty, nm) !== 0) throw fail('preparing the import');
        });
      }
      const CHUNK = 4 << 20;
      let stage = 0, fill = 0, open = true;
      const release = () => { if (stage) M._free(stage); stage = 0; open = false; };
      const check = (rc, what) => {
        if (rc !== 0) { const e = fail(what); release(); c.importAbort(); throw e; }
      };
      try { stage = alloc(CHUNK, 'the import buffer'); } catch (e) { c.importAbort(); throw e; }
      const flush = () => {
        if (!fill) return;
        const n = fill;
        fill = 0;
        check(c.importFeed(stage, n), 'converting the checkpoint');
      };
      return {
        zipTail(u8, fileSize) {
          const p = bytes(u8, 'the end of the checkpoint');
          try { check(c.importZipTail(p, u8.length, fileSize), 'reading the zip directory'); } finally { M._free(p); }
        },
        feed(u8) {
          if (!open) throw new Error('the import is closed');
          for (let i = 0; i < u8.length;) {
            const k = Math.min(CHUNK - fill, u8.length - i);
            heap().set(u8.subarray(i, i + k), stage + fill);
            fill += k;
            i += k;
            if (fill === CHUNK) flush();
          }
        },
        progress() { return jsonOrThrow(c.importProgress(), 'lab_import_progress'); },
        /** The model's info, with the import's last progress (held_peak_bytes: its high-water mark) as .import. */
        finish() {
          flush();
          const last = jsonOrThrow(c.importProgress(), 'lab_import_progress');
          release();
          if (c.importFinish() !== 0) throw fail('finishing the import');
          return { ...jsonOrThrow(c.modelInfo(), 'lab_model_info'), import: last };
        },
        abort() { release(); c.importAbort(); },
      };
    },
    /** The loaded model's GGUF bytes, as copies of at most chunk bytes (for caching). */
    *modelChunks(chunk = 8 << 20) {
      const p = c.modelPtr(), n = c.modelSize();
      for (let off = 0; off < n; off += chunk) yield heap().slice(p + off, p + Math.min(n, off + chunk));
    },
    modelSize() { return c.modelSize(); },
    /**
     * A GGUF of size bytes written straight into wasm memory chunk by chunk:
     * {write(u8), finish() -> model info, abort()}. The module owns it once finished.
     */
    modelWriter(size) {
      let p = alloc(size, 'the model file'), off = 0;
      const abort = () => { if (p) M._free(p); p = 0; };
      return {
        write(u8) {
          if (!p) throw new Error('the model file is closed');
          if (off + u8.length > size) { abort(); throw new Error(`the model file is longer than its stated ${size} bytes`); }
          heap().set(u8, p + off);
          off += u8.length;
        },
        finish() {
          if (off !== size) { abort(); throw new Error(`the model file ended after ${off} of ${size} bytes`); }
          const q = p;
          p = 0;
          if (c.loadModel(q, size) !== 0) throw fail('loading the model');  // the module owns q now
          return jsonOrThrow(c.modelInfo(), 'lab_model_info');
        },
        abort,
      };
    },
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
    /** names: [train file name, eval file name] (optional), recorded in results.json beside the sha256. */
    setData(trainText, evalText, names = []) {
      withStrings([trainText, evalText || null], (t, e) => {
        if (c.setData(t, e) !== 0) throw fail('reading the data');
      });
      withStrings([names[0] || '', (evalText && names[1]) || ''], (t, e) => c.setDataNames(t, e));
    },
    count(exp) { return withStrings([JSON.stringify(exp)], (e) => jsonOrThrow(c.count(e), 'counting parameters')); },
    estimate(exp) { return withStrings([JSON.stringify(exp)], (e) => jsonOrThrow(c.estimate(e), 'estimating memory')); },
    ablateStart(exp) {
      withStrings([JSON.stringify(exp)], (e) => { if (c.ablateStart(e) !== 0) throw fail('starting the run'); });
    },
    /** Takes the completed trainings of an earlier run's results document (JSON text). */
    ablateResume(resultsJson) {
      withStrings([resultsJson], (r) => { if (c.ablateResume(r) !== 0) throw fail('resuming'); });
    },
    /** 1 more work, 0 finished; throws on a fatal error. */
    ablateStep() {
      const r = c.ablateStep();
      if (r < 0) throw fail('training');
      return r;
    },
    // Hosted training (docs/WASM_API.md "Hosted training"): the worker's GPU engine
    // computes each step; the C core keeps data order, schedule, evals and results.
    /** The model's config and tensors as views into wasm memory (web/gpu/API.md opts.tensors). */
    modelTensors() {
      const d = jsonOrThrow(c.modelTensors(), 'lab_model_tensors');
      const h = heap();
      const f32 = (v) => (v && v.ptr ? new Float32Array(h.buffer, v.ptr >>> 0, v.n) : null);
      const mat = (m) => (m ? { type: m.type, rows: m.rows, cols: m.cols,
        data: m.type === 'f32' ? new Float32Array(h.buffer, m.ptr >>> 0, m.rows * m.cols)
                               : new Uint8Array(h.buffer, m.ptr >>> 0, m.bytes) } : null);
      const t = d.tensors;
      return { config: d.config, tensors: {
        wte: mat(t.wte), wpe: f32(t.wpe), lnf_w: f32(t.lnf_w), lnf_b: f32(t.lnf_b),
        ...(t.lm_head ? { lm_head: mat(t.lm_head) } : {}),
        blocks: t.blocks.map((b) => ({ ln1_w: f32(b.ln1_w), ln1_b: f32(b.ln1_b), ln2_w: f32(b.ln2_w),
          ln2_b: f32(b.ln2_b),
          // GPT-2's four sites (lpl_site 0..3); the C core's later site slots are Llama's
          w: b.w.slice(0, 4).map(mat), b: b.b.slice(0, 4).map(f32) })) } };
    },
    /** Hosted evals on: hostNext also hands out the eval passes (returns 2). */
    hostEvals(on) {
      if (c.hostEvals(on ? 1 : 0) !== 0) throw fail('hosted evals');
    },
    /** 1: a step is due, 2: an eval pass is due (hostStep describes either), 0: finished;
     * throws on a fatal error. */
    hostNext() {
      const r = c.hostNext();
      if (r < 0) throw fail('training');
      return r;
    },
    /** The due step (kind "step") or eval pass (kind "eval") with copies of its examples
     * and, on a first step or an eval with adapters, the current adapters (for an eval
     * before the first step: the initial ones). */
    hostStep() {
      const s = jsonOrThrow(c.hostStep(), 'lab_host_step');
      const h = heap();
      s.examples = s.examples.map((e) => ({ ...e,
        tokens: new Int32Array(h.buffer.slice(e.tokens_ptr >>> 0, (e.tokens_ptr >>> 0) + 4 * e.T)),
        targets: new Int32Array(h.buffer.slice(e.targets_ptr >>> 0, (e.targets_ptr >>> 0) + 4 * e.T)),
        mask: new Uint8Array(h.buffer.slice(e.mask_ptr >>> 0, (e.mask_ptr >>> 0) + e.T)) }));
      if (s.lora && (s.first_step || s.kind === 'eval')) {
        const p = s.lora.params_ptr >>> 0;
        s.lora.params = new Float32Array(h.buffer.slice(p, p + 4 * s.lora.n_params));
      }
      return s;
    },
    /** Records the eval pass: nll holds the losses of every scored position of every eval
     * example in order. True when the adapters must be written back (hostSetAdapters). */
    hostRecordEval(nll) {
      const p = M._malloc(Math.max(4, nll.byteLength));
      if (!p) throw new Error('out of memory: eval losses from the GPU');
      try {
        new Float32Array(heap().buffer, p, nll.length).set(nll);
        const r = c.hostRecordEval(p, nll.length);
        if (r < 0) throw fail('recording an eval');
        return r === 1;
      } finally { M._free(p); }
    },
    /** Records the step: true when the adapters must be written back (hostSetAdapters). */
    hostRecord(loss, gradNorm, tokens) {
      const r = c.hostRecord(loss, gradNorm, tokens | 0);
      if (r < 0) throw fail('recording a step');
      return r === 1;
    },
    hostSetAdapters(params) {
      const p = M._malloc(params.byteLength);
      if (!p) throw new Error('out of memory: adapters written back from the GPU');
      try {
        new Float32Array(heap().buffer, p, params.length).set(params);
        if (c.hostSetAdapters(p, params.length) !== 0) throw fail('writing the adapters back');
      } finally { M._free(p); }
    },
    setDeviceInfo(info) {
      withStrings([JSON.stringify(info)], (j) => { if (c.setDeviceInfo(j) !== 0) throw fail('device info'); });
    },
    events() { const p = c.events(); return p ? JSON.parse(M.UTF8ToString(p)) : []; },
    ablateCancel() { c.ablateCancel(); },
    resultsJson() { return str(c.resultsJson()); },
    resultsCsv() { return str(c.resultsCsv()); },
    adapter(i) {
      if (c.adapter(i) !== 0) throw fail(`adapter of training ${i}`);
      return takeBuffer();
    },
    adapterConfig(i) {
      const p = c.adapterConfig(i);
      if (!p) throw fail(`adapter config of training ${i}`);
      return M.UTF8ToString(p);
    },
    generate(req) { return withStrings([JSON.stringify(req)], (r) => jsonOrThrow(c.generate(r), 'generating')); },
    tokenView(req) { return withStrings([JSON.stringify(req)], (r) => jsonOrThrow(c.tokenView(r), 'token view')); },
    memory() { const p = c.memory(); return p ? JSON.parse(M.UTF8ToString(p)) : null; },
    heapBytes() { return heap().length; },
  };
};
