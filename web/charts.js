// Charts of the ablation: uPlot (served from node_modules/uplot by our own server)
// for the curves, plain canvas for the efficiency scatter and the update-norm
// heatmap. Series are keyed by placement name; text drawn on canvas is never HTML.
import uPlot from './vendor/uplot/uPlot.esm.js';
import { ema } from './smooth.js';

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b',
                        '#e377c2', '#7f7f7f', '#bcbd22'];
export const MODULES = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'];

// The raw points of a smoothed curve: its colour, faint (hex alpha).
const RAW_ALPHA = '40';
export const RAW_SUFFIX = ' (raw)';

// withRaw: every placement gets two series, its raw points faint and behind, then its
// smoothed curve (the train-loss chart; data holds them in that order).
function lineChart(target, xLabel, yLabel, names, data, withRaw = false) {
  const width = Math.max(280, Math.min(target.clientWidth || 460, 560));
  const line = (n, i) => ({
    label: n, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
    points: { show: data[0].length < 40 },
  });
  const raw = (n, i) => ({
    label: n + RAW_SUFFIX, stroke: PALETTE[i % PALETTE.length] + RAW_ALPHA, width: 1, spanGaps: false,
    points: { show: false },
  });
  const opts = {
    width, height: 220,
    scales: { x: { time: false } },
    // Steps and epochs are whole numbers: no ticks in between.
    axes: [{ label: xLabel, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }, { label: yLabel }],
    series: [{ label: xLabel }, ...names.flatMap((n, i) => (withRaw ? [raw(n, i), line(n, i)] : [line(n, i)]))],
    legend: { live: false },
  };
  target.replaceChildren();
  return new uPlot(opts, data, target);
}

export class Charts {
  constructor(els) {
    this.els = els;   // {train, eval, ppl, eff (canvas holder), heatmap (canvas), heatSelect}
    this.names = [];
    this.steps = {};  // name -> [loss per step (index step-1)]
    this.evals = {};  // name -> Map(epoch -> {eval_loss, perplexity})
    this.results = [];
    this.pending = false;
    this.smoothing = 0.6;  // EMA weight of the train-loss curve (0 = raw)
    this.plots = {};
    this.reset([]);
  }

  /** Starts over with these placements (one series each). */
  reset(names) {
    this.names = [...names];
    this.steps = Object.fromEntries(names.map((n) => [n, []]));
    this.evals = Object.fromEntries(names.map((n) => [n, new Map()]));
    this.results = [];
    this.rebuild();
  }

  rebuild() {
    const e = this.els;
    this.plots.train = lineChart(e.train, 'step', 'train loss', this.names, this.trainData(), true);
    this.plots.eval = lineChart(e.eval, 'epoch', 'eval loss', this.names, this.evalData('eval_loss'));
    this.plots.ppl = lineChart(e.ppl, 'epoch', 'perplexity', this.names, this.evalData('perplexity'));
    this.drawScatter();
    this.drawHeatmap();
  }

  addStep(name, step, loss) {
    if (!this.steps[name]) return;
    this.steps[name][step - 1] = loss;
    this.schedule();
  }

  addEval(name, epoch, evalLoss, perplexity) {
    if (!this.evals[name]) return;
    this.evals[name].set(epoch, { eval_loss: evalLoss, perplexity });
    this.schedule();
  }

  /** Final results of the trainings (objects of results.json "trainings"). */
  setResults(results) {
    this.results = results.filter(Boolean);
    const sel = this.els.heatSelect;
    const prev = sel.value;
    sel.replaceChildren(...this.results.map((r, i) => {
      const o = document.createElement('option');
      o.value = String(i);
      o.textContent = r.name;
      return o;
    }));
    if (prev && Number(prev) < this.results.length) sel.value = prev;
    this.drawScatter();
    this.drawHeatmap();
  }

