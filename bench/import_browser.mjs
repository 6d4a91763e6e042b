#!/usr/bin/env node
// Model import in the page (docs/BENCHMARKS.md, "Model import"): makes checkpoints with
// random weights (scripts/make_checkpoint.py) in the layout of the Hub's files, serves
// them through the Hub stand-in (weights by a 302 to a second port, as the Hub does) and
// loads each in headless Chromium with a fresh profile. Per import: wall time from the
// click to the loaded model, and the peaks of all Chromium processes' summed RSS and
// summed PSS (/proc/PID/smaps_rollup; shared pages counted once), sampled every 250 ms,
// over the idle page (worker and pthreads started, no model). With --train, the large
// DialoGPT models then train the page's quick preset (its 3 ticked placements) and the
// SmolLM2 one the quick study with the four Llama placements (all-linear, attn, mlp,
// qv), and those peaks are reported too, with each placement's eval loss, tokens/s and
// its own peak over the idle page.
//
// Cases: small-st32, medium-bin16, medium-bin16zip, large-bin16, large-bin16zip,
// large-st32 (DialoGPT shapes; bin16: torch's legacy stream, bin16zip: torch.save's zip,
// st32: fp32 safetensors) and smollm2-135m-bf16 (SmolLM2-135M's shape, bf16 safetensors,
// tokenizer.json from scripts/make_test_tokenizers.mjs).
//
//   node bench/import_browser.mjs [--dir DIR] [--cases small-st32,medium-bin16,...]
//                                 [--train] [--rounds N] [--layers N] [--json FILE]
//
// DIR (default /tmp/lpl-import-bench) keeps the checkpoints between runs (about 9 GB
// for all cases). --layers N makes and loads N-layer variants of the shapes (folders
// CASE-lN), to try the script quickly; their numbers are not the shapes'.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { open, REPO, chromiumMemory, choosePlacements } from '../tests/browser/harness.mjs';
import { corpus, writeTokenizers } from '../scripts/make_test_tokenizers.mjs';

const GB = 1024 ** 3;
// case: [make_checkpoint.py --shape, --format, weights file, trained with --train]
const CASES = {
  'small-st32': ['small', 'st32', 'model.safetensors', false],
  'medium-bin16': ['medium', 'bin16', 'pytorch_model.bin', false],
  'medium-bin16zip': ['medium', 'bin16-zip', 'pytorch_model.bin', false],
  'large-bin16': ['large', 'bin16', 'pytorch_model.bin', true],
  'large-bin16zip': ['large', 'bin16-zip', 'pytorch_model.bin', true],
  'large-st32': ['large', 'st32', 'model.safetensors', true],
  'smollm2-135m-bf16': ['smollm2-135m', 'stbf16', 'model.safetensors', true],
};
// The Llama family's quick study: PEFT's four usual placements (web/state.js LLAMA_STUDY).
const LLAMA_PLACEMENTS = ['all-linear', 'attn', 'mlp', 'qv'];

function args(argv) {
  const o = { dir: path.join(os.tmpdir(), 'lpl-import-bench'), cases: Object.keys(CASES), train: false, rounds: 1, layers: 0,
             json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = () => argv[++i];
    if (a === '--dir') o.dir = path.resolve(next());
    else if (a === '--cases') o.cases = next().split(',');
    else if (a === '--train') o.train = true;
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--layers') o.layers = Number(next());
    else if (a === '--json') o.json = path.resolve(next());
    else if (a === '--help' || a === '-h') { console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 24).join('\n')); process.exit(0); }
    else { console.error(`import_browser: unknown option ${a}`); process.exit(2); }
  }
  for (const c of o.cases) if (!CASES[c]) { console.error(`import_browser: unknown case ${c}`); process.exit(2); }
  return o;
}

/** The Hub repo name of a case: CASE, or CASE-lN for --layers N. */
const repoOf = (name, layers) => (layers ? `${name}-l${layers}` : name);

