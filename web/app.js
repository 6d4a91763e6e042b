// Page state and controls of the browser lab. The worker (worker.js) owns the wasm
// module and does all the work; this file moves inputs to it, draws what comes
// back, and keeps finished placements in IndexedDB. State is exposed as
// window.__lab for the browser tests.
import { el, $, fill, fmtInt, fmtNum, fmtBytes, fmtTime } from './dom.js';
import { checkAlpaca } from './alpaca.js';
import { Charts } from './charts.js';
import { renderResults, placementsOf, metric } from './table.js';
import * as store from './store.js';

// ------------------------------------------------------------------ settings

const PRESETS = [
  ['baseline', 'PEFT c_attn, c_proj, c_fc (the study’s “all”)'],
  ['ffn', 'PEFT c_fc (the study’s “feed-forward only”)'],
  ['attn', 'PEFT c_attn, c_proj (the study’s “attention only”)'],
  ['all-linear', 'all four linear modules'],
  ['attn-exact', 'attn.c_attn, attn.c_proj only'],
  ['mlp-exact', 'mlp.c_fc, mlp.c_proj only'],
];
const DEFAULT_ON = new Set(['baseline', 'ffn', 'attn']);

export const STUDY = { r: 16, alpha: 32, dropout: 0.1, epochs: 3, batch_size: 1, lr: 2e-4, schedule: 'cosine',
                       warmup_steps: 0, n_train: 100, n_eval: 20, max_len: 256, seed: 42 };
// Small enough to finish in about a minute on the bundled model with three placements.
export const QUICK = { ...STUDY, n_train: 6, n_eval: 3, epochs: 2, max_len: 64 };

const params = new URLSearchParams(location.search);

const state = {
  engine: null,            // {version, variant, isolated, threads}
  model: null,             // lab_model_info
  modelSource: null,
  data: null,              // {train, eval, source, records}
  placements: PRESETS.map(([name]) => ({ name, spec: name, preset: true, on: DEFAULT_ON.has(name) })),
  counts: [],
  running: false,
  runId: null,
  run: null,               // {names, totalSteps, done: {index: steps}, failed: {}, cancelled}
  results: null,           // parsed results.json of the last run (or saved ones)
  resultsJson: null, resultsCsv: null,
  adapters: {},            // placement name -> {adapter: Uint8Array, config: string}
  saved: [],
  errors: [],              // messages shown on the page
  generations: [],
  progress: [],            // recent model progress messages (for tests)
};

// ------------------------------------------------------------------ worker

class Engine {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.nextId = 1;
    this.pending = new Map();
    this.start();
  }

  start() {
    this.worker = new Worker('worker.js');
    this.worker.onmessage = (e) => this.receive(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.failAll(`the worker failed: ${e.message || 'script error'}`);
      this.onEvent({ type: 'crash', message: `The worker failed to run (${e.message || 'script error'}).` });
    };
    this.worker.onmessageerror = () => this.onEvent({ type: 'warning', message: 'a worker message could not be read' });
  }

  receive(msg) {
    if (msg && msg.id && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.ok) resolve(msg.result);
      else reject(new Error(msg.error));
      return;
    }
    this.onEvent(msg);
  }

  call(cmd, payload = {}, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, cmd, ...payload }, transfer);
    });
  }

  cancel() { this.worker.postMessage({ cmd: 'cancel' }); }

  failAll(message) {
    for (const { reject } of this.pending.values()) reject(new Error(message));
    this.pending.clear();
  }

  restart() {
    this.worker.terminate();
    this.failAll('the worker was restarted');
    this.start();
  }
}

// ------------------------------------------------------------------ messages

function showError(message, { crash = false } = {}) {
  state.errors.push(String(message));
  $('#error-text').textContent = String(message);
  $('#restart').hidden = !crash;
  $('#error').hidden = false;
}

function clearError() {
  $('#error').hidden = true;
  $('#error-text').textContent = '';
}

function setStatus(sel, text) { $(sel).textContent = text; }

// ------------------------------------------------------------------ engine start

