// The Side by side panel: the base model and each finished placement answer the
// same instruction, one after another, with the same decoding settings, shown above
// the answers: seeded sampling by default (a small model answers greedily with
// blank lines or end-of-text), greedy on request.
import { el, $, fill } from '../dom.js';
import { trainingsOf } from '../table.js';
import { engine } from '../engine.js';
import { state, showError, clearError, updateButtons } from '../state.js';

// Who answers: the base model, then every placement of this run that finished (its
// first seed's adapter when there are several).
function speakers() {
  const who = [{ label: 'base model', training: -1 }];
  const seen = new Set();
  trainingsOf(state.results).forEach((p, i) => {
    if (state.results.restored || (p.status && p.status !== 'done') || seen.has(p.name)) return;
    seen.add(p.name);
    who.push({ label: p.name, training: i });
  });
  return who;
}

/** The decoding settings of the panel's inputs, as lab_generate takes them. */
export function decoding() {
  const num = (sel, def) => (Number.isFinite(Number($(sel).value)) && $(sel).value !== '' ? Number($(sel).value) : def);
  if ($('#gen-mode').value === 'greedy')
    return { temperature: 0, top_k: 0, seed: 0, repetition_penalty: num('#gen-penalty', 1.3), min_new_tokens: num('#gen-min-new', 0) };
  return { temperature: num('#gen-temperature', 0.8), top_k: Math.round(num('#gen-top-k', 40)), seed: Math.round(num('#gen-seed', 42)),
           repetition_penalty: num('#gen-penalty', 1.3), min_new_tokens: Math.round(num('#gen-min-new', 8)) };
}

function describe(d) {
  return d.temperature > 0
    ? `seeded sampling: temperature ${d.temperature}, top-k ${d.top_k || 'all'}, seed ${d.seed}, repetition penalty ${d.repetition_penalty}, no end before ${d.min_new_tokens} tokens`
    : `greedy: repetition penalty ${d.repetition_penalty}, no end before ${d.min_new_tokens} tokens`;
}

async function generate() {
  clearError();
  // lab_generate wraps the prompt in the Alpaca template itself unless raw is set.
  const prompt = $('#prompt').value;
  const raw = !$('#gen-template').checked;
  const maxNew = Math.max(1, Math.min(256, Number($('#gen-tokens').value) || 40));
  const box = $('#compare');
  fill(box);
  const d = decoding();
  $('#gen-used').textContent = `Every answer below: ${describe(d)}.`;
  state.generations = [];
  $('#generate').disabled = true;
  try {
    for (const w of speakers()) {
      const out = el('pre', { class: 'gen', text: '…' });
      box.append(el('div', { class: 'gen-box', dataset: { placement: w.label } }, el('h3', { text: w.label }), out));
      const r = await engine.call('generate', { request: { prompt, raw, training: w.training, max_new_tokens: maxNew, ...d } });
      // A small model often answers with end-of-text or blank lines: say so rather than
      // show an empty box that looks broken.
      out.textContent = r.text.trim() ? r.text : '(no text: the model ended its answer at once or wrote only blank lines)';
      state.generations.push({ label: w.label, text: r.text, settings: d });
    }
  } catch (e) {
    showError(`Generate: ${e.message}`);
  } finally {
    updateButtons();
  }
}

export function initComparePanel() {
  $('#generate').addEventListener('click', generate);
  const sync = () => {
    const greedy = $('#gen-mode').value === 'greedy';
    for (const id of ['#gen-temperature', '#gen-top-k', '#gen-seed']) $(id).disabled = greedy;
  };
  $('#gen-mode').addEventListener('change', sync);
  sync();
}
