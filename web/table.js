// The results table: the columns of the CLI's results.csv (eval loss before and
// after, perplexity, mean per-sample perplexity, trainable and total params, % of
// total, training time, tokens/s, memory, parameter reduction, change vs
// baseline, modules touched) as rows,
// one column per placement, best value of each row marked. Every number cell
// carries its raw value in data-value, taken straight from results.json.
import { el, fill, fmtInt, fmtBytes, fmtTime } from './dom.js';

// [key, label, format, better: 'low' | 'high' | null] — rows, labels and number
// formats of the CLI's table (src/cli/cli_util.c), so both read the same.
const fixed = (d) => (v) => v.toFixed(d);
const signedPct = (v) => `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`;
export const ROWS = [
  ['eval_loss_before', 'eval loss before', fixed(4), null],
  ['eval_loss', 'eval loss', fixed(4), 'low'],
  ['perplexity', 'perplexity', fixed(3), 'low'],
  ['mean_sample_perplexity', 'mean sample perplexity', fixed(3), 'low'],
  ['trainer_eval_loss', 'trainer eval loss (HF)', fixed(4), 'low'],
  ['drop_share_template', 'drop from template', (v) => `${(100 * v).toFixed(0)}%`, null],
  ['drop_share_response', 'drop from response', (v) => `${(100 * v).toFixed(0)}%`, null],
  ['trainable', 'trainable params', fmtInt, 'low'],
  ['percent', '% of total', (v) => `${v.toFixed(2)}%`, 'low'],
  ['reduction_pct', 'parameter reduction', (v, p) => `${v.toFixed(2)}%` +
    (Number.isFinite(p.reduction_factor) ? ` (${p.reduction_factor.toFixed(0)}x)` : ''), 'high'],
  ['vs_baseline_pct', 'vs baseline', signedPct, null],
  ['train_seconds', 'training time', fmtTime, 'low'],
  ['tokens_per_s', 'tokens/s', fixed(0), 'high'],
  ['placement_memory_bytes', 'placement memory', fmtBytes, 'low'],
  ['process_peak_memory_bytes', 'process peak (wasm heap)', fmtBytes, null],
];

// Where a value may sit in a placement object of results.json.
const GROUPS = ['metrics', 'params', 'accounting', 'timing', 'memory', 'eval', 'summary'];

/** Value of key in a placement result (top level or one level down), or undefined. */
export function metric(p, key) {
  if (!p) return undefined;
  if (p[key] !== undefined) return p[key];
  for (const g of GROUPS) if (p[g] && typeof p[g] === 'object' && p[g][key] !== undefined) return p[g][key];
  return undefined;
}

/** The placements array of a results document. */
export function placementsOf(doc) {
  if (!doc) return [];
  if (Array.isArray(doc.placements)) return doc.placements;
  if (Array.isArray(doc.results)) return doc.results;
  return [];
}

/** Row value of placement p (a number, or undefined). */
export function rowValue(ps, p, key) {
  return metric(p, key);
}

/**
 * The table's columns: one per training, or with several seeds one per placement whose
 * numbers are the engine's aggregates (mean, and half the 95% t-interval).
 */
export function columnsOf(doc) {
  const ps = placementsOf(doc);
  const aggs = doc && doc.aggregates && Array.isArray(doc.aggregates.placements) ? doc.aggregates.placements : [];
  // Aggregated columns need the trainings under their placements' names (an opened
  // document whose trainings were renamed "name sSEED" is shown training by training).
  const named = aggs.length && aggs.every((a) => ps.some((p) => p.name === a.name));
  if (!(Array.isArray(doc && doc.seeds) && doc.seeds.length > 1 && named)) {
    return ps.map((p) => ({ p, value: (key) => metric(p, key), half: () => undefined }));
  }
  return aggs.map((a) => {
    const p = ps.find((q) => q.name === a.name && q.status === 'done') || ps.find((q) => q.name === a.name);
    const m = (key) => (a.metrics && a.metrics[key]) || null;
    return {
      p, agg: a,
      value: (key) => (m(key) ? m(key).mean : metric(p, key)),
      half: (key) => (m(key) && m(key).ci95 ? (m(key).ci95[1] - m(key).ci95[0]) / 2 : undefined),
    };
  });
}

export function renderResults(table, doc) {
  const cols = columnsOf(doc);
  const ps = cols.map((c) => c.p);
  const thead = table.querySelector('thead'), tbody = table.querySelector('tbody');
  if (!ps.length) {
    fill(thead);
    fill(tbody, el('tr', {}, el('td', { class: 'muted', text: 'No results yet: press Run.' })));
    return;
  }
  const seeds = cols.some((c) => c.agg) ? ` (${doc.seeds.length} seeds)` : '';
  fill(thead, el('tr', {}, el('th', { text: seeds ? `mean ± ½ 95% interval${seeds}` : '' }),
    ps.map((p) => el('th', { scope: 'col', class: 'num', text: p.name }))));
  const rows = [];
  for (const [key, label, fmt, better] of ROWS) {
    const vals = cols.map((c) => c.value(key));
    if (vals.every((v) => v === undefined || v === null)) continue;
    const finite = vals.filter((v) => Number.isFinite(v));
    // A best value only means something when the placements differ.
    const spread = finite.length > 1 && Math.min(...finite) !== Math.max(...finite);
    const best = better && spread ? (better === 'low' ? Math.min(...finite) : Math.max(...finite)) : null;
    rows.push(el('tr', { dataset: { key } }, el('th', { scope: 'row', text: label }),
      vals.map((v, i) => {
        const isBest = best !== null && v === best;
        const half = cols[i].half(key);
        return el('td', { class: isBest ? 'num best' : 'num', dataset: Number.isFinite(half) ? { value: String(v), half: String(half) } : { value: String(v) },
                          title: isBest ? 'best of this row' : undefined },
                  Number.isFinite(v) ? fmt(v, ps[i]) : '–', Number.isFinite(half) ? ` ± ${fmt(half, ps[i])}` : '',
                  isBest ? ' ★' : '');
      })));
  }
  rows.push(el('tr', { dataset: { key: 'modules' } }, el('th', { scope: 'row', text: 'modules touched' }),
    ps.map((p) => el('td', { class: 'modules', text: String(metric(p, 'modules') ?? '') }))));
  const failed = ps.filter((p) => (p.status && p.status !== 'done') || p.message);
  if (failed.length) {
    rows.push(el('tr', { dataset: { key: 'status' } }, el('th', { scope: 'row', text: 'status' }),
      ps.map((p) => el('td', { text: [p.status || 'done', p.message].filter(Boolean).join(': ') }))));
  }
  fill(tbody, rows);
}