const charts = new Charts({
  train: $('#chart-train'), eval: $('#chart-eval'), ppl: $('#chart-ppl'), eff: $('#chart-eff'),
  heatmap: $('#heatmap'), heatSelect: $('#heatmap-placement'),
});
$('#heatmap-placement').addEventListener('change', () => charts.drawHeatmap());

const engine = new Engine(onWorkerMessage);

async function startEngine() {
  state.engine = null;
  setStatus('#engine', 'Starting the engine…');
  try {
    const e = await engine.call('init', { wasmBase: '/build-wasm/', threads: navigator.hardwareConcurrency || 2 });
    state.engine = e;
    setStatus('#engine', `${e.version} · ${e.isolated ? `cross-origin isolated, ${e.threads} threads` :
      'not cross-origin isolated: single-thread build'}`);
  } catch (err) {
    setStatus('#engine', 'The engine did not start.');
    showError(`The wasm engine did not start: ${err.message}`, { crash: true });
  }
  updateButtons();
}

function onWorkerMessage(msg) {
  if (!msg || !msg.type) return;
  if (msg.type === 'progress') return onProgress(msg);
  if (msg.type === 'events') return msg.events.forEach(onRunEvent);
  if (msg.type === 'adapter') return onAdapter(msg);
  if (msg.type === 'warning') return console.warn(msg.message);
  if (msg.type === 'crash') {
    state.running = false;
    state.model = null;
    state.data = null;
    showError(msg.message, { crash: true });
    updateButtons();
  }
}

async function restartEngine() {
  clearError();
  engine.restart();
  state.running = false;
  state.model = null;
  state.data = null;
  setStatus('#model-status', 'The worker was restarted: load the model and data again.');
  setStatus('#data-status', '');
  await startEngine();
}

// ------------------------------------------------------------------ model

function onProgress(p) {
  state.progress.push({ phase: p.phase, loaded: p.loaded, total: p.total });
  if (state.progress.length > 200) state.progress.splice(0, 100);
  const bar = $('#model-progress');
  bar.hidden = false;
  if (p.total > 0) { bar.max = p.total; bar.value = Math.min(p.loaded, p.total); } else bar.removeAttribute('value');
  const bytes = p.total > 0 ? ` ${fmtBytes(p.loaded)} of ${fmtBytes(p.total)}` : '';
  setStatus('#model-status', `${p.text}${bytes}`);
}

function modelSource() {
  const kind = document.querySelector('input[name=model-kind]:checked').value;
  if (kind === 'bundled') {
    const f = $('#model-bundled').value.trim();
    if (!/^[\w.-]+\.gguf$/.test(f)) throw new Error('the bundled model is a .gguf file name under /models/');
    return { kind: 'url', url: `/models/${f}` };
  }
  if (kind === 'hub') {
    return { kind: 'hub', base: $('#hub-base').value.trim(), repo: $('#hub-repo').value.trim(),
             revision: $('#hub-rev').value.trim() || 'main' };
  }
  const files = [...$('#model-files').files];
  if (!files.length) throw new Error('choose a model file first');
  return { kind: 'files', files };
}

async function loadModel() {
  clearError();
  let source;
  try { source = modelSource(); } catch (e) { return showError(e.message); }
  state.model = null;
  $('#load-model').disabled = true;
  try {
    const r = await engine.call('loadModel', { source });
    state.model = r.info;
    state.modelSource = r;
    const i = r.info;
    setStatus('#model-status', `${i.name || r.source}: ${i.n_layer} layers, d=${i.n_embd}, ${i.n_head} heads, ` +
      `${fmtInt(i.params)} params, ${i.matrix_type}, ${fmtBytes(r.bytes)}` +
      (r.fromCache ? ' (from the browser cache)' : '') + (r.weights ? ` (converted from ${r.weights}` +
      (r.cachedIn ? `, cached in ${r.cachedIn})` : ')') : ''));
    $('#model-progress').hidden = true;
    await refreshCounts();
  } catch (e) {
    setStatus('#model-status', 'No model loaded.');
    showError(`Model: ${e.message}`);
  } finally {
    $('#load-model').disabled = false;
    updateButtons();
  }
}

// ------------------------------------------------------------------ data

async function fetchText(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return r.text();
}