function ensureCheckpoint(dir, name, layers) {
  const [shape, format, file] = CASES[name];
  const out = path.join(dir, 'org', repoOf(name, layers));
  if (fs.existsSync(path.join(out, file))) return out;
  console.error(`making ${repoOf(name, layers)} in ${out} ...`);
  const extra = layers ? ['--layers', String(layers)] : [];
  if (format === 'stbf16') {
    // SmolLM2's Hub folder has tokenizer.json, no vocab.json / merges.txt
    const [tok] = writeTokenizers(path.join(dir, 'tokenizers'), ['smollm2'], { text: corpus().slice(0, 200000), merges: 200 });
    extra.push('--tokenizer', tok);
  }
  const r = spawnSync('/usr/bin/python3', [path.join(REPO, 'scripts', 'make_checkpoint.py'), '--shape', shape,
    '--format', format, '--out', out, ...extra], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`make_checkpoint ${name} failed`);
  return out;
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const maxMem = (a, b) => ({ rss: Math.max(a.rss, b.rss), pss: Math.max(a.pss, b.pss) });

/** The idle page's RSS and PSS ({rss, pss}, bytes): the largest of 5 samples after 3 s. */
async function idleMemory(h) {
  await sleep(3000);
  let idle = { rss: 0, pss: 0 };
  for (let i = 0; i < 5; i++) { idle = maxMem(idle, chromiumMemory(h.userDataDir)); await sleep(200); }
  return idle;
}

/**
 * Runs fn while sampling Chromium's RSS and PSS every 250 ms; returns {result, peak,
 * secs, byLabel}. labelOf (optional, async) names what runs now, asked every 500 ms;
 * byLabel holds each name's peak ({rss, pss}) over the samples taken while it ran.
 */
async function sampled(h, fn, labelOf = null) {
  let peak = chromiumMemory(h.userDataDir), label = null, polling = !!labelOf;
  const byLabel = {};
  const note = () => {
    const m = chromiumMemory(h.userDataDir);
    peak = maxMem(peak, m);
    if (label != null) byLabel[label] = maxMem(byLabel[label] || m, m);
  };
  const timer = setInterval(note, 250);
  const poll = (async () => {
    while (polling) {
      label = await labelOf().catch(() => label);
      await sleep(500);
    }
  })();
  const t0 = performance.now();
  try {
    const result = await fn();
    note();
    return { result, peak, secs: (performance.now() - t0) / 1000, byLabel };
  } finally {
    clearInterval(timer);
    polling = false;
    await poll;
  }
}

/** The placement the page's run trains now (the highest training index that reported a step), or null. */
function currentPlacement() {
  const r = window.__lab.state.run;
  if (!r || !r.names || !r.done) return null;
  const ks = Object.keys(r.done).map(Number);
  return ks.length ? r.names[Math.max(...ks) % r.names.length] : null;
}

async function importOnce(hubRoot, name, train, layers) {
  const h = await open({ hubRoot });
  const { page } = h;
  const [, format, file] = CASES[name];
  const llama = format === 'stbf16';
  const gb = (m, idle) => ({ rss: (m.rss - idle.rss) / GB, pss: (m.pss - idle.pss) / GB });
  try {
    await page.goto(`${h.url}?hub=/hub&autoload=0&quick=1&test=1`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 60000 });
    const idle = await idleMemory(h);
    await page.check('input[name=model-kind][value=hub]');
    await page.fill('#hub-repo', `org/${repoOf(name, layers)}`);
    const imp = await sampled(h, async () => {
      await page.click('#load-model');
      await page.waitForFunction(() => window.__lab.state.model || window.__lab.state.errors.length, null, { timeout: 1800000 });
      return page.evaluate(() => ({ model: window.__lab.state.model, errors: window.__lab.state.errors }));
    });
    if (!imp.result.model) throw new Error(`${name}: ${imp.result.errors.join('; ')}`);
    const over = gb(imp.peak, idle);
    const row = { case: name, checkpoint_bytes: fs.statSync(path.join(hubRoot, 'org', repoOf(name, layers), file)).size,
                  import_s: imp.secs, idle_gb: idle.rss / GB, peak_gb: imp.peak.rss / GB, over_idle_gb: over.rss,
                  idle_pss_gb: idle.pss / GB, peak_pss_gb: imp.peak.pss / GB, over_idle_pss_gb: over.pss,
                  params: imp.result.model.params, model_bytes: imp.result.model.file_bytes, arch: imp.result.model.arch };
    if (layers) row.layers = layers;
    if (train) {
      await page.waitForFunction(() => !document.querySelector('#load-model').disabled, null, { timeout: 600000 });
      await page.click('#load-data');
      await page.waitForFunction(() => window.__lab.state.data, null, { timeout: 60000 });
      // A Llama model switches the placements to the Llama presets with the four ticked;
      // tick exactly those, so the run trains all four whatever the page's defaults become.
      if (llama) await choosePlacements(page, LLAMA_PLACEMENTS);
      const tr = await sampled(h, async () => {
        await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 60000 });
        await page.click('#run');
        await page.waitForFunction(() => window.__lab.state.running, null, { timeout: 30000 }).catch(() => {});
        await page.waitForFunction(() => !window.__lab.state.running, null, { timeout: 3600000 });
        return page.evaluate(() => ({ results: window.__lab.state.results, errors: window.__lab.state.errors }));
      }, () => page.evaluate(currentPlacement));
      const pl = (tr.result.results && tr.result.results.trainings) || [];
      if (!pl.length || tr.result.errors.length) throw new Error(`${name} training: ${tr.result.errors.join('; ')}`);
      if (llama && pl.map((p) => p.name).join() !== LLAMA_PLACEMENTS.join())
        throw new Error(`${name} trained ${pl.map((p) => p.name).join(', ')}, not ${LLAMA_PLACEMENTS.join(', ')}`);
      const tover = gb(tr.peak, idle);
      Object.assign(row, { train_s: tr.secs, train_peak_gb: tr.peak.rss / GB, train_over_idle_gb: tover.rss,
                           train_peak_pss_gb: tr.peak.pss / GB, train_over_idle_pss_gb: tover.pss,
                           placements: pl.map((p) => {
                             const m = tr.byLabel[p.name], o = m && gb(m, idle);
                             return { name: p.name, status: p.status, eval_loss: p.eval_loss, tokens_per_s: p.tokens_per_s,
                                      over_idle_gb: o ? o.rss : null, over_idle_pss_gb: o ? o.pss : null };
                           }) });
    }
    return row;
  } finally {
    await h.close();
  }
}

