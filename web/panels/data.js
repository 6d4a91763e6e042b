// Panel 2, Data: the bundled Alpaca files, an upload or a URL; a per-record check
// (alpaca.js) before anything goes to the worker, and a preview as text.
import { el, $, fill } from '../dom.js';
import { checkAlpaca } from '../alpaca.js';
import { engine } from '../engine.js';
import { state, showError, clearError, setStatus, updateButtons } from '../state.js';

async function fetchText(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return r.text();
}

async function readData() {
  const kind = document.querySelector('input[name=data-kind]:checked').value;
  if (kind === 'bundled') {
    return { source: 'bundled', train: await fetchText('data/alpaca_train.json'),
             eval: await fetchText('data/alpaca_eval.json'), names: ['alpaca_train.json', 'alpaca_eval.json'] };
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

// Hands checked files to the worker; returns false (with the list shown) if it refuses them.
async function sendToWorker(d) {
  try {
    await engine.call('setData', { train: d.train, eval: d.eval, names: d.names });
    return true;
  } catch (err) {
    showDataErrors(String(err.message).split('\n').filter(Boolean));
    setStatus('#data-status', 'The data was refused; see the list below.');
    showError('Data: the file was refused; see the list under “Data”.');
    return false;
  }
}

/** Reads, checks and loads the chosen data; problems are listed per record. */
export async function loadData() {
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
    if (!await sendToWorker(d)) return;
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

export function initDataPanel() {
  $('#load-data').addEventListener('click', loadData);
  for (const r of document.querySelectorAll('input[name=data-kind]')) {
    r.addEventListener('change', () => { state.data = null; updateButtons(); });
  }
}
