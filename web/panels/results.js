// The Results panel: the table (table.js), downloads of results.json/.csv, of the
// self-contained report (share.js) and of each training's PEFT adapter, and
// completed trainings kept in IndexedDB (store.js) so that they survive a reload
// or a crashed worker.
import { el, $, fill } from '../dom.js';
import { renderResults, trainingsOf, metric } from '../table.js';
import * as store from '../store.js';
import { state, setStatus, showError, clearError } from '../state.js';
import { charts } from './training.js';
import { seriesKey, drawSeedBands, renderVerdicts } from '../seeds.js';
import { refreshLearned } from './learned.js';
import { reportButton } from './share.js';

const pendingSaves = {};   // training (series key) -> promise of its IndexedDB key
const pendingUpdates = new Set();   // adapters being added to stored trainings
let quotaSaid = null;      // the run whose full storage was already reported

/** Says that something could not be kept in the browser; the page still has it. */
export function storageFailed(e, what) {
  if (!store.isQuotaError(e)) {
    console.warn(`not saved in this browser: ${what}: ${e.message}`);
    return;
  }
  state.storageFull = true;
  if (quotaSaid === state.runId) return;
  quotaSaid = state.runId;
  showError(`The browser's storage for this page is full (${e.name || 'quota exceeded'}): ${what} could not be ` +
    'saved in this browser, so it will not survive a reload. Results and adapters stay downloadable on this ' +
    'page (Results, Download) until you leave it: download them now, or clear saved trainings to make room.');
}

/** Stores a finished training (its adapter joins it when the worker sends it). */
export function saveTraining(ev, key = ev.placement) {
  const run = state.run;
  const rec = { runId: state.runId, model: state.model && state.model.name, name: ev.placement, series: key, seed: ev.seed, placement_index: ev.placement_index,
                result: ev.result || null, curves: run.curves[key], experiment: run.experiment };
  const a = state.adapters[key];
  if (a) { rec.adapter = a.adapter; rec.adapterConfig = a.config; }
  pendingSaves[key] = store.saveTraining(rec).catch((e) => {
    storageFailed(e, `training ${key}`);
    return null;
  });
  pendingSaves[key].then(refreshSaved);
}

/**
 * Resolves when every write to IndexedDB started so far has ended (stored or
 * refused), so that a run is only reported over once its storage errors are shown.
 */
export function savesSettled() {
  return Promise.all([...Object.values(pendingSaves), ...pendingUpdates]).then(() => {});
}

/** Keeps the PEFT files of a finished training, in memory and in its stored record. */
export function onAdapter(msg) {
  const key = state.run ? seriesKey(msg.placement, msg.seed, state.run.experiment) : msg.placement;
  state.adapters[key] = { adapter: msg.adapter, config: msg.config };
  const p = pendingSaves[key];
  if (p) {
    const u = p.then((id) => id && store.updateTraining(id, { adapter: msg.adapter, adapterConfig: msg.config }))
      .catch((e) => storageFailed(e, `the adapter of ${key}`));
    pendingUpdates.add(u);
    u.then(() => pendingUpdates.delete(u));
  }
  // Downloadable at once, not only at the end of the run.
  if (state.running) downloadButtons(null, null, state.adapters);
}

