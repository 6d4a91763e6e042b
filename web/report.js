// What the page and the self-contained report both draw from a results document:
// the table's rows and number formats, the adapted-modules diagram (one transformer
// block beside a strip of the layers), line charts as SVG, and the whole report.
//
// A classic script that sets globalThis.LoraLabReport, with no imports and no
// exports, because it has two lives: the page imports it as a module for its side
// effect, and web/report_template.html carries its text inline (the page's
// "Download report" and `loralab report` put it there), so the report opens from
// file:// with no server and no network. It builds elements and text nodes only:
// nothing from a results file is ever parsed as markup.
(function (root) {
  'use strict';

  const SVGNS = 'http://www.w3.org/2000/svg';
  // The charts' colours (web/charts.js uses the same list; tests/browser/teach.test.mjs checks).
  const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b',
                   '#e377c2', '#7f7f7f', '#bcbd22'];

  // ---------------------------------------------------------------- formats

  function fmtInt(n) {
    return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
  }

  function fmtBytes(n) {
    if (!Number.isFinite(n) || n <= 0) return '–';
    const u = ['B', 'KB', 'MB', 'GB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
  }

  function fmtTime(s) {
    if (!Number.isFinite(s) || s < 0) return '–';
    if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    const m = Math.floor(s / 60), r = Math.round(s % 60);
    if (m < 60) return `${m} min ${r} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  // ---------------------------------------------------------------- the table's rows

  // [key, label, format, better: 'low' | 'high' | null] — rows, labels and number
  // formats of the CLI's table (src/cli/cli_util.c), so all three read the same.
  const fixed = (d) => (v) => v.toFixed(d);
  const signedPct = (v) => `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`;
  const ROWS = [
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
      (p && Number.isFinite(p.reduction_factor) ? ` (${p.reduction_factor.toFixed(0)}x)` : ''), 'high'],
    ['vs_baseline_pct', 'vs baseline', signedPct, null],
    ['train_seconds', 'training time', fmtTime, 'low'],
    ['tokens_per_s', 'tokens/s', fixed(0), 'high'],
    ['placement_memory_bytes', 'placement memory', fmtBytes, 'low'],
    ['process_peak_memory_bytes', 'process peak (wasm heap)', fmtBytes, null],
  ];

  // Where a value may sit in a training object of results.json.
  const GROUPS = ['metrics', 'params', 'accounting', 'timing', 'memory', 'eval', 'summary'];

  /** Value of key in a training's result (top level or one level down), or undefined. */
  function metric(p, key) {
    if (!p) return undefined;
    if (p[key] !== undefined) return p[key];
    for (const g of GROUPS) if (p[g] && typeof p[g] === 'object' && p[g][key] !== undefined) return p[g][key];
    return undefined;
  }

  /**
   * The trainings of a results document (one object per placement and seed), or [] for
   * anything else. Files written before the rename of issue 25 call that list
   * "placements": the one place on the page that knows the old key.
   */
  function trainingsOf(doc) {
    if (!doc) return [];
    if (Array.isArray(doc.trainings)) return doc.trainings;
    if (Array.isArray(doc.placements)) return doc.placements;
    if (Array.isArray(doc.results)) return doc.results;
    return [];
  }

  /**
   * The table's columns: one per training, or with several seeds one per placement whose
   * numbers are the engine's aggregates (mean, and half the 95% t-interval).
   */
  function columnsOf(doc) {
    const ps = trainingsOf(doc);
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

  /** The eval-loss aggregates of a results document (placements with several seeds), or []. */
  function aggregatesOf(doc) {
    const ps = doc && doc.aggregates && Array.isArray(doc.aggregates.placements) ? doc.aggregates.placements : [];
    return ps.filter((a) => a.metrics && a.metrics.eval_loss);
  }

  // ---------------------------------------------------------------- building elements

  // How the SVG's parts look, as presentation attributes rather than CSS: the page's
  // Content-Security-Policy allows no inline styles, and the report needs no stylesheet.
  const SANS = 'system-ui, sans-serif', MONO = 'ui-monospace, DejaVu Sans Mono, monospace';
  const LOOK = {
    flow: { stroke: '#5b6475', 'stroke-width': 1.5 },
    skip: { stroke: '#8d95a3', 'stroke-width': 1.2, fill: 'none', 'stroke-dasharray': '4 3' },
    residual: { fill: '#ffffff', stroke: '#5b6475', 'stroke-width': 1.5 },
    plus: { 'font-size': 14, 'font-family': SANS, fill: '#1d2330' },
    norm: { fill: '#eef1f6', stroke: '#b8bec9' },
    op: { fill: '#f7f3e8', stroke: '#c9b98f' },
    oplabel: { 'font-size': 11, 'font-family': SANS, fill: '#1d2330' },
    modbox: { fill: '#ffffff', stroke: '#5b6475', 'stroke-width': 1.2 },
    modlabel: { 'font-size': 12, 'font-family': MONO, fill: '#1d2330' },
    note: { 'font-size': 10, 'font-family': SANS, fill: '#5b6475' },
    io: { 'font-size': 11, 'font-family': SANS, fill: '#5b6475' },
    trapmark: { 'font-size': 11, 'font-weight': 'bold', 'font-family': SANS, fill: '#8a5a00' },
    chiphead: { 'font-size': 10, 'font-family': SANS, fill: '#1d2330' },
    layerlabel: { 'font-size': 9, 'font-family': SANS, fill: '#5b6475' },
    frame: { fill: 'none', stroke: '#b8bec9' },
    gridline: { stroke: '#eceef2' },
    tick: { 'font-size': 10, 'font-family': SANS, fill: '#444444' },
    axis: { 'font-size': 11, 'font-family': SANS, fill: '#1d2330' },
    legend: { 'font-size': 11, 'font-family': SANS, fill: '#1d2330' },
  };

  function h(tag, attrs, ...children) { return build(document.createElement(tag), attrs, children); }
  function s(tag, attrs, ...children) {
    const look = Object.assign({}, ...String((attrs && attrs.class) || '').split(' ').map((c) => LOOK[c] || {}));
    return build(document.createElementNS(SVGNS, tag), { ...look, ...attrs }, children);
  }

  function build(node, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) node.setAttribute(`data-${dk}`, String(dv));
      else node.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
    }
    for (const c of children.flat(3)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // ---------------------------------------------------------------- the adapted-modules diagram

  // One block of each architecture as rows from its input up to its output. A row is
  // a norm, an operation, a residual sum, or a list of adaptable modules (side by
  // side when they read the same input). Module ids are the names results.json's
  // "selected" uses, so the drawing follows the data: a module the layouts do not
  // know is drawn in an extra row rather than left out.
  const LAYOUTS = {
    gpt2: {
      title: 'GPT-2 block',
      rows: [
        { kind: 'norm', label: 'ln_1 (LayerNorm)' },
        { kind: 'modules', ids: ['attn.c_attn'], note: 'q, k, v' },
        { kind: 'op', label: 'causal self-attention' },
        { kind: 'modules', ids: ['attn.c_proj'], note: 'attention output' },
        { kind: 'residual', label: '+ residual' },
        { kind: 'norm', label: 'ln_2 (LayerNorm)' },
        { kind: 'modules', ids: ['mlp.c_fc'], note: 'd → 4d' },
        { kind: 'op', label: 'GELU' },
        { kind: 'modules', ids: ['mlp.c_proj'], note: '4d → d' },
        { kind: 'residual', label: '+ residual' },
      ],
    },
    llama: {
      title: 'Llama block',
      rows: [
        { kind: 'norm', label: 'input_layernorm (RMSNorm)' },
        { kind: 'modules', ids: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'], note: 'q, k, v' },
        { kind: 'op', label: 'RoPE + causal self-attention' },
        { kind: 'modules', ids: ['self_attn.o_proj'], note: 'attention output' },
        { kind: 'residual', label: '+ residual' },
        { kind: 'norm', label: 'post_attention_layernorm (RMSNorm)' },
        { kind: 'modules', ids: ['mlp.gate_proj', 'mlp.up_proj'], note: 'gate, up' },
        { kind: 'op', label: 'SiLU(gate) × up' },
        { kind: 'modules', ids: ['mlp.down_proj'], note: 'down' },
        { kind: 'residual', label: '+ residual' },
      ],
    },
  };

  const layoutModules = (layout) => layout.rows.filter((r) => r.kind === 'modules').flatMap((r) => r.ids);

  /** The layout whose modules cover most of names (GPT-2 when nothing is selected), plus rows for the rest. */
  function chooseLayout(names, arch) {
    let best = LAYOUTS[arch] || null;
    if (!best) {
      let score = -1;
      for (const l of Object.values(LAYOUTS)) {
        const k = names.filter((n) => layoutModules(l).includes(n)).length;
        if (k > score) { score = k; best = l; }
      }
    }
    const known = layoutModules(best);
    const extra = [...new Set(names.filter((n) => !known.includes(n)))];
    return extra.length ? { ...best, rows: [...best.rows, { kind: 'modules', ids: extra, note: 'other modules' }] } : best;
  }

  /**
   * Which short targets of a placement PEFT's suffix rule matched to more than one
   * module path, and which lit modules are a surprise: in a sub-block (attn, mlp, ...)
   * that none of the placement's unambiguous targets names. Returns {notes, surprises}.
   */
  function suffixTrap(targets, lit) {
    const paths = [...lit.keys()];
    const list = Array.isArray(targets) ? targets.map(String) : [];
    const ambiguous = [], plainBlocks = new Set();
    for (const t of list) {
      const hit = paths.filter((p) => p === t || p.endsWith('.' + t));
      if (!t.includes('.') && hit.length > 1) ambiguous.push({ t, hit });
      else hit.forEach((p) => plainBlocks.add(p.split('.')[0]));
    }
    const surprises = new Set();
    if (plainBlocks.size) {
      for (const a of ambiguous) a.hit.filter((p) => !plainBlocks.has(p.split('.')[0])).forEach((p) => surprises.add(p));
    }
    return { ambiguous, surprises };
  }

  /**
   * The diagram's model of what each placement adapts. entries: [{name, target_modules,
   * selected: [[layer, module], ...], color?}] (a count of lab_count or a placement of
   * results.json); nLayer: the model's layers. Returns {layout, nLayer, placements:
   * [{name, color, lit: Map(module -> sorted layers), layers: sorted layers, surprises, note}]}.
   */
  function diagramModel(entries, nLayer, arch) {
    const placements = entries.map((e, i) => {
      const lit = new Map();
      for (const pair of Array.isArray(e.selected) ? e.selected : []) {
        const [layer, mod] = pair;
        if (!lit.has(mod)) lit.set(mod, []);
        lit.get(mod).push(layer);
      }
      for (const ls of lit.values()) ls.sort((a, b) => a - b);
      const layers = [...new Set([...lit.values()].flat())].sort((a, b) => a - b);
      const { ambiguous, surprises } = suffixTrap(e.target_modules, lit);
      const note = surprises.size ? `${e.name}: “${ambiguous.filter((a) => a.hit.some((p) => surprises.has(p)))
        .map((a) => a.t).join('”, “')}” is matched by suffix (PEFT: the name ends with “.${ambiguous[0].t}”), so it also ` +
        `adapts ${[...surprises].join(', ')} — modules outside what the placement's name says.` : '';
      return { name: String(e.name), color: e.color || PALETTE[i % PALETTE.length], lit, layers, surprises, note };
    });
    const names = placements.flatMap((p) => [...p.lit.keys()]);
    const maxLayer = Math.max(-1, ...placements.flatMap((p) => p.layers));
    return { layout: chooseLayout(names, arch), nLayer: Math.max(nLayer || 0, maxLayer + 1), placements };
  }

  /** The "really touches" summary of a lit map, as lpl_lora_describe writes it ("2×attn.c_attn [layers 0 1]"). */
  function describe(lit, order, nLayer) {
    const parts = [];
    for (const m of order) {
      const ls = lit.get(m);
      if (!ls || !ls.length) continue;
      parts.push(`${ls.length}×${m}` + (ls.length < nLayer ? ` [layers ${ls.join(' ')}]` : ''));
    }
    return parts.length ? parts.join(', ') : 'none';
  }

  // Sizes of the drawing (SVG user units): the block's rows from the layout, a chip
  // column per placement, a strip cell per (placement, layer).
  function geometry(model) {
    const n = Math.max(1, model.placements.length), nL = model.nLayer;
    const G = { rowH: 30, chip: 12, gap: 4, labelW: 150, padX: 36, top: 70 };
    G.boxW = G.labelW + n * (G.chip + G.gap) + 12;
    G.spine = G.padX + G.boxW / 2;
    G.rowHeights = model.layout.rows.map((r) => (r.kind === 'modules' ? r.ids.length * (G.rowH - 4) + 6 : 24));
    const blockH = G.rowHeights.reduce((a, h) => a + h + 10, 0) + 40;
    G.cellW = Math.max(10, Math.min(18, 160 / n));
    G.cellH = Math.max(6, Math.min(14, 300 / Math.max(1, nL)));
    G.stripX = G.padX + G.boxW + 90;
    G.W = G.stripX + n * G.cellW + 40;
    G.H = Math.max(blockH, nL * G.cellH + 60) + G.top;
    G.bottom = G.H - 30;
    return G;
  }

  /** Placement names, slanted, above columns starting at x0, step apart. */
  function drawHeads(svg, ps, G, x0, step) {
    ps.forEach((p, i) => {
      const x = x0 + i * step;
      svg.append(s('text', { x, y: G.top - 6, class: 'chiphead', transform: `rotate(-45 ${x} ${G.top - 6})`, text: p.name }));
    });
  }

  /** One adaptable module: its box, its name and a chip per placement (lit, ringed if a suffix trap). */
  function drawModule(g, id, by, ps, G, nL) {
    const mg = s('g', { class: 'module', dataset: { module: id } });
    mg.append(s('rect', { x: G.padX, y: by, width: G.boxW, height: G.rowH - 8, rx: 4, class: 'modbox' }));
    mg.append(s('text', { x: G.padX + 8, y: by + (G.rowH - 8) / 2 + 4, class: 'modlabel', text: id }));
    ps.forEach((p, i) => {
      const ls = p.lit.get(id) || [];
      const lit = ls.length > 0, trap = p.surprises.has(id);
      const cx = G.padX + G.labelW + i * (G.chip + G.gap), cy = by + (G.rowH - 8 - G.chip) / 2;
      const c = s('rect', { x: cx, y: cy, width: G.chip, height: G.chip, rx: 2,
        class: `chip${lit ? ' lit' : ''}${trap ? ' trap' : ''}`,
        fill: lit ? p.color : '#ffffff', stroke: trap ? '#8a5a00' : (lit ? p.color : '#b8bec9'),
        'stroke-width': trap ? 2.5 : 1, dataset: { placement: p.name, module: id, lit: lit ? 1 : 0, trap: trap ? 1 : 0 } });
      c.append(s('title', { text: lit ? `${p.name} adapts ${id} in ${ls.length} of ${nL} layers` +
        (trap ? ' — through the suffix rule' : '') : `${p.name} does not adapt ${id}` }));
      mg.append(c);
      if (trap) mg.append(s('text', { x: cx + G.chip / 2, y: by - 2, 'text-anchor': 'middle', class: 'trapmark', text: '!' }));
    });
    g.append(mg);
  }

  /** The block, from its input (bottom) to its output (top), as the residual stream reads. */
  function drawBlock(g, model, G) {
    const ps = model.placements;
    let y = G.bottom, prevTop = y + 8, lastResidual = y + 8;
    g.append(s('text', { x: G.padX, y: G.H - 10, class: 'io', text: 'input: hidden states from the layer below' }));
    model.layout.rows.forEach((r, ri) => {
      const rh = G.rowHeights[ri], top = y - rh, mid = top + rh / 2;
      g.append(s('line', { x1: G.spine, y1: prevTop, x2: G.spine, y2: y, class: 'flow' }));
      if (r.kind === 'residual') {
        g.append(s('circle', { cx: G.spine, cy: mid, r: 9, class: 'residual' }));
        g.append(s('text', { x: G.spine, y: mid + 4, 'text-anchor': 'middle', class: 'plus', text: '+' }));
        g.append(s('text', { x: G.spine + 16, y: mid + 4, class: 'oplabel', text: 'residual' }));
        // The skip connection, from where the previous residual (or the input) left the stream.
        g.append(s('path', { d: `M ${G.spine} ${lastResidual - 4} H ${G.padX - 22} V ${mid} H ${G.spine - 9}`, class: 'skip' }));
        lastResidual = top;
      } else if (r.kind === 'norm' || r.kind === 'op') {
        g.append(s('rect', { x: G.padX + 20, y: top, width: G.boxW - 40, height: rh, rx: r.kind === 'op' ? 12 : 3, class: r.kind }));
        g.append(s('text', { x: G.spine, y: mid + 4, 'text-anchor': 'middle', class: 'oplabel', text: r.label }));
      } else {
        r.ids.forEach((id, k) => drawModule(g, id, top + 3 + k * (G.rowH - 4), ps, G, model.nLayer));
        if (r.note) g.append(s('text', { x: G.padX + G.boxW + 6, y: mid + 4, class: 'note', text: r.note }));
      }
      prevTop = top;
      y = top - 10;
    });
    g.append(s('line', { x1: G.spine, y1: prevTop, x2: G.spine, y2: y + 2, class: 'flow' }));
    g.append(s('text', { x: G.padX, y: y - 2, class: 'io', text: 'output: to the next layer' }));
  }

  /** The strip of layers: a column per placement, layer 0 at the bottom as in the block. */
  function drawStrip(st, model, G) {
    const nL = model.nLayer, x0 = G.stripX;
    st.append(s('text', { x: x0 - 6, y: G.bottom - nL * G.cellH - 8, 'text-anchor': 'end', class: 'io', text: 'layer' }));
    st.append(s('text', { x: x0, y: G.bottom + 16, class: 'io', text: `${nL} layers` }));
    for (let l = 0; l < nL; l++) {
      const cy = G.bottom - (l + 1) * G.cellH;
      if (l === 0 || l === nL - 1 || nL <= 12 || l % 4 === 0) {
        st.append(s('text', { x: x0 - 6, y: cy + G.cellH - 2, 'text-anchor': 'end', class: 'layerlabel', text: String(l) }));
      }
      model.placements.forEach((p, i) => {
        const mods = [...p.lit.entries()].filter(([, ls]) => ls.includes(l)).map(([m]) => m);
        const lit = mods.length > 0;
        const c = s('rect', { x: x0 + i * G.cellW + 1, y: cy + 0.5, width: G.cellW - 2, height: G.cellH - 1,
          class: `cell${lit ? ' lit' : ''}`, fill: lit ? p.color : '#f1f3f6',
          dataset: { placement: p.name, layer: l, lit: lit ? 1 : 0, modules: mods.join(' ') } });
        c.append(s('title', { text: lit ? `${p.name}, layer ${l}: ${mods.join(', ')}` : `${p.name}, layer ${l}: nothing` }));
        st.append(c);
      });
    }
  }

  /**
   * Draws a diagramModel as an SVG element: the block on the left (each adaptable
   * module with one chip per placement, filled in the placement's colour where it
   * adapts that module in any layer, ringed where the suffix rule put it there), the
   * layers on the right (one column per placement, a filled cell where it adapts
   * anything in that layer). Every chip and cell carries data-placement, data-module
   * or data-layer, and data-lit ("1" or "0") for tests and for reading.
   */
  function drawDiagram(model) {
    const G = geometry(model), ps = model.placements;
    const svg = s('svg', { viewBox: `0 0 ${G.W} ${G.H}`, width: Math.round(G.W * 1.25), height: Math.round(G.H * 1.25),
      role: 'img', class: 'lab-diagram',
      'aria-label': `Where each placement puts adapters: one ${model.layout.title} and its ${model.nLayer} layers. ` +
        ps.map((p) => `${p.name}: ${describe(p.lit, layoutModules(model.layout), model.nLayer)}`).join('. ') });
    svg.append(s('title', { text: `${model.layout.title}: adapted modules and layers` }));
    drawHeads(svg, ps, G, G.padX + G.labelW + G.chip / 2 + 3, G.chip + G.gap);
    drawHeads(svg, ps, G, G.stripX + G.cellW / 2 + 3, G.cellW);
    const block = s('g', { class: 'block' }), strip = s('g', { class: 'strip' });
    svg.append(block, strip);
    drawBlock(block, model, G);
    drawStrip(strip, model, G);
    return svg;
  }

  /** The diagram with its legend and the suffix-trap lines, as a <div class="lab-diagram-box">. */
  function diagramFigure(entries, nLayer, arch) {
    const model = diagramModel(entries, nLayer, arch);
    const uniq = layoutModules(model.layout);
    const legend = h('ul', { class: 'lab-legend' }, model.placements.map((p) => h('li', { dataset: { placement: p.name } },
      s('svg', { width: 12, height: 12, viewBox: '0 0 12 12', 'aria-hidden': 'true', class: 'swatch' },
        s('rect', { width: 12, height: 12, rx: 2, fill: p.color })), ` ${p.name}: `,
      h('span', { class: 'touches', text: describe(p.lit, uniq, model.nLayer) }))));
    const notes = model.placements.filter((p) => p.note).map((p) => h('p', { class: 'trap-note', dataset: { placement: p.name },
      text: `⚠ ${p.note}` }));
    return h('div', { class: 'lab-diagram-box' }, h('div', { class: 'lab-diagram-scroll', tabindex: 0, role: 'region',
      'aria-label': 'diagram of the adapted modules' }, drawDiagram(model)), legend, notes);
  }

  // ---------------------------------------------------------------- line charts as SVG

  /**
   * A line chart: series [{name, color, points: [[x, y], ...]}] with axes and a legend.
   * The SVG has data-series (number of series) and each line data-name and data-points.
   */
  function lineChart(series, { xLabel, yLabel, title, width = 520, height = 240 }) {
    const L = 58, R = 12, T = 14, B = 36;
    const pts = series.flatMap((se) => se.points.filter((p) => Number.isFinite(p[1])));
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'lab-chart',
      'aria-label': title, dataset: { series: series.length } });
    svg.append(s('title', { text: title }));
    if (!pts.length) {
      svg.append(s('text', { x: 10, y: 24, class: 'io', text: 'no data' }));
      return svg;
    }
    let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
    let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    const pad = y1 - y0 < 1e-12 ? 0.5 : (y1 - y0) * 0.06;
    y0 -= pad; y1 += pad;
    const sx = (x) => L + (x - x0) / (x1 - x0) * (width - L - R);
    const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (height - T - B);
    svg.append(s('rect', { x: L, y: T, width: width - L - R, height: height - T - B, class: 'frame' }));
    for (let k = 0; k <= 4; k++) {
      const v = y0 + (k / 4) * (y1 - y0);
      svg.append(s('line', { x1: L, x2: width - R, y1: sy(v), y2: sy(v), class: 'gridline' }));
      svg.append(s('text', { x: L - 4, y: sy(v) + 4, 'text-anchor': 'end', class: 'tick', text: v.toPrecision(4) }));
    }
    svg.append(s('text', { x: L, y: height - 22, class: 'tick', text: String(+x0.toPrecision(6)) }));
    svg.append(s('text', { x: width - R, y: height - 22, 'text-anchor': 'end', class: 'tick', text: String(+x1.toPrecision(6)) }));
    svg.append(s('text', { x: (L + width - R) / 2, y: height - 22, 'text-anchor': 'middle', class: 'axis', text: xLabel }));
    svg.append(s('text', { x: 12, y: T + (height - T - B) / 2, class: 'axis', 'text-anchor': 'middle',
      transform: `rotate(-90 12 ${T + (height - T - B) / 2})`, text: yLabel }));
    series.forEach((se) => {
      const good = se.points.filter((p) => Number.isFinite(p[1]));
      const d = good.map((p, i) => `${i ? 'L' : 'M'}${sx(p[0]).toFixed(1)} ${sy(p[1]).toFixed(1)}`).join(' ');
      const line = s('path', { d, fill: 'none', stroke: se.color, 'stroke-width': 1.6, class: 'series',
        'stroke-dasharray': se.dash, dataset: { name: se.name, points: good.length, run: se.run } });
      line.append(s('title', { text: se.name }));
      svg.append(line);
      if (good.length < 40) {
        good.forEach((p) => svg.append(s('circle', { cx: sx(p[0]), cy: sy(p[1]), r: 2.2, fill: se.color })));
      }
    });
    // The legend below the plot, in as many rows as it needs (the chart grows to fit).
    let lx = L, row = 0;
    series.forEach((se) => {
      const w = 22 + 6.4 * se.name.length;
      if (lx + w > width - R && lx > L) { lx = L; row++; }
      const ly = height + row * 16;
      svg.append(s('line', { x1: lx, x2: lx + 12, y1: ly - 5, y2: ly - 5, stroke: se.color, 'stroke-width': 3, 'stroke-dasharray': se.dash ? '3 2' : undefined }));
      svg.append(s('text', { x: lx + 15, y: ly - 2, class: 'legend', text: se.name }));
      lx += w;
    });
    const fullH = height + row * 16 + 6;
    svg.setAttribute('viewBox', `0 0 ${width} ${fullH}`);
    svg.setAttribute('height', fullH);
    return svg;
  }

  /** The series key of a training: its name, with " · seed S" after the first seed. */
  function seriesName(p, doc) {
    const first = doc && Array.isArray(doc.seeds) && doc.seeds.length > 1 ? doc.seeds[0] : undefined;
    return first !== undefined && p.seed !== undefined && p.seed !== first ? `${p.name} · seed ${p.seed}` : String(p.name);
  }

  /** Colour of placement name in a document: by the order placements first appear. */
  function colorOf(doc) {
    const names = [...new Set(trainingsOf(doc).map((p) => String(p.name)))];
    return (name) => PALETTE[Math.max(0, names.indexOf(name)) % PALETTE.length];
  }

  /** Train loss per step, eval loss and perplexity per epoch of a document's trainings, as series (label prefixes their names). */
  function chartsOf(doc, label = '', color = colorOf(doc)) {
    const ps = trainingsOf(doc), pre = label ? `${label}: ` : '';
    const train = ps.map((p) => ({ name: pre + seriesName(p, doc), color: color(String(p.name)),
      points: ((p.steps && p.steps.loss) || []).map((v, i) => [i + 1, v]) }));
    const evals = ps.map((p) => ({ name: pre + seriesName(p, doc), color: color(String(p.name)),
      points: (p.evals || []).map((e) => [e.epoch, e.eval_loss]) }));
    const ppl = ps.map((p) => ({ name: pre + seriesName(p, doc), color: color(String(p.name)),
      points: (p.evals || []).map((e) => [e.epoch, e.perplexity]) }));
    return { train, evals, ppl };
  }

  /** Every seed's eval loss (dots), the mean (tick) and its 95% interval (bar) per placement, as SVG. */
  function seedChart(doc) {
    const aggs = aggregatesOf(doc), color = colorOf(doc);
    const width = 520, height = 200, L = 58, R = 12, T = 12, B = 30;
    const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'lab-chart',
      'aria-label': 'Eval loss of every seed with the mean and its 95% interval', dataset: { bands: aggs.length } });
    const ys = aggs.flatMap((a) => [...a.metrics.eval_loss.values, ...(a.metrics.eval_loss.ci95 || [])]).filter(Number.isFinite);
    if (!ys.length) return null;
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    const pad = y1 - y0 < 1e-9 ? 0.5 : (y1 - y0) * 0.15;
    y0 -= pad; y1 += pad;
    const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (height - T - B);
    const cw = (width - L - R) / aggs.length;
    svg.append(s('rect', { x: L, y: T, width: width - L - R, height: height - T - B, class: 'frame' }));
    svg.append(s('text', { x: L - 4, y: T + 10, 'text-anchor': 'end', class: 'tick', text: y1.toFixed(3) }));
    svg.append(s('text', { x: L - 4, y: height - B, 'text-anchor': 'end', class: 'tick', text: y0.toFixed(3) }));
    aggs.forEach((a, i) => {
      const m = a.metrics.eval_loss, cx = L + (i + 0.5) * cw, c = color(a.name);
      if (m.ci95) {
        svg.append(s('rect', { x: cx - 14, y: sy(m.ci95[1]), width: 28, height: Math.max(1, sy(m.ci95[0]) - sy(m.ci95[1])),
          fill: c, 'fill-opacity': 0.25, dataset: { placement: a.name, lo: m.ci95[0], hi: m.ci95[1] } }));
      }
      svg.append(s('line', { x1: cx - 16, x2: cx + 16, y1: sy(m.mean), y2: sy(m.mean), stroke: c, 'stroke-width': 2 }));
      m.values.forEach((v, k) => svg.append(s('circle', { cx: cx - 8 + (16 * k) / Math.max(1, m.values.length - 1),
        cy: sy(v), r: 3, fill: c })));
      svg.append(s('text', { x: cx, y: height - 10, 'text-anchor': 'middle', class: 'legend', text: `${a.name} (${m.n})` }));
    });
    return svg;
  }

  // ---------------------------------------------------------------- the report

  /** The results table (same rows as the page's), each number cell with data-value (and data-half). */
  function resultsTable(doc, caption) {
    const cols = columnsOf(doc), ps = cols.map((c) => c.p);
    const agg = cols.some((c) => c.agg);
    const head = h('tr', {}, h('th', { scope: 'col', text: agg ? `mean ± ½ 95% interval (${doc.seeds.length} seeds)` : 'metric' }),
      ps.map((p) => h('th', { scope: 'col', class: 'num', text: String(p.name) })));
    const rows = [];
    for (const [key, label, fmt, better] of ROWS) {
      const vals = cols.map((c) => c.value(key));
      if (vals.every((v) => v === undefined || v === null)) continue;
      const finite = vals.filter((v) => Number.isFinite(v));
      const spread = finite.length > 1 && Math.min(...finite) !== Math.max(...finite);
      const best = better && spread ? (better === 'low' ? Math.min(...finite) : Math.max(...finite)) : null;
      rows.push(h('tr', { dataset: { key } }, h('th', { scope: 'row', text: label }), vals.map((v, i) => {
        const half = cols[i].half(key), isBest = best !== null && v === best;
        const data = { value: String(v) };
        if (Number.isFinite(half)) data.half = String(half);
        return h('td', { class: isBest ? 'num best' : 'num', dataset: data },
          Number.isFinite(v) ? fmt(v, ps[i]) : '–', Number.isFinite(half) ? ` ± ${fmt(half, ps[i])}` : '', isBest ? ' ★' : '');
      })));
    }
    rows.push(h('tr', { dataset: { key: 'modules' } }, h('th', { scope: 'row', text: 'modules touched' }),
      ps.map((p) => h('td', { class: 'modules', text: String(metric(p, 'modules') ?? '') }))));
    const failed = ps.filter((p) => (p.status && p.status !== 'done') || p.message);
    if (failed.length) {
      rows.push(h('tr', { dataset: { key: 'status' } }, h('th', { scope: 'row', text: 'status' }),
        ps.map((p) => h('td', { text: [p.status || 'done', p.message].filter(Boolean).join(': ') }))));
    }
    // A region that may scroll sideways is focusable, so a keyboard can scroll it too.
    return h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': caption ? `results of ${caption}` : 'results table' },
      h('table', { class: 'grid results' },
      caption ? h('caption', { text: caption }) : null, h('thead', {}, head), h('tbody', {}, rows)));
  }

  /** One placement per name (the first seed's training), for the diagram. */
  function distinctPlacements(doc) {
    const seen = new Set();
    return trainingsOf(doc).filter((p) => !seen.has(String(p.name)) && seen.add(String(p.name)));
  }

  function dl(pairs) {
    return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v]) => [h('dt', { text: k }), h('dd', { text: String(v) })]));
  }

  function dataLine(d) {
    if (!d) return undefined;
    const name = d.name || d.path || d.source || '';
    return [name, Number.isFinite(d.records) ? `${d.records} records` : '', Number.isFinite(d.used) ? `${d.used} used` : '',
      d.sha256 ? `sha256 ${d.sha256}` : ''].filter(Boolean).join(' · ');
  }

  /** Where the trainings ran: config.device, with the WebGPU adapter when it was the GPU. */
  function deviceLine(doc) {
    const env = doc.environment || {}, gpu = env.webgpu, device = (doc.config || {}).device;
    if (device === 'webgpu' && gpu) {
      const name = [gpu.vendor, gpu.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
      return `WebGPU (${name}${gpu.emulation ? ', a CPU emulator' : ''})`;
    }
    return env.device || env.engine || (env.build ? `CPU (${env.build})` : undefined);
  }

  /** Model, data, environment and version of a results document, as [label, value] pairs. */
  function identity(doc) {
    const m = doc.model || {}, env = doc.environment || {}, d = doc.data || {};
    const dims = [m.n_layer && `${m.n_layer} layers`, m.n_embd && `d=${m.n_embd}`, m.n_head && `${m.n_head} heads`,
      Number.isFinite(m.params) && `${fmtInt(m.params)} params`, m.matrix_type].filter(Boolean).join(', ');
    return [
      ['model', [m.name || m.repo || m.path, dims && `(${dims})`].filter(Boolean).join(' ')],
      ['model commit', m.commit || m.revision],
      ['model sha256', m.sha256],
      ['train data', dataLine(d.train)],
      ['eval data', dataLine(d.eval)],
      ['build', [env.program, env.build, env.simd && `SIMD ${env.simd}`, env.compiler && `compiler ${env.compiler}`].filter(Boolean).join(' · ')],
      ['threads', env.threads],
      ['device', deviceLine(doc)],
      ['project version', env.program],
      ['results format', doc.version],
      ['run written', doc.written],
    ];
  }

  function settingsOf(doc) {
    const c = doc.config || {};
    const keys = ['r', 'alpha', 'dropout', 'rslora', 'base_dropout', 'epochs', 'batch_size', 'lr', 'schedule', 'warmup_steps',
                  'weight_decay', 'grad_clip', 'n_train', 'n_eval', 'max_len', 'response_only', 'seed', 'seeds', 'compute'];
    return keys.filter((k) => c[k] !== undefined && c[k] !== null).map((k) => [k, typeof c[k] === 'object' ? JSON.stringify(c[k]) : c[k]]);
  }

  function section(title, id, ...children) {
    return h('section', { id, 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h`, text: title }), children);
  }

  /**
   * Renders a whole report of doc (a parsed results.json) into root: identity,
   * settings, the diagram, the charts, the table with intervals and the verdicts.
   * meta: {written} (when the report was made). Throws on a document that is not a
   * loralab results.json, with a message saying so.
   */
  function renderReport(root, doc, meta = {}) {
    if (!doc || doc.format !== 'loralab-results' || !trainingsOf(doc).length) {
      throw new Error('this is not a loralab results.json (it needs "format": "loralab-results" and a "trainings" list)');
    }
    const ps = trainingsOf(doc), color = colorOf(doc);
    const model = doc.model || {};
    const charts = chartsOf(doc);
    const aggs = aggregatesOf(doc);
    const verdicts = aggs.filter((a) => a.verdict).map((a) => h('li', { text: a.verdict }));
    const entries = distinctPlacements(doc).map((p) => ({ ...p, color: color(String(p.name)) }));
    const seedSvg = seedChart(doc);
    root.replaceChildren(
      h('header', {}, h('h1', { text: `LoRA placements on ${model.name || 'a model'}` }),
        h('p', { class: 'muted', text: `${ps.length} training(s) of ${entries.length} placement(s)` +
          (Array.isArray(doc.seeds) && doc.seeds.length > 1 ? ` over ${doc.seeds.length} seeds` : '') +
          (meta.written ? ` · report written ${meta.written}` : '') })),
      section('Run', 'run', dl(identity(doc))),
      section('Settings', 'settings', dl(settingsOf(doc))),
      section('Where the adapters go', 'diagram', h('p', { class: 'muted', text: 'One transformer block and its layers. ' +
        'A filled chip: the placement adapts that module (in the layers filled on the right); a ringed chip with “!”: ' +
        'PEFT\'s suffix rule put it there.' }), diagramFigure(entries, model.n_layer)),
      section('Curves', 'curves', h('div', { class: 'charts' },
        h('figure', {}, h('figcaption', { text: 'Train loss per step' }), lineChart(charts.train, { xLabel: 'step', yLabel: 'train loss', title: 'Train loss per step' })),
        h('figure', {}, h('figcaption', { text: 'Eval loss per epoch' }), lineChart(charts.evals, { xLabel: 'epoch', yLabel: 'eval loss', title: 'Eval loss per epoch' })),
        h('figure', {}, h('figcaption', { text: 'Perplexity = exp(eval loss) per epoch' }), lineChart(charts.ppl, { xLabel: 'epoch', yLabel: 'perplexity', title: 'Perplexity per epoch' })),
        seedSvg ? h('figure', {}, h('figcaption', { text: 'Eval loss of every seed, mean and 95% t-interval' }), seedSvg) : null)),
      section('Results', 'results', resultsTable(doc),
        h('p', { class: 'muted', text: 'Perplexity is exp(eval loss) over all scored eval tokens. The mean of per-sample ' +
          'perplexities weights examples instead of tokens and exponentiates before averaging, so it is dominated by the ' +
          'worst samples and is not the model\'s perplexity. ★ marks the best value of each row.' }),
        verdicts.length ? h('ul', { class: 'verdicts' }, verdicts) : null),
      h('footer', { class: 'muted', text: `Made by LoRA Placement Lab (${doc.version || (doc.environment || {}).program || ''}). ` +
        'This file is self-contained: it needs no server and no network.' }));
  }

  /** Reads the report's embedded results and meta and renders them (the template's boot). */
  function boot(document) {
    const root = document.getElementById('report');
    try {
      const doc = JSON.parse(document.getElementById('lab-results').textContent);
      const meta = JSON.parse(document.getElementById('lab-meta').textContent);
      renderReport(root, doc, meta);
      document.title = `LoRA placements: ${(doc.model && doc.model.name) || 'report'}`;
      document.documentElement.dataset.rendered = '1';
    } catch (e) {
      root.replaceChildren(h('p', { class: 'error', role: 'alert', text: `This report cannot be shown: ${e.message}` }));
      document.documentElement.dataset.rendered = 'error';
    }
  }

  /**
   * The report file: template (web/report_template.html) with its three slots filled
   * in one pass, as src/lab/report.c fills them — results (the results.json text, every
   * "<" written \u003c so nothing in it can end its script element), meta ({"written":
   * time}) and the renderer (this file's text). Throws when a slot is not there exactly
   * once or the renderer could end its element.
   */
  function fillTemplate(template, renderer, resultsText, written) {
    if (/<\/script/i.test(renderer)) throw new Error('the report renderer contains an end tag of script: it would end its element early');
    const slots = {
      '@@LAB_RESULTS@@': resultsText.replace(/</g, '\\u003c'),
      '@@LAB_META@@': `{"written": "${written}"}`,
      '@@LAB_RENDERER@@': renderer,
    };
    for (const k of Object.keys(slots)) {
      const n = template.split(k).length - 1;
      if (n !== 1) throw new Error(`the report template has ${n} ${k} slots (needs exactly one)`);
    }
    return template.replace(/@@LAB_(?:RESULTS|META|RENDERER)@@/g, (m) => slots[m]);
  }

  root.LoraLabReport = {
    fillTemplate,
    PALETTE, ROWS, LAYOUTS, fmtInt, fmtBytes, fmtTime, metric, trainingsOf, columnsOf, aggregatesOf,
    diagramModel, drawDiagram, diagramFigure, describe, layoutModules, lineChart, chartsOf, seriesName, colorOf,
    seedChart, resultsTable, deviceLine, renderReport, boot,
  };
})(globalThis);
