// The results table: the columns of the CLI's results.csv (eval loss before and
// after, perplexity, mean per-sample perplexity, trainable and total params, % of
// total, training time, tokens/s, memory, parameter reduction, change vs
// baseline, modules touched) as rows,
// one column per placement, best value of each row marked. Every number cell
// carries its raw value in data-value, taken straight from results.json.
import './report.js';
import { el, fill } from './dom.js';

// The rows, their formats and the columns are report.js's, so that the page's table
// and the self-contained report's cannot differ.
const R = globalThis.LoraLabReport;
export const { ROWS, metric, trainingsOf, columnsOf } = R;

/** Row value of placement p (a number, or undefined). */
export function rowValue(ps, p, key) {
  return metric(p, key);
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
  fill(thead, el('tr', {}, el('th', { scope: 'col', text: seeds ? `mean ± ½ 95% interval${seeds}` : 'metric' }),
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
