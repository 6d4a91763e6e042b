// The lab page's entry: starts the engine (engine.js, the worker that owns the wasm
// module), wires the panels (panels/*.js, one per section of index.html) and routes
// the worker's unsolicited messages to them. With ?test=1 it also exposes
// window.__lab and lets the worker crash on request, for tests/browser/.
import { $ } from './dom.js';
import { engine } from './engine.js';
import { state, params, usePresets, showError, clearError, setStatus, updateButtons } from './state.js';
import { initModelPanel, loadModel, onProgress } from './panels/model.js';
import { initDataPanel, loadData } from './panels/data.js';
import { initPlacementsPanel, refreshCounts } from './panels/placements.js';
import { setHp, initHpPanel } from './panels/hp.js';
import { initRunPanel, onRunEvent, onRunIdentity, offerResume } from './panels/run.js';
import { charts, initTrainingPanel } from './panels/training.js';
import { initResultsPanel, onAdapter, restoreSaved } from './panels/results.js';
import { initComparePanel } from './panels/compare.js';
import { initLearnedPanel } from './panels/learned.js';
import { initDiagramPanel } from './panels/diagram.js';
import { initTour } from './panels/tour.js';
import { initRunsPanel } from './panels/runs.js';
import { experiment } from './panels/placements.js';
import { probeWebGpu, deviceNote } from './device.js';

const TEST = params.get('test') === '1';

async function startEngine() {
  state.engine = null;
  setStatus('#engine', 'Starting the engine…');
  try {
    // max-heap-mb: a heap that cannot grow past this many MB (at least 64), as in a
    // browser short of memory; the threaded build only.
    const e = await engine.call('init', { wasmBase: new URL('build-wasm/', location.href).href,
                                          threads: navigator.hardwareConcurrency || 2, test: TEST,
                                          maxHeapMB: Number(params.get('max-heap-mb')) || 0,
                                          wasm: params.get('wasm') || '' });
    state.engine = e;
    if (!state.presets) {
      usePresets(e.presets);
      useHp(params.get('quick') ? state.presets.quick : state.presets.study);
      $('#gen-tokens').value = String(state.presets.generate.max_new_tokens);
    }
    setStatus('#engine', `${e.version} · ${e.isolated ? `cross-origin isolated, ${e.threads} threads` :
      'not cross-origin isolated: single-thread build'}`);
  } catch (err) {
    setStatus('#engine', 'The engine did not start.');
    showError(`The wasm engine did not start: ${err.message}`, { crash: true });
  }
  updateButtons();
}

function forgetLoaded() {
  state.running = false;
  state.model = null;
  state.data = null;
}

engine.onEvent = (msg) => {
  if (!msg || !msg.type) return;
  if (msg.type === 'progress') onProgress(msg);
  else if (msg.type === 'events') msg.events.forEach(onRunEvent);
  else if (msg.type === 'run_identity') onRunIdentity(msg);
  else if (msg.type === 'adapter') onAdapter(msg);
  else if (msg.type === 'warning') console.warn(msg.message);
  else if (msg.type === 'crash') {
    forgetLoaded();
    showError(msg.message, { crash: true });
    updateButtons();
  }
};

async function restartEngine() {
  clearError();
  engine.restart();
  forgetLoaded();
  setStatus('#model-status', 'The worker was restarted: load the model and data again.');
  setStatus('#data-status', '');
  await startEngine();
}

// After out of memory: a fresh worker with the same model and data, the message kept.
document.addEventListener('lab:restart-engine', async () => {
  engine.restart();
  forgetLoaded();
  state.engineRestarts = (state.engineRestarts || 0) + 1;
  setStatus('#model-status', 'The worker was restarted after running out of memory; loading the model again…');
  setStatus('#data-status', '');
  await startEngine();
  if (state.engine) { loadModel(); loadData(); }
});

function useHp(values) {
  // device is the page's choice (?device=, the WebGPU probe), not a preset's: the presets
  // (lpl_experiment_to_cjson) carry device "cpu", which would undo ?device=webgpu.
  const { device, ...rest } = values;
  setHp(rest);
  refreshCounts();
}

