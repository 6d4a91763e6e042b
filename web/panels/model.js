// Panel 1, Model: where the model comes from (bundled file, Hub repo, local files),
// loading it in the worker with byte progress, and what was loaded.
import { $, el, fill, fmtInt, fmtBytes } from '../dom.js';
import { engine } from '../engine.js';
import { state, showError, clearError, setStatus, updateButtons, followArchitecture } from '../state.js';
import { refreshCounts } from './placements.js';
import { setModelContext } from './hp.js';

/** Shows a worker progress message on the model's progress bar. */
export function onProgress(p) {
  state.progress.push({ phase: p.phase, loaded: p.loaded, total: p.total, text: p.text,
                       tensorsDone: p.tensorsDone, tensorsTotal: p.tensorsTotal });
  if (state.progress.length > 200) state.progress.splice(0, 100);
  const bar = $('#model-progress');
  bar.hidden = false;
  if (p.total > 0) { bar.max = p.total; bar.value = Math.min(p.loaded, p.total); } else bar.removeAttribute('value');
  const bytes = p.total > 0 ? `: ${fmtBytes(p.loaded)} of ${fmtBytes(p.total)}` : '';
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
    (r.commit ? ` @ ${r.commit.slice(0, 10)}` : '') +
    (r.fromCache ? ' (from the browser cache)' : r.weights ? ` (converted from ${r.weights}` +
    (r.cachedIn ? `, cached in ${r.cachedIn})` : ', not cached)') : '');
}

/** Lists the converted models kept in the browser, each with its size and a Delete button. */
export async function refreshCache() {
  let list = [];
  try { list = await engine.call('listCache'); } catch (e) { /* no worker yet */ }
  state.cached = list;
  const rows = list.map((e) => el('tr', {},
    el('td', {}, `${e.repo}@${e.revision}`), el('td', { class: 'muted' }, (e.commit || e.etag || '').slice(0, 10)),
    el('td', {}, fmtBytes(e.bytes)),
    el('td', {}, el('button', { type: 'button', 'aria-label': `Delete ${e.repo}@${e.revision} from the cache`,
                                onclick: () => engine.call('deleteCached', { key: e.key }).then(refreshCache, (x) => showError(x.message)) },
                    'Delete'))));
  const total = list.reduce((a, e) => a + e.bytes, 0);
  fill($('#cached-models'), el('caption', { class: 'muted' }, list.length ? `${list.length} model(s), ${fmtBytes(total)}` : 'none yet'),
       ...rows);
}

/** Loads the chosen model in the worker; errors go to the error box. */
export async function loadModel() {
  clearError();
  let source;
  try { source = modelSource(); } catch (e) { return showError(e.message); }
  state.model = null;
  $('#load-model').disabled = true;
  $('#cancel-load').hidden = false;
  try {
    const r = await engine.call('loadModel', { source });
    state.model = r.info;
    followArchitecture(r.info);
    setModelContext(r.info && r.info.n_ctx);
    state.modelSource = r;
    setStatus('#model-status', describe(r));
    $('#model-progress').hidden = true;
    await refreshCounts();
  } catch (e) {
    setStatus('#model-status', 'No model loaded.');
    showError(`Model: ${e.message}`);
  } finally {
    await refreshCache();   // the cache list is current when the load is reported over
    $('#load-model').disabled = false;
    $('#cancel-load').hidden = true;
    updateButtons();
  }
}

export function initModelPanel(params) {
  $('#load-model').addEventListener('click', loadModel);
  $('#cancel-load').addEventListener('click', () => engine.cancel());
  $('#clear-cache').addEventListener('click', () => engine.call('clearCache').then(
    () => { setStatus('#model-status', 'Cached models forgotten.'); refreshCache(); }, (e) => showError(e.message)));
  $('#cache-details').addEventListener('toggle', refreshCache);
  if (params.get('model')) $('#model-bundled').value = params.get('model');
  if (params.get('hub')) $('#hub-base').value = new URL(params.get('hub'), location.href).href;
}
