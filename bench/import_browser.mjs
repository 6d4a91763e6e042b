#!/usr/bin/env node
// Model import in the page (docs/BENCHMARKS.md, "Model import"): makes DialoGPT-shaped
// checkpoints with random weights (scripts/make_checkpoint.py), serves them through the
// Hub stand-in (weights by a 302 to a second port, as the Hub does) and loads each in
// headless Chromium with a fresh profile. Per import: wall time from the click to the
// loaded model, and peak RSS of all Chromium processes (sampled every 250 ms) over the
// idle page (worker and pthreads started, no model). With --train, each large model
// then trains the page's quick preset (3 placements) and that peak is reported too.
//
//   node bench/import_browser.mjs [--dir DIR] [--cases small-st32,medium-bin16,...]
//                                 [--train] [--rounds N] [--json FILE]
//
// DIR (default /tmp/lpl-import-bench) keeps the checkpoints between runs (about 6 GB).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { open, REPO, chromiumRss } from '../tests/browser/harness.mjs';

const GB = 1024 ** 3;
const CASES = {
  'small-st32': ['small', 'st32', 'model.safetensors'],
  'medium-bin16': ['medium', 'bin16', 'pytorch_model.bin'],
  'large-bin16': ['large', 'bin16', 'pytorch_model.bin'],
  'large-st32': ['large', 'st32', 'model.safetensors'],
};

function args(argv) {
  const o = { dir: path.join(os.tmpdir(), 'lpl-import-bench'), cases: Object.keys(CASES), train: false, rounds: 1, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = () => argv[++i];
    if (a === '--dir') o.dir = path.resolve(next());
    else if (a === '--cases') o.cases = next().split(',');
    else if (a === '--train') o.train = true;
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--json') o.json = path.resolve(next());
    else if (a === '--help' || a === '-h') { console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 13).join('\n')); process.exit(0); }
    else { console.error(`import_browser: unknown option ${a}`); process.exit(2); }
  }
  for (const c of o.cases) if (!CASES[c]) { console.error(`import_browser: unknown case ${c}`); process.exit(2); }
  return o;
}

function ensureCheckpoint(dir, name) {
  const [shape, format, file] = CASES[name];
  const out = path.join(dir, 'org', name);
  if (fs.existsSync(path.join(out, file))) return out;
  console.error(`making ${name} in ${out} ...`);
  const r = spawnSync('/usr/bin/python3', [path.join(REPO, 'scripts', 'make_checkpoint.py'), '--shape', shape,
    '--format', format, '--out', out], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`make_checkpoint ${name} failed`);
  return out;
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function idleRss(h) {
  await sleep(3000);
  let idle = 0;
  for (let i = 0; i < 5; i++) { idle = Math.max(idle, chromiumRss(h.userDataDir)); await sleep(200); }
  return idle;
}

/** Runs fn while sampling Chromium's RSS; returns {result, peak, secs}. */
async function sampled(h, fn) {
  let peak = chromiumRss(h.userDataDir);
  const timer = setInterval(() => { peak = Math.max(peak, chromiumRss(h.userDataDir)); }, 250);
  const t0 = performance.now();
  try {
    const result = await fn();
    return { result, peak: Math.max(peak, chromiumRss(h.userDataDir)), secs: (performance.now() - t0) / 1000 };
  } finally {
    clearInterval(timer);
  }
}

async function importOnce(hubRoot, name, train) {
  const h = await open({ hubRoot });
  const { page } = h;
  try {
    await page.goto(`${h.url}?hub=/hub&autoload=0&quick=1&test=1`);
    await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 60000 });
    const idle = await idleRss(h);
    await page.check('input[name=model-kind][value=hub]');
    await page.fill('#hub-repo', `org/${name}`);
    const imp = await sampled(h, async () => {
      await page.click('#load-model');
      await page.waitForFunction(() => window.__lab.state.model || window.__lab.state.errors.length, null, { timeout: 1800000 });
      return page.evaluate(() => ({ model: window.__lab.state.model, errors: window.__lab.state.errors }));
    });
    if (!imp.result.model) throw new Error(`${name}: ${imp.result.errors.join('; ')}`);
    const [, , file] = CASES[name];
    const row = { case: name, checkpoint_bytes: fs.statSync(path.join(hubRoot, 'org', name, file)).size, import_s: imp.secs, idle_gb: idle / GB, peak_gb: imp.peak / GB, over_idle_gb: (imp.peak - idle) / GB,
                  params: imp.result.model.params, model_bytes: imp.result.model.file_bytes };
    if (train) {
      await page.waitForFunction(() => !document.querySelector('#load-model').disabled, null, { timeout: 600000 });
      await page.click('#load-data');
      await page.waitForFunction(() => window.__lab.state.data, null, { timeout: 60000 });
      const tr = await sampled(h, async () => {
        await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 60000 });
        await page.click('#run');
        await page.waitForFunction(() => window.__lab.state.running, null, { timeout: 30000 }).catch(() => {});
        await page.waitForFunction(() => !window.__lab.state.running, null, { timeout: 3600000 });
        return page.evaluate(() => ({ results: window.__lab.state.results, errors: window.__lab.state.errors }));
      });
      const pl = (tr.result.results && tr.result.results.trainings) || [];
      if (!pl.length || tr.result.errors.length) throw new Error(`${name} training: ${tr.result.errors.join('; ')}`);
      Object.assign(row, { train_s: tr.secs, train_peak_gb: tr.peak / GB, train_over_idle_gb: (tr.peak - idle) / GB,
                           placements: pl.map((p) => ({ name: p.name, eval_loss: p.eval_loss, tokens_per_s: p.tokens_per_s })) });
    }
    return row;
  } finally {
    await h.close();
  }
}

async function main() {
  const o = args(process.argv.slice(2));
  fs.mkdirSync(o.dir, { recursive: true });
  for (const c of o.cases) ensureCheckpoint(o.dir, c);
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const machine = `${os.cpus().length} x ${os.cpus()[0].model}, ${(os.totalmem() / GB).toFixed(0)} GB RAM, load ${os.loadavg()[0].toFixed(1)}`;
  const rows = [];
  for (let r = 0; r < o.rounds; r++) {
    for (const c of o.cases) {
      const row = await importOnce(o.dir, c, o.train && c.startsWith('large-'));
      row.round = r;
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  const doc = { commit, machine, date: new Date().toISOString(), chromium: '/usr/bin/chromium', rows };
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(doc, null, 2) + '\n');
  console.log(`\ncommit ${commit}; ${machine}\n`);
  console.log('| checkpoint | import time | peak RSS over idle | idle |');
  console.log('| --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.case} | ${r.import_s.toFixed(1)} s | +${r.over_idle_gb.toFixed(2)} GB | ${r.idle_gb.toFixed(2)} GB |`);
  for (const r of rows.filter((x) => x.train_s)) {
    console.log(`\n${r.case} quick preset: ${r.train_s.toFixed(0)} s, peak +${r.train_over_idle_gb.toFixed(2)} GB over idle; ` +
                r.placements.map((p) => `${p.name} ${p.tokens_per_s ? p.tokens_per_s.toFixed(1) + ' tok/s' : ''}`).join(', '));
  }
}

main().catch((e) => { console.error(`import_browser: ${e.message}`); process.exit(1); });