  // Redraws at most once per frame however fast events arrive.
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plots.train.setData(this.trainData());
      this.plots.eval.setData(this.evalData('eval_loss'));
      this.plots.ppl.setData(this.evalData('perplexity'));
    });
  }

  /** Sets the train-loss smoothing (EMA weight in [0, 1)) and redraws. */
  setSmoothing(weight) {
    this.smoothing = Math.min(Math.max(Number(weight) || 0, 0), 0.99);
    this.plots.train.setData(this.trainData());
  }

  // Per placement: the raw losses, then their moving average.
  trainData() {
    const n = Math.max(0, ...this.names.map((k) => this.steps[k].length));
    const x = Array.from({ length: n }, (_, i) => i + 1);
    return [x, ...this.names.flatMap((k) => {
      const raw = x.map((_, i) => (Number.isFinite(this.steps[k][i]) ? this.steps[k][i] : null));
      return [raw, ema(raw, this.smoothing)];
    })];
  }

  evalData(key) {
    const epochs = new Set();
    for (const k of this.names) for (const ep of this.evals[k].keys()) epochs.add(ep);
    const x = [...epochs].sort((a, b) => a - b);
    return [x, ...this.names.map((k) => x.map((ep) => {
      const v = this.evals[k].get(ep);
      return v && Number.isFinite(v[key]) ? v[key] : null;
    }))];
  }

  /** What the train-loss chart holds, read back from uPlot (for tests): per placement
   * its points, and with values the smoothed and raw values. */
  series({ values = false } = {}) {
    const u = this.plots.train;
    const out = [];
    u.series.forEach((s, i) => {
      if (i === 0 || s.label.endsWith(RAW_SUFFIX)) return;
      const kept = (a) => a.filter((v) => v !== null && v !== undefined);
      const o = { name: s.label, points: kept(u.data[i]).length };
      if (values) Object.assign(o, { smoothed: kept(u.data[i]), raw: kept(u.data[i - 1]), rawStroke: strokeOf(u, i - 1) });
      out.push(o);
    });
    return out;
  }

  evalSeries() {
    const u = this.plots.eval;
    return u.series.slice(1).map((s, i) => ({
      name: s.label, points: u.data[i + 1].filter((v) => v !== null && v !== undefined).length,
    }));
  }

  color(name) {
    const i = this.names.indexOf(name);
    return PALETTE[(i < 0 ? this.results.findIndex((r) => r.name === name) : i) % PALETTE.length];
  }

  drawScatter() {
    const canvas = this.els.eff;
    const ctx = canvas.getContext('2d');
    const W = canvas.width, H = canvas.height, L = 56, R = 16, T = 12, B = 36;
    ctx.clearRect(0, 0, W, H);
    const pts = this.results.filter((r) => r.trainable > 0 && Number.isFinite(r.eval_loss))
      .map((r) => ({ name: r.name, x: Math.log10(r.trainable), y: r.eval_loss }));
    ctx.strokeStyle = '#888';
    ctx.strokeRect(L, T, W - L - R, H - T - B);
    ctx.fillStyle = '#444';
    ctx.font = '12px system-ui, sans-serif';
    ctx.fillText('trainable parameters (log scale)', L + 4, H - 6);
    ctx.save();
    ctx.translate(14, T + (H - T - B) / 2 + 30);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText('eval loss', 0, 0);
    ctx.restore();
    if (!pts.length) return;
    const pad = (lo, hi) => (hi - lo < 1e-9 ? [lo - 0.5, hi + 0.5] : [lo - (hi - lo) * 0.15, hi + (hi - lo) * 0.15]);
    const [x0, x1] = pad(Math.min(...pts.map((p) => p.x)), Math.max(...pts.map((p) => p.x)));
    const [y0, y1] = pad(Math.min(...pts.map((p) => p.y)), Math.max(...pts.map((p) => p.y)));
    const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
    const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
    ctx.fillText(Number(10 ** x0).toExponential(1), L, H - B + 14);
    ctx.fillText(Number(10 ** x1).toExponential(1), W - R - 48, H - B + 14);
    ctx.fillText(y1.toFixed(3), 4, T + 10);
    ctx.fillText(y0.toFixed(3), 4, H - B);
    for (const p of pts) {
      ctx.fillStyle = this.color(p.name);
      ctx.beginPath();
      ctx.arc(sx(p.x), sy(p.y), 5, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillText(p.name, sx(p.x) + 7, sy(p.y) - 6);
    }
  }

  drawHeatmap() {
    const canvas = this.els.heatmap;
    const ctx = canvas.getContext('2d');
    const W = canvas.width, H = canvas.height;
    ctx.clearRect(0, 0, W, H);
    ctx.font = '12px system-ui, sans-serif';
    const r = this.results[Number(this.els.heatSelect.value) || 0];
    const cells = r ? updateNorms(r) : [];
    if (!cells.length) {
      ctx.fillStyle = '#666';
      ctx.fillText(r ? 'no update norms in this result' : 'finish a training to see its update norms', 10, 24);
      return;
    }
    const nLayer = Math.max(...cells.map((c) => c.layer)) + 1;
    const max = Math.max(...cells.map((c) => c.norm), 1e-12);
    const L = 84, T = 8, B = 28, R = 8;
    const cw = (W - L - R) / nLayer, ch = (H - T - B) / MODULES.length;
    MODULES.forEach((m, row) => {
      ctx.fillStyle = '#333';
      ctx.fillText(m, 4, T + row * ch + ch / 2 + 4);
      for (let l = 0; l < nLayer; l++) {
        ctx.fillStyle = '#eee';
        ctx.fillRect(L + l * cw + 1, T + row * ch + 1, cw - 2, ch - 2);
      }
    });
    for (const c of cells) {
      const row = MODULES.indexOf(c.module);
      if (row < 0) continue;
      const t = c.norm / max;
      ctx.fillStyle = `rgb(${Math.round(255 - 200 * t)}, ${Math.round(245 - 170 * t)}, ${Math.round(255 - 40 * t)})`;
      ctx.fillRect(L + c.layer * cw + 1, T + row * ch + 1, cw - 2, ch - 2);
    }
    ctx.fillStyle = '#333';
    const every = Math.max(1, Math.ceil(nLayer / 12));
    for (let l = 0; l < nLayer; l += every) ctx.fillText(String(l), L + l * cw + cw / 2 - 4, H - B + 14);
    ctx.fillText(`layer  (darkest = ${max.toPrecision(3)})`, L, H - 4);
  }
}