initModelPanel(params);
initDataPanel();
initPlacementsPanel();
initHpPanel();
initRunPanel();
initTrainingPanel();
initResultsPanel();
initComparePanel();
initLearnedPanel();
initDiagramPanel();
initTour();
initRunsPanel();
$('#hp-study').addEventListener('click', () => state.presets && useHp(state.presets.study));
$('#hp-quick').addEventListener('click', () => state.presets && useHp(state.presets.quick));
$('#restart').addEventListener('click', restartEngine);
$('#error-close').addEventListener('click', clearError);

if (TEST) {
  window.__lab = {
    state,
    series: (o) => charts.series(o),
    evalSeries: () => charts.evalSeries(),
    crash: () => engine.call('crashForTest').catch((e) => e.message),
    loseGpu: () => engine.loseGpuForTest(),
    experiment: () => experiment(),
  };
}

// The device select: ?device= when given, else WebGPU when the page proposes it (a real
// GPU with the engine's limits), else the CPU, with the reason in #device-note.
async function initDevice() {
  const select = $('#device');
  const p = await probeWebGpu();
  state.gpu = p;
  select.querySelector('option[value="webgpu"]').disabled = !p.usable;
  const asked = params.get('device');
  let note = deviceNote(p);
  if (asked === 'webgpu' && p.usable && p.emulation) {
    note = `WebGPU adapter: ${[p.info.vendor, p.info.architecture].filter(Boolean).join(' ')}. ?device=webgpu: training ` +
      'steps run on it, but SwiftShader is a CPU emulator (emulation): slower than the CPU path, for checking only.';
  } else if (asked === 'webgpu' && !p.usable) note = `?device=webgpu asked for the GPU, but this page runs on the CPU: ${p.reason}.`;
  else if (asked && asked !== 'cpu' && asked !== 'webgpu') note = `?device=${asked} is not one of cpu, webgpu; ${note}`;
  select.value = (asked === 'webgpu' && p.usable) || (!asked && p.propose) ? 'webgpu' : 'cpu';
  $('#device-note').textContent = note;
  $('#benchmark-device').disabled = false;
}

// Tokens/s of training steps on the CPU and on the GPU, side by side, on the loaded model.
async function benchmarkDevice() {
  const out = $('#benchmark-result');
  if (!state.model || !state.data) { out.textContent = 'Load a model and data first.'; return; }
  if (state.running) { out.textContent = 'A run is in progress.'; return; }
  if (!state.gpu || !state.gpu.usable) { out.textContent = `No GPU to compare: ${state.gpu ? state.gpu.reason : 'WebGPU not checked yet'}.`; return; }
  const btn = $('#benchmark-device');
  btn.disabled = true;
  out.textContent = 'Benchmarking: a few training steps on the CPU and on the GPU, alternating…';
  try {
    const r = await engine.call('benchmark', { experiment: experiment() });
    const a = r.adapter || state.gpu.info || {};
    const emu = a.architecture === 'swiftshader';
    const f = (x) => (x == null ? 'n/a' : x.toFixed(1));
    out.textContent = `CPU (wasm): ${f(r.cpuTokensPerS)} tokens/s · GPU (${[a.vendor, a.architecture].filter(Boolean).join(' ')}` +
      `${emu ? ', emulation: SwiftShader is a CPU emulator, not a GPU speed' : ''}): ${f(r.gpuTokensPerS)} tokens/s · ` +
      `median of ${r.rounds} alternating rounds of ${r.steps} steps` + (r.error ? ` · GPU error: ${r.error}` : '');
    out.dataset.emulation = String(emu);
  } catch (e) {
    out.textContent = `Benchmark failed: ${e.message}`;
  } finally {
    btn.disabled = false;
  }
}
$('#benchmark-device').addEventListener('click', benchmarkDevice);

initDevice().then(() => { if (TEST) window.__lab.deviceReady = true; });

startEngine().then(() => {
  if (TEST) window.__lab.ready = true;
  if (params.get('autoload') !== '0') { loadModel(); loadData(); }
});
restoreSaved().then(offerResume);
