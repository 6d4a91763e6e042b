// Panel 1, Model: where the model comes from (bundled file, Hub repo, local files),
// loading it in the worker with byte progress, and what was loaded.
import { $, fmtInt, fmtBytes } from '../dom.js';
import { engine } from '../engine.js';
import { state, showError, clearError, setStatus, updateButtons } from '../state.js';
import { refreshCounts } from './placements.js';

/** Shows a worker progress message on the model's progress bar. */
export function onProgress(p) {
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
    if (!/^[\w.-]+\.gguf$/.test(f)) throw new Error('the bundled model is a .gguf file name under models/');
    return { kind: 'url', url: `models/${f}` };   // next to the page; the worker sits beside it
  }
  if (kind === 'hub') {
    return { kind: 'hub', base: $('#hub-base').value.trim(), repo: $('#hub-repo').value.trim(),
             revision: $('#hub-rev').value.trim() || 'main' };
  }
  const files = [...$('#model-files').files];
  if (!files.length) throw new Error('choose a model file first');
  return { kind: 'files', files };
}

function describe(r) {
  const i = r.info;
  return `${i.name || r.source}: ${i.n_layer} layers, d=${i.n_embd}, ${i.n_head} heads, ` +
    `${fmtInt(i.params)} params, ${i.matrix_type}, ${fmtBytes(r.bytes)}` +
    (r.fromCache ? ' (from the browser cache)' : '') + (r.weights ? ` (converted from ${r.weights}` +
    (r.cachedIn ? `, cached in ${r.cachedIn})` : ')') : '');
}

/** Loads the chosen model in the worker; errors go to the error box. */
export async function loadModel() {
  clearError();
  let source;
  try { source = modelSource(); } catch (e) { return showError(e.message); }
  state.model = null;
  $('#load-model').disabled = true;
  try {
    const r = await engine.call('loadModel', { source });
    state.model = r.info;
    state.modelSource = r;
    setStatus('#model-status', describe(r));
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

export function initModelPanel(params) {
  $('#load-model').addEventListener('click', loadModel);
  $('#clear-cache').addEventListener('click', () => engine.call('clearCache').then(
    () => setStatus('#model-status', 'Cached models forgotten.'), (e) => showError(e.message)));
  if (params.get('model')) $('#model-bundled').value = params.get('model');
  if (params.get('hub')) $('#hub-base').value = new URL(params.get('hub'), location.href).href;
}
