// Panel 3, Placements: the presets, the custom editor, and the parameter count of
// each placement (counted by the engine before anything runs), with PEFT's suffix
// matches made visible.
import { el, $, fill, fmtInt, fmtNum } from '../dom.js';
import { engine } from '../engine.js';
import { state, setStatus, updateButtons } from '../state.js';
import { readHp } from './hp.js';

/** The experiment the page would run now: hyper-parameters and the ticked placements. */
export function experiment() {
  return { ...readHp(), placements: state.placements.filter((p) => p.on).map((p) => p.spec) };
}

function renderPresets() {
  fill($('#presets'), state.placements.filter((p) => p.preset).map((p) =>
    el('label', { class: 'preset', title: p.description },
      el('input', { type: 'checkbox', value: p.name, checked: p.on, onchange: (e) => { p.on = e.target.checked; refreshCounts(); } }),
      ` ${p.name} `, el('span', { class: 'muted', text: p.description }))));
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

function targetsText(p, c) {
  if (!c) return p.preset ? '' : JSON.stringify(p.spec.target_modules);
  return (Array.isArray(c.target_modules) ? c.target_modules.join(', ') : String(c.target_modules ?? '')) +
    (Array.isArray(c.layers) && c.layers.length ? ` @ layers ${c.layers.join(',')}` : '');
}

function countRow(p, i) {
  const c = state.counts.find((x) => x.name === p.name);
  const notes = c ? suffixNotes(c) : [];
  return el('tr', { dataset: { placement: p.name } },
    el('td', {}, el('input', { type: 'checkbox', checked: p.on, 'aria-label': `run ${p.name}`,
      onchange: (e) => { p.on = e.target.checked; refreshCounts(); } })),
    el('td', { text: p.name }),
    el('td', { class: 'mono', text: targetsText(p, c) }),
    el('td', { class: 'modules' }, c ? String(c.modules ?? '') : (p.on ? '' : 'not selected'),
      notes.length ? el('div', { class: 'surprise', text: `⚠ suffix match: ${notes.join('; ')}` }) : null),
    el('td', { class: 'num', dataset: { value: c ? String(c.trainable) : '' }, text: c ? fmtInt(c.trainable) : '' }),
    el('td', { class: 'num', text: c ? `${fmtNum(c.percent, 3)} %` : '' }),
    el('td', {}, p.preset ? null : el('button', { type: 'button', text: 'remove', onclick: () => {
      state.placements.splice(i, 1);
      refreshCounts();
    } })));
}

let countSeq = 0;
/** Redraws the presets and asks the engine for the counts of the ticked placements. */
export async function refreshCounts() {
  renderPresets();
  const exp = experiment();
  const seq = ++countSeq;
  if (!state.model || !exp.placements.length) {
    state.counts = [];
    setStatus('#count-status', state.model ? 'Choose at least one placement.' : 'Load a model to see parameter counts.');
  } else {
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
  }
  fill($('#count-table tbody'), state.placements.map(countRow));
  updateButtons();
  document.dispatchEvent(new CustomEvent('lab:counts'));
}

export function initPlacementsPanel() {
  $('#custom-add').addEventListener('click', addCustom);
  $('#hp [data-hp="r"]').addEventListener('change', refreshCounts);
}