/**
 * Update norms of a training's result as [{layer, module, norm}], accepting the
 * shapes results.json may use: a list of {layer, module, norm}, a list of
 * [layer, module, norm], or {module: [norm per layer]}.
 */
export function updateNorms(result) {
  const src = result.update_norms ?? result.layer_norms ?? result.norms;
  if (!src) return [];
  const out = [];
  if (Array.isArray(src)) {
    for (const e of src) {
      if (Array.isArray(e)) out.push({ layer: e[0], module: e[1], norm: e[2] });
      else if (e && typeof e === 'object') out.push({ layer: e.layer, module: e.module, norm: e.norm ?? e.value });
    }
  } else if (typeof src === 'object') {
    for (const [module, arr] of Object.entries(src)) {
      if (Array.isArray(arr)) arr.forEach((v, layer) => { if (Number.isFinite(v)) out.push({ layer, module, norm: v }); });
    }
  }
  return out.filter((c) => Number.isInteger(c.layer) && Number.isFinite(c.norm) && typeof c.module === 'string');
}

// A series' stroke colour: uPlot turns the stroke it was given into a function of
// (plot, series index) once the plot is built.
function strokeOf(u, i) {
  const s = u.series[i].stroke;
  return typeof s === 'function' ? s(u, i) : s;
}
