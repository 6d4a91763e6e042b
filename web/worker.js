// The Web Worker that owns the wasm module (classic worker: the emcc output is a
// classic script). Picks the threaded build when the page is cross-origin isolated,
// the single-thread build otherwise; a threaded page gets the relaxed-SIMD build
// (loralab_rx) when the engine validates and correctly runs relaxed SIMD
// (relaxed_probe.js), the plain SIMD128 one (loralab_mt) otherwise or when the page
// asks for it (init {wasm: 'simd128'}, the page's ?wasm=simd128); runs the ablation one unit at a time so that
// progress arrives every step and Cancel lands within a step; turns a crash or an
// out-of-memory into a readable error. The page restarts it by creating a new one.
//
// Protocol: the page posts {id, cmd, ...}; the worker answers {id, ok, result} or
// {id, ok: false, error}, and posts unsolicited {type: 'progress' | 'events' |
// 'adapter' | 'crash', ...} messages.
'use strict';

importScripts('bridge.js', 'hub.js', 'relaxed_probe.js');

let M = null;          // the emcc module
let lab = null;        // LabBridge(M)
let dead = null;       // message of a crash; every later call refuses
let running = false;
let cancelRequested = false;
let info = null;
let testMode = false;  // set by init {test: true}: enables crashForTest
let heapLimit = 4 * 2 ** 30;  // bytes the wasm heap may grow to (the build's maximum, or init's maxHeapMB)

let variant = self.crossOriginIsolated ? 'mt' : 'st';   // 'rx' when init picks the relaxed build
let relaxed = null;    // the relaxed-SIMD probe's answer ({validates, ok, reason}; ok: relaxed_madd runs right)
// as results.json environment.build (lpl_build_name)
const BUILD_NAMES = { rx: 'wasm relaxed-simd threads', mt: 'wasm threads', st: 'wasm single-thread' };

// The build for this page: 'st' without cross-origin isolation; else 'rx' where relaxed
// SIMD validates and relaxed_madd computes right (all the rx build uses), unless the
// page forces SIMD128 (wasm: 'simd128').
function pickVariant(wasm) {
  if (wasm && !['simd128', 'relaxed', 'auto'].includes(wasm)) {
    throw new Error(`unknown wasm build "${wasm}": use simd128 or relaxed (default: relaxed where it validates)`);
  }
  if (!self.crossOriginIsolated) return 'st';
  relaxed = self.probeRelaxedSimd();
  if (wasm === 'simd128') return 'mt';
  if (!relaxed.ok && wasm === 'relaxed') throw new Error(`the relaxed-SIMD build cannot run here: ${relaxed.reason}`);
  return relaxed.ok ? 'rx' : 'mt';
}

// Throttled progress: at most ~15 messages a second, the last one always sent.
let lastProgress = 0;
function progress(p, force) {
  const now = Date.now();
  const last = p.total > 0 && p.loaded >= p.total;
  if (!force && !last && now - lastProgress < 66 && p.phase !== 'convert') return;
  lastProgress = now;
  self.postMessage({ type: 'progress', ...p });
}

// A trap or abort inside wasm leaves the module unusable: say so in words.
function describeCrash(e) {
  const msg = String((e && e.message) || e);
  if (/OOM|out of memory|Cannot enlarge memory|Array buffer allocation failed|could not allocate/i.test(msg)) {
    return `The model ran out of memory in the browser (${msg}). Use a smaller model, fewer ` +
           'examples or a shorter max_len, then restart the worker.';
  }
  return `The wasm module crashed (${msg}). Restart the worker to continue.`;
}

function isCrash(e) {
  return e instanceof WebAssembly.RuntimeError || (M && M.ABORT) ||
         /^Aborted|unreachable|memory access out of bounds/.test(String(e && e.message));
}

// A heap that may not grow past maxMB: what a browser short of memory does to the
// module (memory.grow fails, so malloc returns NULL). The threaded build imports its
// memory, so the worker can create it; the single-thread build owns its memory.
function limitedMemory(maxMB) {
  if (!(maxMB > 0)) return {};
  if (variant === 'st') {
    self.postMessage({ type: 'warning', message: 'max-heap-mb applies to the threaded build only' });
    return {};
  }
  const initialPages = 1024;                    // the build's INITIAL_MEMORY, 64 MB
  const maxPages = Math.max(initialPages, Math.floor(maxMB * 16));
  heapLimit = maxPages * 65536;
  return { wasmMemory: new WebAssembly.Memory({ initial: initialPages, maximum: maxPages, shared: true }) };
}

