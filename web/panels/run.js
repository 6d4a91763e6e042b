// Panel 5, Run: checks the hyper-parameters and the memory estimate, runs the
// ablation in the worker, follows its events on the progress bar and the charts,
// and hands the finished results to the Results panel. Cancel lands within a step.
// Each run has a record in IndexedDB; one that stopped early (reload, closed tab,
// out of memory, cancel) is offered for resuming after a reload. Out of memory
// ends the run with what completed and restarts the worker.
import { $, fmtNum, fmtBytes, fmtTime } from '../dom.js';
import { trainingsOf } from '../table.js';
import { engine } from '../engine.js';
import * as store from '../store.js';
import { state, showError, clearError, setStatus, updateButtons } from '../state.js';
import { checkHp, setHp, readHp } from './hp.js';
import { experiment } from './placements.js';
import { charts } from './training.js';
import { saveTraining, showResults, clearResults, storageFailed, savesSettled } from './results.js';
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

// A new run, or (prior = {run, recs}) the continuation of a stored one: its
// completed trainings are drawn and kept as they were. Charts and curves have a
// series per (placement, seed) training (seeds.js seriesKey).
function startRun(exp, prior) {
  const names = exp.placements.map((p) => (typeof p === 'string' ? p : p.name));
  const seeds = Array.from({ length: exp.seeds || 1 }, (_, k) => exp.seed + k);
  const series = seeds.flatMap((s) => names.map((n) => seriesKey(n, s, exp)));
  state.running = true;
  state.runId = prior ? prior.run.runId : `${Date.now()}`;
  state.run = { names, totalSteps: 0, done: {}, failed: {}, cancelled: false, startedAt: performance.now(),
                experiment: exp, curves: Object.fromEntries(series.map((n) => [n, { loss: [], lr: [], evals: [] }])) };
  state.results = null;
  state.adapters = {};
  state.resumable = null;
  $('#resume-offer').hidden = true;
  charts.reset(series);
  for (const r of prior ? prior.recs : []) {
    const key = r.series || r.name;
    state.run.curves[key] = r.curves || state.run.curves[key];
    (r.curves?.loss || []).forEach((l, i) => charts.addStep(key, i + 1, l));
    (r.curves?.evals || []).forEach((e) => charts.addEval(key, e.epoch, e.eval_loss, e.perplexity));
    if (r.adapter) state.adapters[key] = { adapter: r.adapter, config: r.adapterConfig };
  }
  clearResults();
  $('#run-progress').value = 0;
  setStatus('#run-status', prior ? `Resuming: ${prior.recs.length} of ${names.length * (exp.seeds || 1)} training(s) already done…` :
    'Preparing the run…');
  updateButtons();
  saveRunRecord({ experiment: exp, names, status: 'running', modelName: state.model && state.model.name });
}

// The run's record in IndexedDB; a full storage is said once per run, not per write.
function saveRunRecord(fields) {
  store.saveRun(state.runId, fields).catch((e) => storageFailed(e, 'the run record'));
}

/** The engine's identity of the run that just started (config, model, data): stored for a resume. */
export function onRunIdentity(msg) {
  if (state.running && state.runId) saveRunRecord({ config: msg.config, model: msg.model, data: msg.data });
}

function finishRun(r) {
  state.resultsJson = r.resultsJson;
  state.resultsCsv = r.resultsCsv;
  state.results = r.resultsJson ? JSON.parse(r.resultsJson) : null;
  state.liveResults = state.results;  // the worker holds these trainings' adapters
  state.run.cancelled = r.cancelled;
  showResults();
  const n = trainingsOf(state.results).filter((p) => p.status === 'done').length;
  if (r.failed) {
    setStatus('#run-status', `The run stopped: ${n} completed training(s) kept.`);
    showError(r.failed);
  } else {
    setStatus('#run-status', r.cancelled ? `Cancelled; ${n} completed training(s) kept.` :
      `Finished in ${fmtTime((performance.now() - state.run.startedAt) / 1000)}.`);
    if (!r.cancelled) $('#run-progress').value = $('#run-progress').max;
  }
  saveRunRecord({ status: r.failed ? 'failed' : r.cancelled ? 'cancelled' : 'finished' });
  // Out of memory leaves a grown (and maybe fragmented) heap behind: start afresh.
  if (r.oom) document.dispatchEvent(new CustomEvent('lab:restart-engine', { detail: { reload: true } }));
}

