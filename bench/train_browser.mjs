#!/usr/bin/env node
// Training speed in the page (docs/BENCHMARKS.md, "Training in Chromium"): the lab page
// in headless Chromium (the threaded wasm build in its Web Worker) trains the same short
// run on a DialoGPT-medium-shaped Q8_0 model with compute int8 and with compute f32,
// alternately for several rounds in one browser session, and reports each run's
// tokens/s (the engine's own figure: training tokens over training-step seconds, eval
// excluded), the median and spread per compute, and the int8/f32 ratio per round.
//
//   node bench/train_browser.mjs [--dir DIR] [--shape medium] [--rounds N] [--n-train N]
//                                [--max-len N] [--placement NAME] [--json FILE]
//                                [--wasm relaxed|simd128]  (the page's ?wasm=: which threaded build)
//
// DIR (default /tmp/lpl-train-bench) keeps the generated checkpoint (random weights,
// scripts/make_checkpoint.py) and its Q8_0 GGUF (`loralab convert`, from
// $LPL_BUILD_DIR or build/) between runs; they are never committed. The wasm build is
// $LPL_WASM_BUILD_DIR or build-wasm/ (loralab_mt, loralab_st).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { REPO, openLab, setHp, choosePlacements, runToEnd } from '../tests/browser/harness.mjs';

const TARGET = 1.4;

function usage() {
  console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 15)
    .map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
}

function args(argv) {
  const o = { dir: path.join(os.tmpdir(), 'lpl-train-bench'), shape: 'medium', rounds: 5, nTrain: 8, maxLen: 128,
              placement: 'baseline', json: null, wasm: '' };
  const int = (a, v, lo) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < lo) { console.error(`train_browser: ${a} needs an integer >= ${lo}, got '${v}'`); process.exit(2); }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = () => {
      if (i + 1 >= argv.length) { console.error(`train_browser: ${a} needs a value`); process.exit(2); }
      return argv[++i];
    };
    if (a === '--dir') o.dir = path.resolve(next());
    else if (a === '--shape') o.shape = next();
    else if (a === '--rounds') o.rounds = int(a, next(), 1);
    else if (a === '--n-train') o.nTrain = int(a, next(), 1);
    else if (a === '--max-len') o.maxLen = int(a, next(), 8);
    else if (a === '--placement') o.placement = next();
    else if (a === '--json') o.json = path.resolve(next());
    else if (a === '--wasm') o.wasm = next();
    else if (a === '--help' || a === '-h') { usage(); process.exit(0); }
    else { console.error(`train_browser: unknown option ${a} (see --help)`); process.exit(2); }
  }
  if (o.wasm && !['relaxed', 'simd128'].includes(o.wasm)) {
    console.error(`train_browser: --wasm must be relaxed or simd128, got '${o.wasm}'`);
    process.exit(2);
  }
  if (!['small', 'medium', 'large'].includes(o.shape)) {
    console.error(`train_browser: --shape must be small, medium or large, got '${o.shape}'`);
    process.exit(2);
  }
  return o;
}

const log = (m) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

