// Runs compared: several results.json files (a bundled run and a DialoGPT-medium one,
// CPU and WebGPU, two grids) read side by side: their eval-loss curves overlaid in one
// chart, labelled by run (one dash pattern per run, one colour per placement), and
// their tables next to each other. Drawn by report.js, like the report.
import '../report.js';
import { el, $, fill } from '../dom.js';
import { state } from '../state.js';

const R = globalThis.LoraLabReport;
const DASHES = [undefined, '7 4', '2 3', '10 3 2 3', '4 4'];
const runs = [];   // {label, doc}

/** A label for a run: its file name, and what it ran on. */
function labelOf(name, doc) {
  const env = doc.environment || {};
  const on = [doc.model && doc.model.name, env.device || env.build].filter(Boolean).join(', ');
  return `${name.replace(/\.json$/i, '')}${on ? ` (${on})` : ''}`;
}

/** Adds a run from a results.json text; returns an error message, or '' when added. */
export function addRun(text, name) {
  let doc;
  try { doc = JSON.parse(text); } catch (e) { return `${name}: not JSON (${e.message})`; }
  if (!doc || doc.format !== 'loralab-results' || !R.trainingsOf(doc).length) {
    return `${name} is not a loralab results.json (it needs "format": "loralab-results" and a "trainings" list)`;
  }
  let label = labelOf(name, doc);
  for (let k = 2; runs.some((r) => r.label === label); k++) label = `${labelOf(name, doc)} #${k}`;
  runs.push({ label, doc });
  return '';
}

/** Draws every run: the overlaid eval-loss chart, then one table per run. */
export function drawRuns() {
  const box = $('#runs-compared');
  box.dataset.runs = String(runs.length);
  if (!runs.length) {
    fill(box);
    return;
  }
  // One colour per placement name across the runs, so the same placement reads alike in each.
  const names = [...new Set(runs.flatMap((r) => R.trainingsOf(r.doc).map((p) => String(p.name))))];
  const color = (n) => R.PALETTE[names.indexOf(n) % R.PALETTE.length];
  const series = runs.flatMap((r, i) => R.chartsOf(r.doc, r.label, color).evals.map((se) => ({ ...se, dash: DASHES[i % DASHES.length], run: r.label })));
  const chart = R.lineChart(series, { xLabel: 'epoch', yLabel: 'eval loss', title: 'Eval loss per epoch, every run',
    width: 720, height: 300 });
  fill(box,
    el('figure', {}, el('figcaption', { text: `Eval loss per epoch: ${runs.map((r, i) => `${r.label} ${['solid', 'dashed', 'dotted', 'dash-dot', 'short dashes'][i % DASHES.length]}`).join(' · ')}` }),
      el('div', { class: 'lab-diagram-scroll', tabindex: '0', role: 'region', 'aria-label': 'eval loss of every run' }, chart)),
    el('div', { class: 'runs-tables' }, runs.map((r) => el('div', { class: 'run-table', dataset: { run: r.label } },
      R.resultsTable(r.doc, r.label)))));
}

async function openFiles(files) {
  const errors = [];
  for (const f of files) {
    const msg = addRun(await f.text(), f.name);
    if (msg) errors.push(msg);
  }
  drawRuns();
  $('#runs-status').textContent = `${runs.length} run(s) compared.${errors.length ? ` Not added: ${errors.join('; ')}` : ''}`;
}

export function initRunsPanel() {
  $('#runs-files').addEventListener('change', async (ev) => {
    await openFiles([...(ev.target.files || [])]);
    ev.target.value = '';
  });
  $('#runs-add-page').addEventListener('click', () => {
    const msg = state.resultsJson ? addRun(state.resultsJson, 'this page') : 'this page has no results yet';
    drawRuns();
    $('#runs-status').textContent = `${runs.length} run(s) compared.${msg ? ` Not added: ${msg}` : ''}`;
  });
  $('#runs-clear').addEventListener('click', () => {
    runs.length = 0;
    drawRuns();
    $('#runs-status').textContent = '';
  });
}
