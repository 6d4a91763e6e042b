// The tour: six steps that point at parts of the page and explain the study's two
// mistakes and what a result is made of, with the numbers of the run on the page.
// It is a non-modal panel (the page stays usable while it is open): Tab and Enter
// move through its buttons, the arrow keys step while focus is in it, Esc closes it
// from anywhere, and closing gives focus back to the button that opened it.
import '../report.js';
import { el, $, fill, fmtInt } from '../dom.js';
import { state } from '../state.js';
import { experiment } from './placements.js';
import { diagramSource } from './diagram.js';

const R = globalThis.LoraLabReport;
const f3 = (v) => (Number.isFinite(v) ? v.toFixed(3) : '–');
const f4 = (v) => (Number.isFinite(v) ? v.toFixed(4) : '–');

/** What the steps read: the results on the page (if any), the counts, the model and the settings. */
function context() {
  // The document as written (an opened file's trainings are renamed "name sSEED" on the page).
  let doc = null;
  try { doc = state.resultsJson ? JSON.parse(state.resultsJson) : null; } catch (e) { doc = null; }
  if (!doc || doc.format !== 'loralab-results') doc = state.results && state.results.format === 'loralab-results' ? state.results : null;
  let hp = {};
  try { hp = experiment(); } catch (e) { hp = {}; }
  const cfg = (doc && doc.config) || hp;
  const model = (doc && doc.model) || state.model || null;
  const cols = doc ? R.columnsOf(doc).filter((c) => Number.isFinite(c.value('eval_loss'))) : [];
  // pageModel and hp are what the diagram and the custom editor work on (the loaded model, the fields).
  return { doc, cfg, model, cols, counts: state.counts || [], placements: hp.placements || [], pageModel: state.model, hp };
}

function best(cols) {
  return cols.reduce((a, c) => (!a || c.value('eval_loss') < a.value('eval_loss') ? c : a), null);
}

function studyStep(x) {
  const m = x.model;
  const names = x.doc ? [...new Set(R.trainingsOf(x.doc).map((p) => p.name))]
    : x.placements.map((p) => (typeof p === 'string' ? p : p.name));
  const here = m ? `Here: ${m.name || 'the loaded model'} (${m.n_layer} layers, d=${m.n_embd}), ` +
    `${x.cfg.n_train ?? '?'} training and ${x.cfg.n_eval ?? '?'} eval records, r=${x.cfg.r}, alpha=${x.cfg.alpha}, ` +
    `${x.cfg.epochs} epoch(s), placements ${names.join(', ') || 'none yet'}.` : 'Load a model to compare with your own run.';
  return {
    title: 'What the study asked', target: '#placement-section',
    body: ['The study fine-tuned DialoGPT-medium with LoRA (r=16, alpha=32, 3 epochs, 100 Alpaca records) and asked where ' +
      'the adapters should go: every linear layer (“baseline”), the feed-forward layers (“ffn”) or attention (“attn”). ' +
      'It reported 6,291,456, 1,966,080 and 4,325,376 trainable parameters, and an eval loss with its perplexity for each.', here],
  };
}

function trapStep(x) {
  // The numbers of what the diagram draws (the ticked placements or the results), never a mix.
  const src = diagramSource();
  const c = src.entries.find((k) => k.name === 'attn');
  const model = src.model, rank = src.r;
  const lines = ['PEFT matches a target t when a module\'s name is t or ends with “.t”, so “c_proj” picks both ' +
    'attn.c_proj and mlp.c_proj. The study\'s “attention only” also adapted half of every MLP: 1,966,080 of its ' +
    '4,325,376 parameters (45%) sit in mlp.c_proj.'];
  if (c && Array.isArray(c.selected)) {
    const layers = c.selected.filter((s) => s[1] === 'mlp.c_proj').length;
    const d = model && model.n_embd, r = rank;
    const inMlp = d && r ? layers * r * (4 * d + d) : NaN;
    lines.push(`On the diagram, “attn” lights mlp.c_proj (the ringed chip) in ${layers} layer(s): ` +
      (Number.isFinite(inMlp) && Number.isFinite(c.trainable) ? `${fmtInt(inMlp)} of its ${fmtInt(c.trainable)} trainable parameters are there. ` : '') +
      'Compare attn-exact, which names attn.c_attn and attn.c_proj in full.');
  } else {
    lines.push('Tick “attn” in the placements to see the trap lit on the diagram.');
  }
  return { title: 'The suffix trap, on the diagram', target: '#diagram-figure', body: lines };
}

