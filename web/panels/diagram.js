// The adapted modules drawn on the model: one transformer block beside a strip of the
// layers, each placement lit in its chart colour where it really adapts (report.js
// draws it). The drawing reads the same lab_count entries ("selected": [[layer,
// module], ...]) as the "really touches" column of the placements table, or, with no
// model loaded, the placements of the results on the page, so the two cannot disagree.
import '../report.js';
import { $, fill } from '../dom.js';
import { state } from '../state.js';
import { charts } from './training.js';

const R = globalThis.LoraLabReport;

/** The entries the diagram draws now: the counted placements, else the shown results'. */
function entries() {
  if (state.counts && state.counts.length) return state.counts;
  const seen = new Set();
  return R.placementsOf(state.results).filter((p) => Array.isArray(p.selected))
    .map((p) => ({ ...p, name: String(p.name).replace(/ s\d+$/, '') }))
    .filter((p) => !seen.has(p.name) && seen.add(p.name));
}

function colorFor(name, i) {
  return charts.names.includes(name) ? charts.color(name) : R.PALETTE[i % R.PALETTE.length];
}

/** Redraws the diagram (after new counts or new results). */
export function drawDiagram() {
  const box = $('#diagram');
  const list = entries();
  if (!list.length) {
    fill(box, Object.assign(document.createElement('p'), { className: 'muted',
      textContent: 'Load a model and tick placements to see where their adapters go.' }));
    box.dataset.placements = '0';
    return;
  }
  const nLayer = (state.model && state.model.n_layer) || (state.results && state.results.model && state.results.model.n_layer) || 0;
  fill(box, R.diagramFigure(list.map((c, i) => ({ ...c, color: colorFor(c.name, i) })), nLayer));
  box.dataset.placements = String(list.length);
}

export function initDiagramPanel() {
  document.addEventListener('lab:counts', drawDiagram);
  document.addEventListener('lab:results', drawDiagram);
  drawDiagram();
}