async function readData() {
  const kind = document.querySelector('input[name=data-kind]:checked').value;
  if (kind === 'bundled') {
    return { source: 'bundled', train: await fetchText('/data/alpaca_train.json'),
             eval: await fetchText('/data/alpaca_eval.json'), names: ['alpaca_train.json', 'alpaca_eval.json'] };
  }
  if (kind === 'upload') {
    const t = $('#data-train-file').files[0], e = $('#data-eval-file').files[0];
    if (!t) throw new Error('choose a training file');
    return { source: 'upload', train: await t.text(), eval: e ? await e.text() : null, names: [t.name, e && e.name] };
  }
  const url = $('#data-url').value.trim();
  if (!url) throw new Error('enter the URL of an Alpaca JSON file');
  return { source: url, train: await fetchText(url), eval: null, names: [url.split('/').pop() || url] };
}

function showDataErrors(errors) {
  fill($('#data-errors'), errors.map((m) => el('li', { text: m })));
}

function showPreview(doc) {
  const recs = (doc || []).slice(0, 3);
  if (!recs.length) return fill($('#data-preview'));
  const t = el('table', { class: 'grid preview' },
    el('thead', {}, el('tr', {}, el('th', { text: 'instruction' }), el('th', { text: 'input' }), el('th', { text: 'output' }))),
    el('tbody', {}, recs.map((r) => el('tr', {}, ['instruction', 'input', 'output'].map((k) =>
      el('td', { text: String(r[k] ?? '').slice(0, 200) }))))));
  fill($('#data-preview'), el('p', { class: 'muted', text: 'First records:' }), t);
}

async function loadData() {
  clearError();
  showDataErrors([]);
  fill($('#data-preview'));
  state.data = null;
  $('#load-data').disabled = true;
  try {
    setStatus('#data-status', 'Reading…');
    const d = await readData();
    const t = checkAlpaca(d.train, d.names[0] || 'train');
    const e = d.eval ? checkAlpaca(d.eval, d.names[1] || 'eval') : { records: 0, errors: [] };
    const errors = [...t.errors, ...e.errors];
    if (errors.length) {
      showDataErrors(errors);
      setStatus('#data-status', `The data file has problems (${errors.length} listed below); nothing was loaded.`);
      showError('Data: the file is not valid Alpaca JSON; see the list under “Data”.');
      return;
    }
    showPreview(t.doc);
    if (!state.engine) throw new Error('the engine is not running');
    try {
      await engine.call('setData', { train: d.train, eval: d.eval });
    } catch (err) {
      const lines = String(err.message).split('\n').filter(Boolean);
      showDataErrors(lines);
      setStatus('#data-status', 'The data was refused; see the list below.');
      showError('Data: the file was refused; see the list under “Data”.');
      return;
    }
    state.data = { source: d.source, train: t.records, eval: e.records };
    setStatus('#data-status', `${t.records} training records` + (d.eval ? `, ${e.records} eval records` :
      ' (eval records are split off this file)') + ` from ${d.source}.`);
  } catch (err) {
    setStatus('#data-status', 'No data loaded.');
    showError(`Data: ${err.message}`);
  } finally {
    $('#load-data').disabled = false;
    updateButtons();
  }
}

// ------------------------------------------------------------------ placements

function experiment() {
  const hp = readHp();
  return { ...hp, placements: state.placements.filter((p) => p.on).map((p) => p.spec) };
}

function renderPresets() {
  fill($('#presets'), PRESETS.map(([name, desc]) => {
    const p = state.placements.find((q) => q.name === name);
    return el('label', { class: 'preset', title: desc },
      el('input', { type: 'checkbox', value: name, checked: p.on, onchange: (e) => { p.on = e.target.checked; refreshCounts(); } }),
      ` ${name} `, el('span', { class: 'muted', text: desc }));
  }));
}