async function runExperiment(exp, resume, prior) {
  startRun(exp, prior);
  try {
    finishRun(await engine.call('run', { experiment: exp, resume }));
  } catch (e) {
    setStatus('#run-status', 'The run stopped with an error.');
    if (!/crashed|ran out of memory|worker failed/.test(e.message)) showError(`Run: ${e.message}`);
    if (prior) {
      // A refused resume (config, model or data differ) leaves the stored run as it was.
      state.resumable = prior;
      $('#resume-offer').hidden = false;
    } else {
      saveRunRecord({ status: 'failed' });
    }
  } finally {
    await savesSettled();   // a full storage is said before the run is reported over
    state.running = false;
    updateButtons();
  }
}

/** Runs the ticked placements to the end (or until cancelled). */
export async function run() {
  clearError();
  const exp = experiment();
  const bad = checkHp(exp);
  if (bad.length) return showError(`Hyper-parameters: ${bad.join('; ')}`);
  if (!await fitsInMemory(exp)) return;
  await runExperiment(exp, null, null);
}

/** After a reload: offers to finish the latest stored run if it stopped before its end. */
export function offerResume(last) {
  const run = last && last.run;
  const recs = last ? last.recs : [];
  // A unit is one (placement, seed) training; with one seed, one placement.
  const seeds = (run && run.experiment && run.experiment.seeds) || 1;
  const left = run && run.names ? run.names.filter((n) => recs.filter((r) => r.name === n).length < seeds) : [];
  if (!run || run.status === 'finished' || !run.config || !left.length || state.running) return;
  state.resumable = { run, recs };
  const when = new Date(run.createdAt).toLocaleString();
  const done = [...new Set(recs.map((r) => r.name))].join(', ') || 'none';
  $('#resume-text').textContent = seeds > 1
    ? `The run started ${when} stopped after ${recs.length} of ${run.names.length * seeds} trainings ` +
      `(${seeds} seeds per placement). Resume trains the rest of ${left.join(', ')} with the same config.`
    : `The run started ${when} stopped after ${recs.length} of ${run.names.length} placement(s) (${done} done). ` +
      `Resume trains ${left.join(', ')} with the same config.`;
  $('#resume-offer').hidden = false;
  updateButtons();
}

// Finishes the stored run: same experiment; the engine checks that the stored config,
// model and data match what is loaded before it takes the completed trainings.
async function resume() {
  clearError();
  const prior = state.resumable;
  if (!prior) return;
  const { run: rec, recs } = prior;
  if (rec.model && rec.model.sha256 && state.model.sha256 && rec.model.sha256 !== state.model.sha256) {
    return showError(`Resume: the stopped run used the model ${rec.model.name || ''} (sha256 ` +
      `${rec.model.sha256.slice(0, 12)}…); load that model to resume it.`);
  }
  // A run stored before a setting existed ran as it was then (the engine's "saved"
  // defaults: no base dropout, fp32), which is also how the engine compares configs.
  const { base_dropout, compute } = state.presets.saved;
  const exp = { base_dropout, compute, ...rec.experiment };
  setHp({ ...readHp(), ...exp }); // a field the stored run lacks keeps its input
  const doc = { config: rec.config, model: rec.model, data: rec.data, trainings: recs.map((r) => r.result) };
  await runExperiment(exp, JSON.stringify(doc), prior);
}

function cancel() {
  if (!state.running) return;
  engine.cancel();
  setStatus('#run-status', 'Cancelling after the current step…');
}

function onStep(run, curves, ev, key) {
  run.done[ev.training] = ev.step;
  if (curves) { curves.loss[ev.step - 1] = ev.loss; curves.lr[ev.step - 1] = ev.lr; curves.steps = ev.steps; }
  charts.addStep(key, ev.step, ev.loss);
  const done = Object.values(run.done).reduce((a, b) => a + b, 0);
  $('#run-progress').value = Math.min(done, $('#run-progress').max);
  setStatus('#run-status', `${key} · epoch ${ev.epoch} · step ${ev.step}/${ev.steps} · loss ${fmtNum(ev.loss, 4)} · ` +
    `${fmtNum(ev.tokens_per_s, 3)} tok/s (${run.experiment.device ?? 'cpu'}, compute ${run.experiment.compute ?? 'int8'}, base dropout ${run.experiment.base_dropout ?? 'config'}) · elapsed ${fmtTime(ev.elapsed_s)} · ETA ${fmtTime(ev.eta_s)}`);
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
  } else if (ev.type === 'training_done') {
    const i = ev.training;
    run.done[i] = curves && curves.steps ? curves.steps : run.done[i];
    saveTraining(ev, key);
  } else if (ev.type === 'training_failed') {
    run.failed[key] = ev.message;
    showError(`Training ${key} failed: ${ev.message}`);
  } else if (ev.type === 'done') {
    run.cancelled = !!ev.cancelled;
  }
}

export function initRunPanel() {
  $('#run').addEventListener('click', run);
  $('#cancel').addEventListener('click', cancel);
  $('#resume').addEventListener('click', resume);
}
