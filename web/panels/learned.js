// The "What was learned" panel: one eval example token by token, each token coloured
// by how much a training's adapter changed its loss against the base model
// (lab_token_view), with a filter by role (template, instruction, input, response)
// and a summary of the change per role over the whole eval set.
import { el, $, fill } from '../dom.js';
import { trainingsOf } from '../table.js';
import { engine } from '../engine.js';
import { state, showError, clearError, updateButtons } from '../state.js';

const ROLES = ['template', 'instruction', 'input', 'response'];

// Finished trainings of this run (not restored ones: their adapters are not in the worker).
function trainings() {
  const doc = state.results;
  if (!doc || doc !== state.liveResults) return [];
  return trainingsOf(doc).map((p, training) => ({ p, training })).filter(({ p }) => p.status === 'done');
}

/** Fills the selectors after a run (or empties them). */
export function refreshLearned() {
  const done = trainings();
  const label = ({ p }) => (state.results.seeds && state.results.seeds.length > 1 ? `${p.name} · seed ${p.seed}` : p.name);
  fill($('#learned-placement'), done.map((t) => el('option', { value: String(t.training), text: label(t) })));
  const nEval = state.results && state.results.data ? state.results.data.eval.used : 0;
  fill($('#learned-example'), Array.from({ length: done.length ? nEval : 0 }, (_, i) => el('option', { value: String(i), text: String(i) })));
  updateButtons();
  if (!done.length) {
    fill($('#learned-tokens'));
    $('#learned-summary').textContent = '';
  }
}

// Blue where the adapter lowered the loss, red where it raised it; 2 nats = full colour.
function shade(delta) {
  const t = Math.max(-1, Math.min(1, delta / 2));
  const a = Math.round(255 * (1 - Math.abs(t)));
  return t < 0 ? `rgb(${a}, ${a}, 255)` : `rgb(255, ${a}, ${a})`;
}

function render(view, name, role) {
  const ex = view.examples[0];
  const key = `loss_${name}`;
  const spans = ex.tokens.map((t) => {
    const shown = role === 'all' || t.role === role;
    const delta = t.scored && Number.isFinite(t.loss) && Number.isFinite(t[key]) ? t[key] - t.loss : null;
    const title = t.scored ? `${t.role}: loss ${t.loss.toFixed(3)} → ${t[key].toFixed(3)} (${delta >= 0 ? '+' : ''}${delta.toFixed(3)})`
      : `${t.role}: not scored`;
    const span = el('span', {
      class: `tok role-${t.role}${shown ? '' : ' dim'}`, title,
      dataset: { role: t.role, scored: String(t.scored), delta: delta === null ? '' : String(delta) },
    }, t.text);
    // CSSOM, not a style attribute: the page's CSP allows only its own style sheets.
    if (shown && delta !== null) span.style.backgroundColor = shade(delta);
    return span;
  });
  fill($('#learned-tokens'), spans);
  // Over the whole eval set: the change per role and its share of the total change.
  const total = ROLES.reduce((s, r) => s + (view.roles[r].n_tokens ? view.roles[r].n_tokens * (view.roles[r][key] - view.roles[r].loss) : 0), 0);
  const parts = ROLES.filter((r) => view.roles[r].n_tokens).map((r) => {
    const d = view.roles[r][key] - view.roles[r].loss, n = view.roles[r].n_tokens;
    return `${r}: ${d >= 0 ? '+' : ''}${d.toFixed(3)} nats/token over ${n} tokens (${(100 * n * d / total).toFixed(0)}% of the change)`;
  });
  $('#learned-summary').textContent = `eval loss ${view.eval_loss.toFixed(4)} → ${view[`eval_loss_${name}`].toFixed(4)}; ${parts.join('; ')}`;
}

async function show() {
  clearError();
  const training = Number($('#learned-placement').value), example = Number($('#learned-example').value) || 0;
  if (!Number.isInteger(training)) return;
  const role = $('#learned-role').value;
  try {
    const view = await engine.call('tokenView', { request: { example, trainings: [training] } });
    state.tokenView = view;
    render(view, view.models[1], role);
  } catch (e) {
    showError(`What was learned: ${e.message}`);
  }
}

export function initLearnedPanel() {
  $('#learned-show').addEventListener('click', show);
  $('#learned-role').addEventListener('change', () => { if (state.tokenView) render(state.tokenView, state.tokenView.models[1], $('#learned-role').value); });
  refreshLearned();
}