function parseLayers(text) {
  const t = text.trim();
  if (!t || t === 'all') return null;
  const out = new Set();
  for (const part of t.split(',')) {
    const m = part.trim().match(/^(\d+)(?:\s*-\s*(\d+))?$/);
    if (!m) throw new Error(`layers: "${part.trim()}" is not a number or a range like 0-3`);
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new Error(`layers: range ${a}-${b} goes backwards`);
    if (state.model && b >= state.model.n_layer) throw new Error(`layers: the model has layers 0-${state.model.n_layer - 1}`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

function addCustom() {
  const err = $('#custom-error');
  err.textContent = '';
  try {
    const name = $('#custom-name').value.trim();
    if (!/^[\w.+-]{1,60}$/.test(name)) throw new Error('name: letters, digits and . _ + - only');
    if (state.placements.some((p) => p.name === name)) throw new Error(`there is already a placement "${name}"`);
    let mods = [...document.querySelectorAll('#custom-editor .mods input:checked')].map((i) => i.value);
    if (!mods.length) throw new Error('choose at least one module');
    if ($('#custom-suffix').checked) mods = [...new Set(mods.map((m) => m.split('.')[1]))];
    const layers = parseLayers($('#custom-layers').value);
    const spec = { name, target_modules: mods };
    if (layers) spec.layers = layers;
    state.placements.push({ name, spec, preset: false, on: true });
    refreshCounts();
  } catch (e) {
    err.textContent = e.message;
  }
}

// Which full module paths each short target matched: makes PEFT's suffix rule visible.
function suffixNotes(count) {
  const paths = [...new Set((count.selected || []).map((s) => s[1]))];
  const targets = Array.isArray(count.target_modules) ? count.target_modules : [];
  const notes = [];
  for (const t of targets) {
    if (t.includes('.')) continue;
    const hit = paths.filter((p) => p === t || p.endsWith('.' + t));
    if (hit.length > 1) notes.push(`“${t}” matches ${hit.join(' and ')}`);
  }
  return notes;
}

function renderCounts() {
  const rows = state.placements.map((p, i) => {
    const c = state.counts.find((x) => x.name === p.name);
    const targets = c ? (Array.isArray(c.target_modules) ? c.target_modules.join(', ') : String(c.target_modules ?? '')) +
      (Array.isArray(c.layers) && c.layers.length ? ` @ layers ${c.layers.join(',')}` : '') : (p.preset ? '' : JSON.stringify(p.spec.target_modules));
    const notes = c ? suffixNotes(c) : [];
    return el('tr', { dataset: { placement: p.name } },
      el('td', {}, el('input', { type: 'checkbox', checked: p.on, 'aria-label': `run ${p.name}`,
        onchange: (e) => { p.on = e.target.checked; refreshCounts(); } })),
      el('td', { text: p.name }),
      el('td', { class: 'mono', text: targets }),
      el('td', { class: 'modules' }, c ? String(c.modules ?? '') : (p.on ? '' : 'not selected'),
        notes.length ? el('div', { class: 'surprise', text: `⚠ suffix match: ${notes.join('; ')}` }) : null),
      el('td', { class: 'num', dataset: { value: c ? String(c.trainable) : '' }, text: c ? fmtInt(c.trainable) : '' }),
      el('td', { class: 'num', text: c ? `${fmtNum(c.percent, 3)} %` : '' }),
      el('td', {}, p.preset ? null : el('button', { type: 'button', text: 'remove', onclick: () => {
        state.placements.splice(i, 1);
        refreshCounts();
      } })));
  });
  fill($('#count-table tbody'), rows);
}

let countSeq = 0;
async function refreshCounts() {
  renderPresets();
  const exp = experiment();
  const seq = ++countSeq;
  if (!state.model || !exp.placements.length) {
    state.counts = [];
    setStatus('#count-status', state.model ? 'Choose at least one placement.' : 'Load a model to see parameter counts.');
    renderCounts();
    updateButtons();
    return;
  }
  try {
    const counts = await engine.call('count', { experiment: exp });
    if (seq !== countSeq) return;
    state.counts = counts;
    setStatus('#count-status', `Counted for ${state.model.name || 'the loaded model'} at r=${exp.r}.`);
  } catch (e) {
    if (seq !== countSeq) return;
    state.counts = [];
    setStatus('#count-status', `Cannot count: ${e.message}`);
  }
  renderCounts();
  updateButtons();
}

// ------------------------------------------------------------------ hyper-parameters

function setHp(values) {
  for (const input of document.querySelectorAll('[data-hp]')) input.value = String(values[input.dataset.hp]);
  refreshCounts();
}

function readHp() {
  const hp = {};
  for (const input of document.querySelectorAll('[data-hp]')) {
    const k = input.dataset.hp;
    hp[k] = input.tagName === 'SELECT' ? input.value : Number(input.value);
  }
  return hp;
}

function checkHp(hp) {
  const bad = [];
  const intIn = (k, lo, hi) => { if (!Number.isInteger(hp[k]) || hp[k] < lo || hp[k] > hi) bad.push(`${k} must be an integer in ${lo}..${hi}`); };
  intIn('r', 1, 1024); intIn('epochs', 1, 1000); intIn('batch_size', 1, 1024); intIn('n_train', 1, 1e7);
  intIn('n_eval', 1, 1e7); intIn('max_len', 8, 8192); intIn('warmup_steps', 0, 1e7); intIn('seed', 0, 2 ** 31);
  if (!(hp.lr > 0)) bad.push('lr must be > 0');
  if (!(hp.alpha > 0)) bad.push('alpha must be > 0');
  if (!(hp.dropout >= 0 && hp.dropout < 1)) bad.push('dropout must be in [0, 1)');
  return bad;
}

// ------------------------------------------------------------------ run

function updateButtons() {
  const ready = !!(state.engine && state.model && state.data);
  $('#run').disabled = !ready || state.running || !state.placements.some((p) => p.on);
  $('#cancel').disabled = !state.running;
  $('#generate').disabled = !state.model || state.running;
  $('#load-model').disabled = state.running || !state.engine;
  $('#load-data').disabled = state.running || !state.engine;
}

async function run() {
  clearError();
  const exp = experiment();
  const bad = checkHp(exp);
  if (bad.length) return showError(`Hyper-parameters: ${bad.join('; ')}`);
  try {
    const est = await engine.call('estimate', { experiment: exp });
    if (est && est.bytes_available > 0 && est.bytes_needed > est.bytes_available) {
      return showError(`This run needs about ${fmtBytes(est.bytes_needed)} of memory but the browser can give ` +
        `${fmtBytes(est.bytes_available)}. Use fewer examples, a shorter max_len or a smaller model.`);
    }
  } catch (e) {
    return showError(`Run: ${e.message}`);
  }
  const names = exp.placements.map((p) => (typeof p === 'string' ? p : p.name));
  state.running = true;
  state.runId = `${Date.now()}`;
  state.run = { names, totalSteps: 0, done: {}, failed: {}, cancelled: false, startedAt: performance.now(),
                experiment: exp, curves: Object.fromEntries(names.map((n) => [n, { loss: [], lr: [], evals: [] }])) };
  state.results = null;
  state.adapters = {};
  charts.reset(names);
  renderResults($('#results-table'), null);
  fill($('#downloads'));
  $('#run-progress').value = 0;
  setStatus('#run-status', 'Preparing the run…');
  updateButtons();
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

function onRunEvent(ev) {
  const run = state.run;
  if (!run) return;
  const curves = run.curves[ev.placement];
  switch (ev.type) {
    case 'start':
      run.totalSteps = ev.total_steps || 0;
      $('#run-progress').max = Math.max(1, run.totalSteps);
      break;
    case 'step': {
      run.done[ev.index] = ev.step;
      if (curves) { curves.loss[ev.step - 1] = ev.loss; curves.lr[ev.step - 1] = ev.lr; curves.steps = ev.steps; }
      charts.addStep(ev.placement, ev.step, ev.loss);
      const done = Object.values(run.done).reduce((a, b) => a + b, 0);
      $('#run-progress').value = Math.min(done, $('#run-progress').max);
      setStatus('#run-status', `${ev.placement} · epoch ${ev.epoch} · step ${ev.step}/${ev.steps} · loss ${fmtNum(ev.loss, 4)} · ` +
        `${fmtNum(ev.tokens_per_s, 3)} tok/s · elapsed ${fmtTime(ev.elapsed_s)} · ETA ${fmtTime(ev.eta_s)}`);
      break;
    }
    case 'eval':
      if (curves) curves.evals.push({ epoch: ev.epoch, eval_loss: ev.eval_loss, perplexity: ev.perplexity,
                                      mean_sample_perplexity: ev.mean_sample_perplexity });
      charts.addEval(ev.placement, ev.epoch, ev.eval_loss, ev.perplexity);
      setStatus('#run-status', `${ev.placement} · eval after epoch ${ev.epoch}: loss ${fmtNum(ev.eval_loss, 4)}, ` +
        `perplexity ${fmtNum(ev.perplexity, 4)}`);
      break;
    case 'placement_done':
      run.done[ev.index] = curves && curves.steps ? curves.steps : run.done[ev.index];
      savePlacement(ev);
      break;
    case 'placement_failed':
      run.failed[ev.placement] = ev.message;
      showError(`Placement ${ev.placement} failed: ${ev.message}`);
      break;
    case 'done':
      run.cancelled = !!ev.cancelled;
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ results, adapters, storage

const pendingSaves = {};   // placement name -> promise of its IndexedDB key

function savePlacement(ev) {
  const run = state.run;
  const rec = { runId: state.runId, model: state.model && state.model.name, name: ev.placement, index: ev.index,
                result: ev.result || null, curves: run.curves[ev.placement], experiment: run.experiment };
  const a = state.adapters[ev.placement];
  if (a) { rec.adapter = a.adapter; rec.adapterConfig = a.config; }
  pendingSaves[ev.placement] = store.savePlacement(rec).catch((e) => { console.warn(`not saved: ${e.message}`); return null; });
  pendingSaves[ev.placement].then(refreshSaved);
}

function onAdapter(msg) {
  state.adapters[msg.placement] = { adapter: msg.adapter, config: msg.config };
  const p = pendingSaves[msg.placement];
  if (p) p.then((key) => key && store.updatePlacement(key, { adapter: msg.adapter, adapterConfig: msg.config }));
}

function download(name, data, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function downloadButtons(json, csv, adapters) {
  const items = [];
  if (json) items.push(el('button', { type: 'button', id: 'dl-json', text: 'results.json',
    onclick: () => download('results.json', json, 'application/json') }));
  if (csv) items.push(el('button', { type: 'button', id: 'dl-csv', text: 'results.csv',
    onclick: () => download('results.csv', csv, 'text/csv') }));
  for (const [name, a] of Object.entries(adapters)) {
    if (!a || !a.adapter) continue;
    items.push(el('span', { class: 'adapter-dl' }, `${name}: `,
      el('button', { type: 'button', class: 'dl-adapter', dataset: { placement: name }, text: 'adapter_model.safetensors',
        onclick: () => download(`${name}-adapter_model.safetensors`, a.adapter, 'application/octet-stream') }),
      el('button', { type: 'button', class: 'dl-adapter-config', dataset: { placement: name }, text: 'adapter_config.json',
        onclick: () => download(`${name}-adapter_config.json`, a.config, 'application/json') })));
  }
  fill($('#downloads'), items.length ? [el('span', { class: 'muted', text: 'Download: ' }), ...items] : []);
}

function showResults() {
  renderResults($('#results-table'), state.results);
  charts.setResults(placementsOf(state.results).map(flatResult));
  downloadButtons(state.resultsJson, state.resultsCsv, state.adapters);
}

// The fields the charts need, wherever results.json keeps them.
function flatResult(p) {
  return { ...p, name: p.name, trainable: metric(p, 'trainable'), eval_loss: metric(p, 'eval_loss') };
}

async function refreshSaved() {
  try {
    state.saved = await store.listPlacements();
  } catch (e) {
    state.saved = [];
  }
  setStatus('#saved-status', state.saved.length ? `${state.saved.length} completed placement(s) saved in this browser.` :
    'Nothing saved.');
  return state.saved;
}

// After a reload: show the saved placements of the latest run until a new one starts.
async function restoreSaved() {
  const saved = await refreshSaved();
  if (!saved.length || state.run) return;
  const lastRun = saved[saved.length - 1].runId;
  const recs = saved.filter((s) => s.runId === lastRun && s.result);
  if (!recs.length) return;
  state.results = { restored: true, placements: recs.map((r) => r.result) };
  state.adapters = Object.fromEntries(recs.filter((r) => r.adapter).map((r) => [r.name, { adapter: r.adapter, config: r.adapterConfig }]));
  charts.reset(recs.map((r) => r.name));
  for (const r of recs) {
    (r.curves?.loss || []).forEach((l, i) => charts.addStep(r.name, i + 1, l));
    (r.curves?.evals || []).forEach((e) => charts.addEval(r.name, e.epoch, e.eval_loss, e.perplexity));
  }
  renderResults($('#results-table'), state.results);
  charts.setResults(state.results.placements.map(flatResult));
  downloadButtons(JSON.stringify(state.results, null, 2), null, state.adapters);
  setStatus('#run-status', `Showing ${recs.length} saved placement(s) from an earlier run.`);
}

async function clearSaved() {
  await store.clearPlacements();
  await refreshSaved();
}

// ------------------------------------------------------------------ side by side

async function generate() {
  clearError();
  // lab_generate wraps the prompt in the Alpaca template itself unless raw is set.
  const prompt = $('#prompt').value;
  const raw = !$('#gen-template').checked;
  const maxNew = Math.max(1, Math.min(256, Number($('#gen-tokens').value) || 40));
  const who = [{ label: 'base model', placement: -1 }];
  placementsOf(state.results).forEach((p, i) => {
    if (!state.results.restored && (!p.status || p.status === 'done')) who.push({ label: p.name, placement: i });
  });
  const box = $('#compare');
  fill(box);
  state.generations = [];
  $('#generate').disabled = true;
  try {
    for (const w of who) {
      const out = el('pre', { class: 'gen', text: '…' });
      box.append(el('div', { class: 'gen-box', dataset: { placement: w.label } }, el('h3', { text: w.label }), out));
      const r = await engine.call('generate', { request: { prompt, raw, placement: w.placement, max_new_tokens: maxNew,
                                                           temperature: 0, top_k: 0, seed: 1,
                                                           repetition_penalty: 1.3 } });
      // A small model often answers with end-of-text or blank lines: say so rather than
      // show an empty box that looks broken.
      out.textContent = r.text.trim() ? r.text : '(no text: the model ended its answer at once or wrote only blank lines)';
      state.generations.push({ label: w.label, text: r.text });
    }
  } catch (e) {
    showError(`Generate: ${e.message}`);
  } finally {
    updateButtons();
  }
}

// ------------------------------------------------------------------ wiring

$('#load-model').addEventListener('click', loadModel);
$('#load-data').addEventListener('click', loadData);
$('#custom-add').addEventListener('click', addCustom);
$('#hp-study').addEventListener('click', () => setHp(STUDY));
$('#hp-quick').addEventListener('click', () => setHp(QUICK));
$('#hp [data-hp="r"]').addEventListener('change', refreshCounts);
$('#run').addEventListener('click', run);
$('#cancel').addEventListener('click', cancel);
$('#generate').addEventListener('click', generate);
$('#restart').addEventListener('click', restartEngine);
$('#error-close').addEventListener('click', clearError);
$('#clear-saved').addEventListener('click', clearSaved);
$('#clear-cache').addEventListener('click', () => engine.call('clearCache').then(
  () => setStatus('#model-status', 'Cached models forgotten.'), (e) => showError(e.message)));
for (const r of document.querySelectorAll('input[name=data-kind]')) r.addEventListener('change', () => { state.data = null; updateButtons(); });

if (params.get('model')) $('#model-bundled').value = params.get('model');
if (params.get('hub')) $('#hub-base').value = new URL(params.get('hub'), location.href).href;

window.__lab = {
  state,
  charts,
  engine,
  series: () => charts.series(),
  evalSeries: () => charts.evalSeries(),
  crash: () => engine.call('crashForTest').catch((e) => e.message),
};

setHp(params.get('quick') ? QUICK : STUDY);
renderResults($('#results-table'), null);
startEngine().then(() => {
  window.__lab.ready = true;
  if (params.get('autoload') !== '0') { loadModel(); loadData(); }
});
restoreSaved();