async function main() {
  const o = args(process.argv.slice(2));
  fs.mkdirSync(o.dir, { recursive: true });
  for (const c of o.cases) ensureCheckpoint(o.dir, c, o.layers);
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const machine = `${os.cpus().length} x ${os.cpus()[0].model}, ${(os.totalmem() / GB).toFixed(0)} GB RAM, load ${os.loadavg()[0].toFixed(1)}`;
  const rows = [];
  for (let r = 0; r < o.rounds; r++) {
    for (const c of o.cases) {
      const row = await importOnce(o.dir, c, o.train && CASES[c][3], o.layers);
      row.round = r;
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  const doc = { commit, machine, date: new Date().toISOString(), chromium: '/usr/bin/chromium', rows };
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(doc, null, 2) + '\n');
  console.log(`\ncommit ${commit}; ${machine}\n`);
  const f = (x) => (x == null ? '-' : `+${x.toFixed(2)} GB`);
  console.log('| checkpoint | import time | peak RSS over idle | peak PSS over idle | idle RSS / PSS |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${repoOf(r.case, r.layers)} | ${r.import_s.toFixed(1)} s | ${f(r.over_idle_gb)} | ${f(r.over_idle_pss_gb)} | ` +
                `${r.idle_gb.toFixed(2)} / ${r.idle_pss_gb.toFixed(2)} GB |`);
  }
  for (const r of rows.filter((x) => x.train_s)) {
    console.log(`\n${repoOf(r.case, r.layers)} quick preset: ${r.train_s.toFixed(0)} s, peak ${f(r.train_over_idle_gb)} RSS, ` +
                `${f(r.train_over_idle_pss_gb)} PSS over idle; ` +
                r.placements.map((p) => `${p.name} eval loss ${p.eval_loss != null ? p.eval_loss.toFixed(3) : '-'}, ` +
                                        `${p.tokens_per_s ? p.tokens_per_s.toFixed(1) : '-'} tok/s, ${f(p.over_idle_gb)} RSS ` +
                                        `${f(p.over_idle_pss_gb)} PSS`).join('; '));
  }
}

main().catch((e) => { console.error(`import_browser: ${e.message}`); process.exit(1); });
