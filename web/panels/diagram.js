// The adapted modules drawn on the model: one transformer block beside a strip of the
// layers, each placement lit in its chart colour where it really adapts (report.js
// draws it). It draws what changed last: the placements ticked above, from the same
// lab_count entries ("selected": [[layer, module], ...]) as their "really touches"
// column, or the results shown below (a run's, or an opened file's, such as a
// collected grid whose bands then show on the strip), from results.json's "selected".
import '../report.js';
import { $, el, fill } from '../dom.js';
import { state } from '../state.js';
import { readHp } from './hp.js';
import { charts } from './training.js';

const R = globalThis.LoraLabReport;
let from = 'counts';   // 'counts' | 'results'

/** One entry per placement of the results on the page (a seed's renaming "name sSEED" undone). */
function resultEntries() {
  const seen = new Set();
  return R.trainingsOf(state.results).filter((p) => Array.isArray(p.selected))
    .map((p) => ({ ...p, name: String(p.name).replace(/ s\d+$/, '') }))
    .filter((p) => !seen.has(p.name) && seen.add(p.name));
}

/**
 * What the diagram draws now: {from: 'counts' | 'results', entries, model (n_layer,
 * n_embd, name), r}. The tour quotes its numbers from the same source.
 */
export function diagramSource() {
  const results = resultEntries();
  if ((from === 'results' && results.length) || !(state.counts && state.counts.length)) {
    const doc = state.results || {};
    return { from: 'results', entries: results, model: doc.model || state.model, r: doc.config && doc.config.r };
  }
  let r;
  try { r = readHp().r; } catch (e) { r = undefined; }
  return { from: 'counts', entries: state.counts, model: state.model, r };
}

function colorFor(name, i) {
  return charts.names.includes(name) ? charts.color(name) : R.PALETTE[i % R.PALETTE.length];
}

/** Redraws the diagram. */
export function drawDiagram() {
  const box = $('#diagram');
  const src = diagramSource();
  box.dataset.placements = String(src.entries.length);
  box.dataset.from = src.from;
  if (!src.entries.length) {
    fill(box, el('p', { class: 'muted', text: 'Load a model and tick placements to see where their adapters go.' }));
    return;
  }
  const m = src.model || {};
  const said = src.from === 'counts'
    ? `Drawn from the placements ticked above, as counted for ${m.name || 'the loaded model'}${src.r ? ` at r=${src.r}` : ''}.`
    : `Drawn from the results shown below${m.name ? ` (${m.name})` : ''}; tick a placement to draw the ones above again.`;
  fill(box, el('p', { class: 'muted', id: 'diagram-source', text: said }),
    R.diagramFigure(src.entries.map((c, i) => ({ ...c, color: colorFor(c.name, i) })), m.n_layer || 0));
}

export function initDiagramPanel() {
  document.addEventListener('lab:counts', () => { from = 'counts'; drawDiagram(); });
  document.addEventListener('lab:results', () => { from = 'results'; drawDiagram(); });
  drawDiagram();
}
