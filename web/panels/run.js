// Panel 5, Run: checks the hyper-parameters and the memory estimate, runs the
// ablation in the worker, follows its events on the progress bar and the charts,
// and hands the finished results to the Results panel. Cancel lands within a step.
import { $, fmtNum, fmtBytes, fmtTime } from '../dom.js';
import { placementsOf } from '../table.js';
import { engine } from '../engine.js';
import { state, showError, clearError, setStatus, updateButtons } from '../state.js';
import { checkHp } from './hp.js';
import { experiment } from './placements.js';
import { charts } from './training.js';
import { savePlacement, showResults, clearResults } from './results.js';
import { seriesKey } from '../seeds.js';

// Refuses (with a message) a run the browser cannot hold; true when it may start.
async function fitsInMemory(exp) {
  try {
    const est = await engine.call('estimate', { experiment: exp });
    if (est && est.bytes_available > 0 && est.bytes_needed > est.bytes_available) {
      showError(`This run needs about ${fmtBytes(est.bytes_needed)} of memory but the browser can give ` +
        `${fmtBytes(est.bytes_available)}. Use fewer examples, a shorter max_len or a smaller model.`);
      return false;
    }
    return true;
  } catch (e) {
    showError(`Run: ${e.message}`);
    return false;
  }
}

function startRun(exp) {
  const placements = exp.placements.map((p) => (typeof p === 'string' ? p : p.name));
  const seeds = Array.from({ length: exp.seeds || 1 }, (_, k) => exp.seed + k);
  const names = seeds.flatMap((s) => placements.map((n) => seriesKey(n, s, exp)));
  state.running = true;
  state.runId = `${Date.now()}`;
  state.run = { names, totalSteps: 0, done: {}, failed: {}, cancelled: false, startedAt: performance.now(),
                experiment: exp, curves: Object.fromEntries(names.map((n) => [n, { loss: [], lr: [], evals: [] }])) };
  state.results = null;
  state.adapters = {};
  charts.reset(names);
  clearResults();
  $('#run-progress').value = 0;
  setStatus('#run-status', 'Preparing the run…');
  updateButtons();
}

/** Runs the ticked placements to the end (or until cancelled). */
export async function run() {
  clearError();
  const exp = experiment();
  const bad = checkHp(exp);
  if (bad.length) return showError(`Hyper-parameters: ${bad.join('; ')}`);
  if (!await fitsInMemory(exp)) return;
  startRun(exp);
  try {
    const r = await engine.call('run', { experiment: exp });
    state.resultsJson = r.resultsJson;
    state.resultsCsv = r.resultsCsv;
    state.results = r.resultsJson ? JSON.parse(r.resultsJson) : null;
    state.run.cancelled = r.cancelled;
    showResults();
    const n = placementsOf(state.results).length;
    setStatus('#run-status', r.cancelled ? `Cancelled; ${n} completed placement(s) kept.` :
      `Finished in ${fmtTime((performance.now() - state.run.startedAt) / 1000)}.`);
    if (!r.cancelled) $('#run-progress').value = $('#run-progress').max;
  } catch (e) {
    setStatus('#run-status', 'The run stopped with an error.');
    if (!/crashed|ran out of memory|worker failed/.test(e.message)) showError(`Run: ${e.message}`);
  } finally {
    state.running = false;
    updateButtons();
  }
}

function cancel() {
  if (!state.running) return;
  engine.cancel();
  setStatus('#run-status', 'Cancelling after the current step…');
}

function onStep(run, curves, ev, key) {
  run.done[ev.run ?? ev.index] = ev.step;
  if (curves) { curves.loss[ev.step - 1] = ev.loss; curves.lr[ev.step - 1] = ev.lr; curves.steps = ev.steps; }
  charts.addStep(key, ev.step, ev.loss);
  const done = Object.values(run.done).reduce((a, b) => a + b, 0);
  $('#run-progress').value = Math.min(done, $('#run-progress').max);
  setStatus('#run-status', `${key} · epoch ${ev.epoch} · step ${ev.step}/${ev.steps} · loss ${fmtNum(ev.loss, 4)} · ` +
    `${fmtNum(ev.tokens_per_s, 3)} tok/s · elapsed ${fmtTime(ev.elapsed_s)} · ETA ${fmtTime(ev.eta_s)}`);
}

function onEval(curves, ev, key) {
  if (curves) curves.evals.push({ epoch: ev.epoch, eval_loss: ev.eval_loss, perplexity: ev.perplexity,
                                  mean_sample_perplexity: ev.mean_sample_perplexity });
  charts.addEval(key, ev.epoch, ev.eval_loss, ev.perplexity);
  setStatus('#run-status', `${key} · eval after epoch ${ev.epoch}: loss ${fmtNum(ev.eval_loss, 4)}, ` +
    `perplexity ${fmtNum(ev.perplexity, 4)}`);
}

/** Follows one run event of docs/WASM_API.md. */
export function onRunEvent(ev) {
  const run = state.run;
  if (!run) return;
  const key = seriesKey(ev.placement, ev.seed, run.experiment);
  const curves = run.curves[key];
  if (ev.type === 'start') {
    run.totalSteps = ev.total_steps || 0;
    $('#run-progress').max = Math.max(1, run.totalSteps);
  } else if (ev.type === 'step') {
    onStep(run, curves, ev, key);
  } else if (ev.type === 'eval') {
    onEval(curves, ev, key);
  } else if (ev.type === 'placement_done') {
    const i = ev.run ?? ev.index;
    run.done[i] = curves && curves.steps ? curves.steps : run.done[i];
    savePlacement(ev, key);
  } else if (ev.type === 'placement_failed') {
    run.failed[key] = ev.message;
    showError(`Placement ${key} failed: ${ev.message}`);
  } else if (ev.type === 'done') {
    run.cancelled = !!ev.cancelled;
  }
}

export function initRunPanel() {
  $('#run').addEventListener('click', run);
  $('#cancel').addEventListener('click', cancel);
}
