// Seeds on the page: the chart series of each (placement, seed) training, the
// per-seed eval losses drawn as dots with the mean and its 95% t-interval as an
// error bar (from results.json "aggregates", computed by the engine), and the
// verdicts of the paired differences against the baseline.
import { el, fill } from './dom.js';

/** The chart series of a training: the placement's name at the first seed, "name · seed S" at the others. */
export function seriesKey(name, seed, exp) {
  return seed === undefined || seed === null || !exp || seed === exp.seed ? name : `${name} · seed ${seed}`;
}

/** The aggregates of a results document with their eval-loss statistics, or []. */
export function aggregatesOf(doc) {
  const ps = doc && doc.aggregates && Array.isArray(doc.aggregates.placements) ? doc.aggregates.placements : [];
  return ps.filter((a) => a.metrics && a.metrics.eval_loss);
}

/** Draws every seed's eval loss per placement: dots, the mean (tick) and the 95% interval (bar). */
export function drawSeedBands(canvas, doc, color = () => '#1f77b4') {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, L = 56, R = 12, T = 12, B = 30;
  ctx.clearRect(0, 0, W, H);
  ctx.font = '12px system-ui, sans-serif';
  const aggs = aggregatesOf(doc);
  canvas.dataset.bands = String(aggs.filter((a) => a.metrics.eval_loss.ci95).length);
  canvas.dataset.dots = String(aggs.reduce((n, a) => n + a.metrics.eval_loss.values.length, 0));
  if (!aggs.length) {
    ctx.fillStyle = '#666';
    ctx.fillText('finish a run to see the eval loss of each seed', 10, 24);
    return;
  }
  const ys = aggs.flatMap((a) => [...a.metrics.eval_loss.values, ...(a.metrics.eval_loss.ci95 || [])]);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  const pad = y1 - y0 < 1e-9 ? 0.5 : (y1 - y0) * 0.15;
  y0 -= pad; y1 += pad;
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const cw = (W - L - R) / aggs.length;
  ctx.strokeStyle = '#888';
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.fillStyle = '#444';
  ctx.fillText(y1.toFixed(3), 4, T + 10);
  ctx.fillText(y0.toFixed(3), 4, H - B);
  ctx.save();
  ctx.translate(12, T + (H - T - B) / 2 + 28);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText('eval loss', 0, 0);
  ctx.restore();
  aggs.forEach((a, i) => {
    const m = a.metrics.eval_loss, cx = L + (i + 0.5) * cw;
    ctx.strokeStyle = ctx.fillStyle = color(a.name);
    if (m.ci95) {
      ctx.globalAlpha = 0.25;
      ctx.fillRect(cx - 14, sy(m.ci95[1]), 28, Math.max(1, sy(m.ci95[0]) - sy(m.ci95[1])));
      ctx.globalAlpha = 1;
    }
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(cx - 16, sy(m.mean));
    ctx.lineTo(cx + 16, sy(m.mean));
    ctx.stroke();
    m.values.forEach((v, k) => {
      ctx.beginPath();
      ctx.arc(cx - 8 + (16 * k) / Math.max(1, m.values.length - 1), sy(v), 3, 0, 2 * Math.PI);
      ctx.fill();
    });
    ctx.fillStyle = '#333';
    ctx.fillText(`${a.name} (${m.n})`, cx - cw / 2 + 4, H - 10);
  });
}

/** One line per placement compared with the baseline, from the engine's verdicts. */
export function renderVerdicts(ul, doc) {
  const items = aggregatesOf(doc).filter((a) => a.verdict).map((a) => el('li', { text: a.verdict }));
  fill(ul, items);
}
