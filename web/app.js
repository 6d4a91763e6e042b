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
  setHp(values);
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
  };
}

startEngine().then(() => {
  if (TEST) window.__lab.ready = true;
  if (params.get('autoload') !== '0') { loadModel(); loadData(); }
});
restoreSaved().then(offerResume);