function perplexityStep(x) {
  const b = best(x.cols);
  const lines = ['Perplexity is exp(eval loss), with the loss averaged over every scored token: an eval loss of 3.09 is a ' +
    'perplexity of about 22, not 4,283. A mean of per-sample perplexities exponentiates each example first, so the worst ' +
    'examples dominate it and it is never smaller (Jensen).'];
  if (b) {
    const loss = b.value('eval_loss'), ppl = b.value('perplexity'), msp = b.value('mean_sample_perplexity');
    lines.push(`In this run, ${b.p.name}: eval loss ${f4(loss)}, perplexity exp(${f4(loss)}) = ${f3(ppl)}, while the mean ` +
      `of per-sample perplexities is ${f3(msp)}` + (Number.isFinite(msp / ppl) ? `, ${(msp / ppl).toFixed(2)}× as large.` : '.'));
  } else {
    lines.push('Run (or open a results.json) to see both rows of the results table with this run\'s numbers.');
  }
  return { title: 'exp(eval loss) is the perplexity; the mean of per-sample perplexities is not', target: '#results-table', body: lines };
}

function seedsStep(x) {
  const aggs = x.doc ? R.aggregatesOf(x.doc) : [];
  const lines = ['Small fine-tunes move with the seed alone: one run per placement cannot rank placements. With several ' +
    'seeds the table shows each mean ± half its 95% t-interval, and each placement is compared with the baseline seed by seed.'];
  if (aggs.length && x.doc.seeds && x.doc.seeds.length > 1) {
    const a = aggs.map((g) => `${g.name} ${f4(g.metrics.eval_loss.mean)}` +
      (g.metrics.eval_loss.ci95 ? ` [${f4(g.metrics.eval_loss.ci95[0])}, ${f4(g.metrics.eval_loss.ci95[1])}]` : ''));
    lines.push(`This run, ${x.doc.seeds.length} seeds, eval loss: ${a.join('; ')}.`);
    const v = aggs.filter((g) => g.verdict).map((g) => g.verdict);
    if (v.length) lines.push(`Verdicts: ${v.join(' · ')}`);
  } else if (x.cols.length > 1) {
    const ls = x.cols.map((c) => c.value('eval_loss'));
    lines.push(`This run used one seed: its eval losses span ${f4(Math.max(...ls) - Math.min(...ls))}, with nothing to say ` +
      'how much of that a different seed would change. Set “seeds” to 3 or more and run again.');
  } else {
    lines.push('Set “seeds” to 3 or more before running to see the intervals here.');
  }
  return { title: 'Seeds and intervals', target: '#seed-figure', body: lines };
}

function dropStep(x) {
  const lines = ['An Alpaca example is mostly template: the same instruction wording in every record. A placement can lower ' +
    'the eval loss by learning that wording, which says nothing about the answers.'];
  const b = best(x.cols);
  const t = b && b.value('drop_share_template'), r = b && b.value('drop_share_response');
  if (Number.isFinite(t)) {
    lines.push(`In this run, ${(100 * t).toFixed(0)}% of ${b.p.name}'s drop in eval loss came from template tokens` +
      (Number.isFinite(r) ? ` and ${(100 * r).toFixed(0)}% from the responses.` : '.') +
      ' “What was learned” shows one example token by token.');
  } else {
    lines.push('After a run, “What was learned” colours one eval example token by token by how much the adapter changed its loss.');
  }
  return { title: 'What the loss drop is made of', target: '#learned-section', body: lines };
}