async function init({ wasmBase, threads, test, maxHeapMB, wasm }) {
  testMode = !!test;
  variant = pickVariant(wasm);
  const base = new URL(wasmBase || 'build-wasm/', self.location.href).href;
  const jsUrl = new URL(`loralab_${variant}.js`, base).href;
  importScripts(jsUrl);
  M = await self.createLoraLab({
    mainScriptUrlOrBlob: jsUrl,                 // pthread workers need the absolute URL
    locateFile: (path) => new URL(path, base).href,
    print: (s) => console.log(s),
    printErr: (s) => console.warn(s),
    onAbort: (what) => { dead = describeCrash(what); },
    ...limitedMemory(maxHeapMB),
  });
  lab = self.LabBridge(M);
  const maxThreads = variant !== 'st' ? Math.min(threads || navigator.hardwareConcurrency || 2, 8) : 1;
  lab.init(maxThreads);
  return { version: lab.version(), variant, build: BUILD_NAMES[variant],
           relaxedSimd: relaxed && { validates: relaxed.validates, ok: relaxed.ok, reason: relaxed.reason },
           isolated: self.crossOriginIsolated, threads: maxThreads, heapLimit,
           presets: lab.presets() };
}

let loadAbort = null;   // AbortController of the model load in progress

// Every source streams into wasm memory (web/hub.js): nothing holds the whole file.
async function loadModel(src) {
  dropGpuModel();
  loadAbort = new AbortController();
  const signal = loadAbort.signal;
  const report = (p, force) => progress(p, force);
  try {
    let r;
    if (src.kind === 'url') {
      r = await self.LabHub.loadUrl(src.url, lab, report, signal);
    } else if (src.kind === 'files') {
      r = await self.LabHub.loadFiles(src.files, lab, report, signal);
    } else if (src.kind === 'hub') {
      r = await self.LabHub.load(src, lab, report, signal);
      r.name = `${src.repo}@${src.revision || 'main'}`;
    } else {
      throw new Error(`unknown model source ${src.kind}`);
    }
    info = r.info;
    return { info, source: r.name, fromCache: !!r.fromCache, weights: r.weights || null,
             cachedIn: r.cachedIn || null, commit: r.commit || null, bytes: r.bytes };
  } catch (e) {
    if (e.cancelled || signal.aborted) throw new Error('loading the model was cancelled');
    throw e;
  } finally {
    loadAbort = null;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

const mb = (n) => `${(n / 2 ** 20).toFixed(1)} MB`;

// The library's "out of memory: <what> (<n> bytes)" in words, with the heap's size and
// limit; null when the failure was something else.
function outOfMemory(message) {
  const m = /out of memory: (.*?) \((\d+) bytes\)/.exec(message);
  if (!m && !/out of memory/i.test(message)) return null;
  const heap = M.wasmMemory ? M.wasmMemory.buffer.byteLength : M.HEAPU8.length;
  const what = m ? `${m[1]} (${Number(m[2]).toLocaleString('en-US')} bytes)` : message;
  return `Out of memory in the browser: could not allocate ${what}; the wasm heap is ${mb(heap)} and ` +
    `cannot grow past its limit of ${mb(heapLimit)}. Completed trainings are kept; the worker restarts. ` +
    'Use a smaller r, fewer placements, a shorter max_len or a smaller model.';
}

// What the engine reports about a run it just started: the normalised config and the
// model and data identity, which a later resume must match.
function runIdentity() {
  const doc = JSON.parse(lab.resultsJson());
  return { config: doc.config, model: doc.model, data: doc.data };
}

// ---- WebGPU (device "webgpu"): the engine of web/gpu/ computes each training step; the
// C core hands out the steps and keeps everything else (docs/WASM_API.md "Hosted training").
let gpu = null;        // {device, adapterInfo, limits, features, engine} once requested
let gpuLost = null;    // message once the device is lost
let gpuModel = null;   // the loaded model's weights on the GPU (createGpuModel), shared by a run's trainings
function dropGpuModel() { if (gpuModel) gpuModel.destroy(); gpuModel = null; }

async function gpuDevice() {
  if (gpuLost) throw new Error(gpuLost);
  if (gpu) return gpu;
  if (!self.navigator || !navigator.gpu) {
    throw new Error('device "webgpu": this browser has no WebGPU in workers (navigator.gpu is missing); choose cpu');
  }
  const engine = await import('./gpu/engine.js');
  const g = await engine.requestGpuDevice(navigator.gpu);
  g.engine = engine;
  g.device.lost.then((i) => {
    const why = String((i && (i.message || i.reason)) || 'unknown reason').replace(/\.+$/, '');
    gpuLost = `WebGPU device lost (${why}). Completed trainings are ` +
      'kept; choose cpu, or reload the page to try the GPU again.';
    gpu = null;
    gpuModel = null;
  });
  gpu = g;
  return g;
}

// What results.json records under environment.webgpu.
function gpuInfo(g) {
  const a = g.adapterInfo || {};
  return { vendor: a.vendor || '', architecture: a.architecture || '', device: a.device || '',
           description: a.description || '', emulation: a.architecture === 'swiftshader',
           limits: g.limits || {}, features: g.features ? [...g.features] : [] };
}

// The hosted loop: lab.hostNext runs the C core's own units (starts and ends of
// trainings) and hands out each step and each eval pass, which the GPU computes: an
// eval runs on the training's adapters where they are (the base model's on a trainer
// without adapters), its per-position losses go back to the C core, which reduces them
// as a CPU eval; the adapters come back once, at each training's end.
async function hostedLoop(onEvents, maxTokens) {
  const g = await gpuDevice();
  lab.setDeviceInfo(gpuInfo(g));
  lab.hostEvals(true);
  const cfg = JSON.parse(lab.resultsJson()).config;
  let tr = null, training = -1, cancelled = false;
  // The weights go up once per loaded model (dropped when another is loaded); views
  // into wasm memory are taken right before the upload (the heap may have grown).
  const model = async () => {
    if (!gpuModel || gpuModel.device !== g.device) {
      dropGpuModel();
      const m = lab.modelTensors();
      gpuModel = await g.engine.createGpuModel(g.device, m.config, m.tensors);
    }
    return gpuModel;
  };
  const limits = (m) => ({ maxT: Math.min(m.config.n_ctx, maxTokens || cfg.max_len || m.config.n_ctx),
                           maxBatch: Math.max(1, cfg.batch_size | 0) });
  const examples = (s) => s.examples.map((e) => ({ tokens: e.tokens, targets: e.targets, mask: e.mask }));
  try {
    for (;;) {
      if (cancelRequested && !cancelled) { lab.ablateCancel(); cancelled = true; }
      const more = lab.hostNext();
      onEvents(lab.events());
      if (!more) break;
      const s = lab.hostStep();
      if (s.kind === 'eval') {
        // The running training's trainer holds its current adapters; an eval before a
        // training's first step (or the base model's) gets a trainer of its own.
        if (tr && s.training !== training) {
          // an eval of another training: the last one has ended (its adapters came back),
          // so its buffers go before the eval's trainer is made (one trainer on the GPU)
          tr.destroy();
          tr = null;
          training = -1;
        }
        let et = tr;
        if (!tr) {
          const m = await model();
          et = await g.engine.createGpuTrainer(g.device, {
            model: m,
            lora: s.lora ? { r: s.lora.r, scaling: s.lora.scaling, dropout: 0, modules: s.lora.modules, params: s.lora.params }
                         : { r: 1, scaling: 0, dropout: 0, modules: [], params: new Float32Array(0) },
            train: limits(m),
          });
        }
        let r;
        try { r = await et.evalTokens(examples(s)); } finally { if (et !== tr) et.destroy(); }
        const want = lab.hostRecordEval(r.nll);
        onEvents(lab.events());
        if (want) lab.hostSetAdapters(await tr.readAdapters());
        await tick();
        continue;
      }
      if (s.first_step || s.training !== training) {
        if (tr) tr.destroy();
        tr = null;
        const m = await model();
        tr = await g.engine.createGpuTrainer(g.device, {
          model: m,
          lora: { r: s.lora.r, scaling: s.lora.scaling, dropout: s.lora.dropout, modules: s.lora.modules,
                  params: s.lora.params },
          train: { ...limits(m), gradClip: s.grad_clip,
                   adamw: { beta1: s.adamw.beta1, beta2: s.adamw.beta2, eps: s.adamw.eps,
                            weightDecay: s.adamw.weight_decay },
                   dropout: s.base_dropout, baseSeed: BigInt(s.seed), loraSeed: BigInt(s.lora.seed) },
        });
        training = s.training;
      }
      const r = await tr.step(examples(s), s.lr);
      const tokens = s.examples.reduce((a, e) => a + e.T, 0);
      const want = lab.hostRecord(r.loss, r.gradNorm, tokens);
      onEvents(lab.events());
      if (want) lab.hostSetAdapters(await tr.readAdapters());
      await tick();
    }
  } finally {
    if (tr) tr.destroy();
  }
  return cancelled;
}

// The CPU loop: one unit per iteration; the event loop turns between units so a cancel
// message is seen before the next step.
async function cpuLoop(onEvents) {
  let cancelled = false;
  for (;;) {
    if (cancelRequested && !cancelled) {
      lab.ablateCancel();
      cancelled = true;
    }
    const more = lab.ablateStep();
    onEvents(lab.events());
    if (!more) break;
    await tick();
  }
  return cancelled;
}

// A GPU failure in words: device lost, out of GPU memory, an adapter below the limits.
function gpuFailure(message) {
  if (!/WebGPU|GPU/.test(message)) return null;
  return /kept/.test(message) ? message : `${message.replace(/\.+$/, '')}. Completed trainings are kept.`;
}

// The device's own words once it is lost. What fails first is often a readback or a
// submit in flight ("Buffer was unmapped before mapping was resolved"), which says
// nothing of the cause; device.lost settles just after, so it is awaited briefly.
async function lostDeviceMessage(ms) {
  if (gpuLost) return gpuLost;
  const device = gpu && gpu.device;
  if (!device) return null;
  await Promise.race([device.lost, new Promise((ok) => setTimeout(ok, ms))]);
  return gpuLost;
}

// The ablation on the experiment's device ("cpu" or "webgpu").
// With resume (a results document of an earlier run of the same experiment), its
// completed trainings are taken as they are and only the rest is trained; the
// engine refuses another config, model or data. A fatal error that is not a crash
// (out of memory above all, or a lost GPU) ends the run with what completed: {failed, oom, ...}.
async function run({ experiment, resume }) {
  if (running) throw new Error('a run is already in progress');
  running = true;
  cancelRequested = false;
  let cancelled = false;
  const onGpu = experiment && experiment.device === 'webgpu';
  try {
    lab.ablateStart(experiment);
    if (resume) lab.ablateResume(resume);
    self.postMessage({ type: 'run_identity', ...runIdentity() });
    try {
      cancelled = onGpu ? await hostedLoop(postEvents) : await cpuLoop(postEvents);
    } catch (e) {
      if (isCrash(e)) throw e;
      const message = String(e.message || e);
      const oom = outOfMemory(message);
      const lost = onGpu ? await lostDeviceMessage(200) : null;
      const failed = oom || lost || (onGpu && gpuFailure(message)) || message;
      let resultsJson = null, resultsCsv = null;
      try { resultsJson = lab.resultsJson(); resultsCsv = lab.resultsCsv(); } catch (_) { /* what the page has */ }
      return { cancelled: cancelled || cancelRequested, failed, oom: !!oom, gpu: onGpu, resultsJson, resultsCsv };
    }
    const json = lab.resultsJson();
    return { cancelled, resultsJson: json, resultsCsv: lab.resultsCsv(), memory: lab.memory() };
  } finally {
    running = false;
  }
}

// "Benchmark this device": tokens/s of training steps on the CPU and on the GPU, same
// model, same data, same experiment cut to one placement and `steps` steps, in
// alternating rounds; medians. Events are not forwarded (the page's run is not touched,
// but the worker's last results become the benchmark's).
async function benchmark({ experiment, steps = 3, rounds = 3 }) {
  if (running) throw new Error('a run is already in progress');
  running = true;
  cancelRequested = false;
  const exp = { ...experiment, seeds: 1, max_steps: steps, n_eval: 1,
                placements: (experiment.placements || []).slice(0, 1) };
  const out = { cpu: [], webgpu: [], steps, rounds, adapter: null, error: null };
  const once = async (device) => {
    lab.ablateStart({ ...exp, device });
    let last = null;
    const seen = (evs) => { for (const e of evs) if (e.type === 'step') last = e; };
    if (device === 'webgpu') await hostedLoop(seen); else await cpuLoop(seen);
    return last ? last.tokens_per_s : NaN;
  };
  try {
    for (let k = 0; k < rounds && !cancelRequested; k++) {
      out.cpu.push(await once('cpu'));
      if (!out.error) {
        try { out.webgpu.push(await once('webgpu')); } catch (e) { out.error = String(e.message || e); }
      }
    }
    if (gpu) out.adapter = gpuInfo(gpu);
  } finally {
    running = false;
  }
  const median = (a) => { const b = a.filter(Number.isFinite).sort((x, y) => x - y); return b.length ? b[(b.length - 1) >> 1] : null; };
  out.cpuTokensPerS = median(out.cpu);
  out.gpuTokensPerS = median(out.webgpu);
  return out;
}

// Forwards events; a finished training also ships its adapter so the page can
// store it (IndexedDB) and offer downloads even after the worker is gone.
function postEvents(events) {
  if (!events.length) return;
  self.postMessage({ type: 'events', events, memory: lab.memory() });
  for (const ev of events) {
    if (ev.type !== 'training_done') continue;
    try {
      const adapter = lab.adapter(ev.training);
      const config = lab.adapterConfig(ev.training);
      self.postMessage({ type: 'adapter', training: ev.training, placement_index: ev.placement_index, seed: ev.seed,
                         placement: ev.placement, adapter, config }, [adapter.buffer]);
    } catch (e) {
      self.postMessage({ type: 'warning', message: String(e.message || e) });
    }
  }
}

const handlers = {
  init,
  loadModel: ({ source }) => loadModel(source),
  setData: ({ train, eval: ev, names }) => { lab.setData(train, ev, names); return true; },
  count: ({ experiment }) => lab.count(experiment),
  estimate: ({ experiment }) => lab.estimate(experiment),
  run,
  benchmark,
  results: () => ({ resultsJson: lab.resultsJson(), resultsCsv: lab.resultsCsv() }),
  adapter: ({ index }) => ({ adapter: lab.adapter(index), config: lab.adapterConfig(index) }),
  generate: ({ request }) => lab.generate(request),
  tokenView: ({ request }) => lab.tokenView(request),
  memory: () => lab.memory(),
  clearCache: () => self.LabHub.clearCache(),
  listCache: () => self.LabHub.listCache(),
  deleteCached: ({ key }) => self.LabHub.deleteCached(key),
  // Test hook (only after init with test: true): makes the module trap, to check
  // that a crash reads well on the page.
  crashForTest: () => {
    if (!testMode) throw new Error('crashForTest is a test hook: open the page with ?test=1');
    throw new WebAssembly.RuntimeError('memory access out of bounds (test)');
  },
};

self.onmessage = async (e) => {
  const msg = e.data || {};
  // Test hook (only after init with test: true): loses the GPU device as a driver reset
  // or a GPU out of memory does, in the middle of a run, to check what the page says
  // and keeps; like cancel, never queued behind the run.
  if (msg.cmd === 'loseGpuForTest') {
    if (testMode && gpu) gpu.device.destroy();
    return;
  }
  if (msg.cmd === 'cancel') {       // never queued behind a run or a model load
    cancelRequested = true;
    if (loadAbort) loadAbort.abort();
    return;
  }
  const { id, cmd } = msg;
  try {
    if (dead) throw new Error(dead);
    if (!handlers[cmd]) throw new Error(`unknown command ${cmd}`);
    if (cmd !== 'init' && !lab) throw new Error('the wasm module is not loaded yet');
    if (running && cmd !== 'memory') throw new Error('busy: a run is in progress (Cancel it first)');
    const result = await handlers[cmd](msg);
    self.postMessage({ id, ok: true, result });
  } catch (err) {
    let message = String((err && err.message) || err);
    if (isCrash(err) || dead) {
      dead = dead || describeCrash(err);
      message = dead;
      self.postMessage({ type: 'crash', message });
    }
    self.postMessage({ id, ok: false, error: message });
  }
};
