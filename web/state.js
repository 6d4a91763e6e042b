// What the page knows, shared by the panels (web/panels/*): the loaded model and
// data, the placements, the current run and its results; plus the page-wide error
// box, status lines and which buttons are enabled.
import { $ } from './dom.js';

export const params = new URLSearchParams(location.search);

export const state = {
  engine: null,            // {version, variant, isolated, threads, presets}
  presets: null,           // lab_presets(): placements, study and quick settings, generation defaults
  model: null,             // lab_model_info
  modelSource: null,
  data: null,              // {train, eval, source, records}
  placements: [],          // {name, spec, preset, on, description}: the engine's presets, then custom ones
  counts: [],
  running: false,
  runId: null,
  run: null,               // {names, totalSteps, done: {index: steps}, failed: {}, cancelled}
  results: null,           // parsed results.json of the last run (or saved ones)
  resultsJson: null, resultsCsv: null,
  adapters: {},            // placement name -> {adapter: Uint8Array, config: string}
  saved: [],
  storageFull: false,      // IndexedDB refused a write (quota): results live on this page only
  engineRestarts: 0,       // automatic worker restarts (after out of memory)
  resumable: null,         // {run, recs}: a stored run that stopped before its end (offered for resuming)
  errors: [],              // messages shown on the page
  generations: [],
  progress: [],            // recent model progress messages (for tests)
  cached: [],              // converted models kept in the browser (OPFS)
};

/** Takes the engine's presets (once): the placements, the study's three ticked. */
export function usePresets(presets) {
  if (state.presets) return;
  state.presets = presets;
  state.placements = presets.placements.map((p) => ({ name: p.name, spec: p.name, preset: true, on: p.study,
                                                     description: p.description }));
}

// The Llama family's study: PEFT's four usual choices.
const LLAMA_STUDY = ['all-linear', 'attn', 'mlp', 'qv'];

/**
 * Placements follow the loaded model's architecture: for llama / qwen2 the engine's
 * Llama presets (PEFT's module names, all-linear, attn, mlp and qv ticked), for GPT-2
 * its GPT-2 presets (the study's three ticked). Custom placements stay as they are.
 */
export function followArchitecture(info) {
  if (!state.presets || !info) return;
  const family = info.arch === 'llama' || info.arch === 'qwen2' ? 'llama' : 'gpt2';
  if ((state.placementsFamily || 'gpt2') === family) return;
  state.placementsFamily = family;
  const llama = family === 'llama';
  const list = llama ? state.presets.llama_placements || [] : state.presets.placements;
  state.placements = [
    ...list.map((p) => ({ name: p.name, spec: p.name, preset: true, on: llama ? LLAMA_STUDY.includes(p.name) : !!p.study,
                          description: p.description })),
    ...state.placements.filter((p) => !p.preset)];
}

/** Shows a message in the error box; crash offers "Restart the worker". */
export function showError(message, { crash = false } = {}) {
  state.errors.push(String(message));
  $('#error-text').textContent = String(message);
  $('#restart').hidden = !crash;
  $('#error').hidden = false;
}

export function clearError() {
  $('#error').hidden = true;
  $('#error-text').textContent = '';
}

export function setStatus(sel, text) { $(sel).textContent = text; }

/** Enables what can be done now: run needs engine, model, data and a placement. */
export function updateButtons() {
  const ready = !!(state.engine && state.model && state.data);
  $('#run').disabled = !ready || state.running || !state.placements.some((p) => p.on);
  $('#resume').disabled = !ready || state.running || !state.resumable;
  $('#cancel').disabled = !state.running;
  $('#generate').disabled = !state.model || state.running;
  $('#learned-show').disabled = state.running || !$('#learned-placement').options.length;
  $('#load-model').disabled = state.running || !state.engine;
  $('#load-data').disabled = state.running || !state.engine;
}