function nextStep(x) {
  const ideas = [];
  const seeds = (x.doc && x.doc.seeds && x.doc.seeds.length) || x.cfg.seeds || 1;
  if (seeds < 3) ideas.push('run again with seeds = 3 or more, so the differences come with intervals');
  const names = x.counts.map((c) => c.name);
  if (names.includes('attn') && !names.includes('attn-exact')) ideas.push('tick attn-exact beside attn: the same idea without the suffix trap');
  const n = x.pageModel && x.pageModel.n_layer;
  if (n > 1) ideas.push(`add a custom placement on the top half of the layers (${Math.floor(n / 2)}-${n - 1}) and see its band on the strip`);
  ideas.push(x.doc ? 'download the report: one HTML file with all of this that opens offline' : 'run, then download the report to share it as one file');
  return { title: 'What to try next', target: x.doc ? '#downloads' : '#custom-editor', body: [`Next: ${ideas.join('; ')}.`] };
}

/** The tour's steps for the page as it is now: [{title, target (a selector), body: [paragraphs]}]. */
export function tourSteps() {
  const x = context();
  return [studyStep(x), trapStep(x), perplexityStep(x), seedsStep(x), dropStep(x), nextStep(x)];
}

let step = -1;
let opener = null;

function unmark() {
  document.querySelectorAll('.tour-target').forEach((e) => e.classList.remove('tour-target'));
}

function show(i) {
  const steps = tourSteps();
  step = Math.max(0, Math.min(steps.length - 1, i));
  const s = steps[step];
  unmark();
  const target = $(s.target);
  if (target) {
    target.classList.add('tour-target');
    target.scrollIntoView({ block: 'center' });
  }
  $('#tour-count').textContent = `Step ${step + 1} of ${steps.length}`;
  $('#tour-title').textContent = s.title;
  fill($('#tour-body'), s.body.map((t) => el('p', { text: t })));
  $('#tour-prev').disabled = step === 0;
  $('#tour-next').disabled = step === steps.length - 1;
  $('#tour').dataset.step = String(step + 1);
  $('#tour').dataset.target = s.target;
  $('#tour-title').focus();
}

/** Opens the tour at its first step. */
export function openTour() {
  opener = document.activeElement;
  $('#tour').hidden = false;
  show(0);
}

/** Closes the tour; focus goes back to what opened it. */
export function closeTour() {
  if ($('#tour').hidden) return;
  $('#tour').hidden = true;
  unmark();
  step = -1;
  (opener && document.contains(opener) ? opener : $('#tour-start')).focus();
}

function build() {
  return el('aside', { id: 'tour', class: 'tour', hidden: true, 'aria-labelledby': 'tour-title' },
    el('p', { id: 'tour-count', class: 'muted' }),
    el('h2', { id: 'tour-title', tabindex: '-1' }),
    el('div', { id: 'tour-body' }),
    el('div', { class: 'tour-nav' },
      el('button', { type: 'button', id: 'tour-prev', text: '← Back', onclick: () => show(step - 1) }),
      el('button', { type: 'button', id: 'tour-next', class: 'primary', text: 'Next →', onclick: () => show(step + 1) }),
      el('button', { type: 'button', id: 'tour-close', text: 'Close', 'aria-label': 'Close the tour', onclick: closeTour })),
    el('p', { class: 'muted tour-keys', text: 'Keys: ← → step, Esc closes. The page stays usable.' }));
}

export function initTour() {
  document.body.append(build());
  $('#tour-start').addEventListener('click', () => ($('#tour').hidden ? openTour() : closeTour()));
  document.addEventListener('keydown', (e) => {
    if ($('#tour').hidden) return;
    if (e.key === 'Escape') {
      closeTour();
      e.preventDefault();
    } else if ($('#tour').contains(document.activeElement) && (e.key === 'ArrowRight' || e.key === 'ArrowLeft')) {
      show(step + (e.key === 'ArrowRight' ? 1 : -1));
      e.preventDefault();
    }
  });
  // The numbers follow the page: a step that is showing is redrawn when results or counts change.
  document.addEventListener('lab:results', refreshQuiet);
  document.addEventListener('lab:counts', refreshQuiet);
}

// Redraws the showing step's text without moving focus (the user may be typing elsewhere).
function refreshQuiet() {
  const s = !$('#tour').hidden && tourSteps()[step];
  if (!s) return;
  $('#tour-title').textContent = s.title;
  fill($('#tour-body'), s.body.map((t) => el('p', { text: t })));
}