function download(name, data, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function adapterButtons(name, a) {
  return el('span', { class: 'adapter-dl' }, `${name}: `,
    el('button', { type: 'button', class: 'dl-adapter', dataset: { placement: name }, text: 'adapter_model.safetensors',
      onclick: () => download(`${name}-adapter_model.safetensors`, a.adapter, 'application/octet-stream') }),
    el('button', { type: 'button', class: 'dl-adapter-config', dataset: { placement: name }, text: 'adapter_config.json',
      onclick: () => download(`${name}-adapter_config.json`, a.config, 'application/json') }));
}

function downloadButtons(json, csv, adapters) {
  const items = [];
  if (json) items.push(el('button', { type: 'button', id: 'dl-json', text: 'results.json',
    onclick: () => download('results.json', json, 'application/json') }));
  if (csv) items.push(el('button', { type: 'button', id: 'dl-csv', text: 'results.csv',
    onclick: () => download('results.csv', csv, 'text/csv') }));
  const report = json && reportButton(json);
  if (report) items.push(report);
  for (const [name, a] of Object.entries(adapters)) if (a && a.adapter) items.push(adapterButtons(name, a));
  fill($('#downloads'), items.length ? [el('span', { class: 'muted', text: 'Download: ' }), ...items] : []);
}

// The fields the charts need, wherever results.json keeps them.
function flatResult(p) {
  return { ...p, name: p.name, trainable: metric(p, 'trainable'), eval_loss: metric(p, 'eval_loss') };
}

/** Empties the table and the downloads (a new run starts). */
export function clearResults() {
  renderResults($('#results-table'), null);
  fill($('#downloads'));
  drawSeedBands($('#chart-seeds'), null);
  renderVerdicts($('#verdicts'), null);
  refreshLearned();
}

/** Draws state.results: table, efficiency chart, downloads. */
export function showResults() {
  renderResults($('#results-table'), state.results);
  charts.setResults(trainingsOf(state.results).map(flatResult));
  downloadButtons(state.resultsJson, state.resultsCsv, state.adapters);
  drawSeedBands($('#chart-seeds'), state.results, (name) => charts.color(name));
  renderVerdicts($('#verdicts'), state.results);
  refreshLearned();
  document.dispatchEvent(new CustomEvent('lab:results'));
}

async function refreshSaved() {
  try {
    state.saved = await store.listTrainings();
  } catch (e) {
    state.saved = [];
  }
  setStatus('#saved-status', state.saved.length ? `${state.saved.length} completed training(s) saved in this browser.` :
    'Nothing saved.');
  return state.saved;
}

/**
 * After a reload: shows the saved trainings of the latest run until a new one
 * starts. Resolves to {run (its stored record, if any), recs} or null.
 */
export async function restoreSaved() {
  const saved = await refreshSaved();
  if (!saved.length || state.run) return null;
  const lastRun = saved[saved.length - 1].runId;
  const recs = saved.filter((s) => s.runId === lastRun && s.result);
  if (!recs.length) return null;
  const run = await store.getRun(lastRun).catch(() => undefined);
  state.results = { restored: true, trainings: recs.map((r) => r.result) };
  state.adapters = Object.fromEntries(recs.filter((r) => r.adapter).map((r) => [r.series || r.name, { adapter: r.adapter, config: r.adapterConfig }]));
  charts.reset(recs.map((r) => r.series || r.name));
  for (const r of recs) {
    (r.curves?.loss || []).forEach((l, i) => charts.addStep(r.series || r.name, i + 1, l));
    (r.curves?.evals || []).forEach((e) => charts.addEval(r.series || r.name, e.epoch, e.eval_loss, e.perplexity));
  }
  renderResults($('#results-table'), state.results);
  charts.setResults(state.results.trainings.map(flatResult));
  downloadButtons(JSON.stringify(state.results, null, 2), null, state.adapters);
  setStatus('#run-status', `Showing ${recs.length} saved training(s) from an earlier run.`);
  return { run, recs };
}

/**
 * Shows a results document read from a file (e.g. one `loralab collect` merged from a
 * grid's units on a cluster): the same table, curves, efficiency chart and heatmap as
 * a run in the page. With several seeds each training is labelled "name sSEED".
 * Returns false (and says why) for a file that is not a loralab results.json.
 */
export function openResults(text, fileName) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    showError(`${fileName}: not JSON (${e.message})`);
    return false;
  }
  if (!doc || doc.format !== 'loralab-results' || !trainingsOf(doc).length) {
    showError(`${fileName} is not a loralab results.json (it needs "format": "loralab-results" and a "trainings" list)`);
    return false;
  }
  if (state.running) {
    showError('A run is in progress: open results after it finishes or is cancelled.');
    return false;
  }
  clearError();
  const seeds = new Set(trainingsOf(doc).map((p) => p.seed));
  const ps = trainingsOf(doc).map((p) => (seeds.size > 1 ? { ...p, name: `${p.name} s${p.seed}` } : p));
  // An older file's list ("placements") is read as its trainings and kept under the new name.
  state.results = { ...doc, placements: undefined, trainings: ps };
  state.resultsJson = text;
  state.resultsCsv = null;
  state.adapters = {};
  charts.reset(ps.map((p) => p.name));
  for (const p of ps) {
    (p.steps?.loss || []).forEach((l, i) => charts.addStep(p.name, i + 1, l));
    (p.evals || []).forEach((e) => charts.addEval(p.name, e.epoch, e.eval_loss, e.perplexity));
  }
  showResults();
  const done = ps.filter((p) => p.status === 'done').length;
  const from = doc.collected ? `, collected from ${doc.collected.units} units` : '';
  setStatus('#open-status', `${fileName}: ${ps.length} training(s), ${done} done${from}.`);
  return true;
}

export function initResultsPanel() {
  $('#open-results').addEventListener('change', async (ev) => {
    const file = ev.target.files && ev.target.files[0];
    if (file) openResults(await file.text(), file.name);
    ev.target.value = '';
  });
  renderResults($('#results-table'), null);
  $('#clear-saved').addEventListener('click', async () => {
    await store.clearTrainings();
    await refreshSaved();
  });
}
