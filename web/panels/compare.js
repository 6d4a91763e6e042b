// The Side by side panel: the base model and each finished placement answer the
// same instruction, one after another.
import { el, $, fill } from '../dom.js';
import { placementsOf } from '../table.js';
import { engine } from '../engine.js';
import { state, showError, clearError, updateButtons } from '../state.js';

// Who answers: the base model, then every placement of this run that finished.
function speakers() {
  const who = [{ label: 'base model', placement: -1 }];
  placementsOf(state.results).forEach((p, i) => {
    if (!state.results.restored && (!p.status || p.status === 'done')) who.push({ label: p.name, placement: i });
  });
  return who;
}

async function generate() {
  clearError();
  // lab_generate wraps the prompt in the Alpaca template itself unless raw is set.
  const prompt = $('#prompt').value;
  const raw = !$('#gen-template').checked;
  const maxNew = Math.max(1, Math.min(256, Number($('#gen-tokens').value) || 40));
  const box = $('#compare');
  fill(box);
  state.generations = [];
  $('#generate').disabled = true;
  try {
    for (const w of speakers()) {
      const out = el('pre', { class: 'gen', text: '…' });
      box.append(el('div', { class: 'gen-box', dataset: { placement: w.label } }, el('h3', { text: w.label }), out));
      // The CLI's generation defaults (lab_presets), so both answer alike.
      const g = state.presets.generate;
      const r = await engine.call('generate', { request: { prompt, raw, placement: w.placement, max_new_tokens: maxNew,
                                                           temperature: g.temperature, top_k: g.top_k, seed: g.seed,
                                                           repetition_penalty: g.repetition_penalty } });
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

export function initComparePanel() {
  $('#generate').addEventListener('click', generate);
}