/** The Q8_0 GGUF of a random-weight checkpoint of the shape, made once in dir. */
function ensureModel(dir, shape) {
  const file = `dialogpt-${shape}-shape.q8_0.gguf`;
  if (fs.existsSync(path.join(dir, file))) return { dir, file };
  const ck = path.join(dir, `${shape}-bin16`);
  if (!fs.existsSync(path.join(ck, 'pytorch_model.bin'))) {
    log(`making a ${shape}-shaped checkpoint in ${ck} ...`);
    const r = spawnSync('/usr/bin/python3', [path.join(REPO, 'scripts', 'make_checkpoint.py'), '--shape', shape,
      '--format', 'bin16', '--out', ck], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('make_checkpoint.py failed');
  }
  const exe = path.join(path.resolve(REPO, process.env.LPL_BUILD_DIR || 'build'), 'loralab');
  if (!fs.existsSync(exe)) throw new Error(`${exe} not built (needed to convert the checkpoint)`);
  log(`converting to ${file} ...`);
  const tmp = path.join(dir, `${file}.part`);
  const r = spawnSync(exe, ['convert', '--from', ck, '--to', tmp, '--type', 'q8_0', '--quiet'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('loralab convert failed');
  fs.renameSync(tmp, path.join(dir, file));
  return { dir, file };
}

/** One run of the page with the given compute; returns the placement's figures. */
async function trainOnce(page, o, compute) {
  await page.selectOption('[data-hp="compute"]', compute);
  await runToEnd(page, 3600000);
  const r = await page.evaluate(() => ({ results: window.__lab.state.results, errors: window.__lab.state.errors }));
  if (r.errors.length) throw new Error(`compute ${compute}: ${r.errors.join('; ')}`);
  const p = r.results && r.results.trainings && r.results.trainings[0];
  if (!p || !(p.tokens_per_s > 0)) throw new Error(`compute ${compute}: the run left no placement result`);
  if (r.results.config.compute !== compute) {
    throw new Error(`asked for compute ${compute}, results.json says ${r.results.config.compute}`);
  }
  const t = p.timings || {};
  return { compute, tokens_per_s: p.tokens_per_s, train_tokens: p.train_tokens, train_s: p.train_seconds,
           step_s: t.total, base_products_s: t.base_products,
           eval_loss: p.eval_loss, threads: r.results.environment && r.results.environment.threads };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b), n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const spread = (xs) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;

async function main() {
  const o = args(process.argv.slice(2));
  fs.mkdirSync(o.dir, { recursive: true });
  const model = ensureModel(o.dir, o.shape);
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const chromium = execFileSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8' }).trim();
  const load0 = os.loadavg()[0];
  log(`opening the page on ${model.file}`);
  const h = await openLab(model, {}, o.wasm ? `&wasm=${o.wasm}` : '');
  const rows = [];
  let build = null;
  try {
    const { page } = h;
    await page.waitForFunction(() => { const s = window.__lab.state; return (s.model && s.data) || s.errors.length; },
                               null, { timeout: 1800000 });
    const errors = await page.evaluate(() => window.__lab.state.errors);
    if (errors.length) throw new Error(`loading: ${errors.join('; ')}`);
    build = await page.evaluate(() => window.__lab.state.engine.build);
    log(`wasm build: ${build}`);
    await setHp(page, { n_train: o.nTrain, n_eval: 1, epochs: 1, max_len: o.maxLen, seeds: 1 });
    await choosePlacements(page, [o.placement]);
    for (let round = 1; round <= o.rounds; round++) {
      // alternate which compute goes first, so that neither always meets a warmer machine
      const order = round % 2 ? ['int8', 'f32'] : ['f32', 'int8'];
      for (const c of order) {
        log(`round ${round}/${o.rounds}: compute ${c} (load ${os.loadavg()[0].toFixed(2)})`);
        const row = { round, load: os.loadavg()[0], ...(await trainOnce(page, o, c)) };
        rows.push(row);
        console.log(JSON.stringify(row));
      }
    }
  } finally {
    await h.close();
  }
  const tps = (c) => rows.filter((r) => r.compute === c).map((r) => r.tokens_per_s);
  /** fn(int8 row, f32 row) for each round. */
  const perRound = (fn) => {
    const out = [];
    for (let round = 1; round <= o.rounds; round++) {
      const q = rows.find((x) => x.round === round && x.compute === 'int8'), f = rows.find((x) => x.round === round && x.compute === 'f32');
      out.push(fn(q, f));
    }
    return out;
  };
  const ratios = perRound((q, f) => q.tokens_per_s / f.tokens_per_s);
  const ratio = median(ratios);
  // What caps the ratio (docs/BENCHMARKS.md, "int8 against f32 in wasm: the ceiling"), from the
  // engine's own timers in the page: f, the base products' share of the f32 step, and r, their
  // int8/f32 speed; the step ratio is 1/((1-f)+f/r), so it can never exceed r.
  const shares = perRound((q, f) => f.base_products_s / f.step_s);
  const speeds = perRound((q, f) => f.base_products_s / q.base_products_s);
  const ceiling = { f: median(shares), r: median(speeds), f_rounds: shares, r_rounds: speeds };
  const doc = {
    commit, chromium, build, date: new Date().toISOString(), load_before: load0, load_after: os.loadavg()[0],
    machine: `${os.cpus()[0].model}, ${os.cpus().length} vCPU`, model: model.file, threads: rows[0].threads,
    settings: { placement: o.placement, n_train: o.nTrain, max_len: o.maxLen, epochs: 1, batch_size: 1 },
    rows, median_tokens_per_s: { int8: median(tps('int8')), f32: median(tps('f32')) }, ratios, median_ratio: ratio,
    ceiling, target: TARGET, met: ratio >= TARGET,
  };
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(doc, null, 2) + '\n');
  console.log(`\n| compute | tokens/s, median | spread (${o.rounds} rounds) |\n| --- | ---: | ---: |`);
  for (const c of ['int8', 'f32']) console.log(`| ${c} | ${median(tps(c)).toFixed(1)} | ${spread(tps(c))} |`);
  console.log(`\nint8 / f32: median ${ratio.toFixed(2)}x (rounds ${ratios.map((x) => x.toFixed(2)).join(', ')}); ` +
              `target >= ${TARGET}x: ${doc.met ? 'met' : 'not met'}`);
  const fr = ceiling.f, rr = ceiling.r;
  console.log(`base products: ${(100 * fr).toFixed(0)}% of the f32 step (f), int8/f32 speed ${rr.toFixed(2)}x (r, rounds ` +
              `${speeds.map((x) => x.toFixed(2)).join(', ')}); 1/((1-f)+f/r) = ${(1 / ((1 - fr) + fr / rr)).toFixed(2)}x`);
}

main().catch((e) => { console.error(`train_browser: ${e.message}`); process.exit(1); });
