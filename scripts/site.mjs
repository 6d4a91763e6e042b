#!/usr/bin/env node
// Writes the browser lab as a self-contained static folder that works from any static
// host, at any path (every URL in the page is relative):
//
//   DIR/index.html        the page, started by boot.js (service-worker isolation)
//   DIR/*.js, panels/     web/ as it is; coi-sw.js is the service worker
//   DIR/build-wasm/       loralab_rx.{js,wasm,worker.js} (relaxed SIMD + threads),
//                         loralab_mt.{js,wasm,worker.js} (threads), loralab_st.{js,wasm}
//   DIR/models/           the bundled model(s), .gguf (the tokenizer is inside)
//   DIR/data/             alpaca_train.json, alpaca_eval.json
//   DIR/vendor/uplot/     the charts library and its licence
//   DIR/site.json         what was written: commit, files, sizes, sha256
//
// The folder is built next to DIR and moved into place at the end, so a failure
// leaves DIR as it was. DIR must be new, empty, or an earlier output of this script.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CSP } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const GENERATOR = 'scripts/site';
const WASM_BUILD_HINT = 'build it with: NODE_PATH=/usr/share/nodejs emcmake cmake -S . -B build-wasm && ' +
  'NODE_PATH=/usr/share/nodejs cmake --build build-wasm -j2 --target loralab_rx loralab_mt loralab_st';
const WASM_FILES = ['loralab_rx.js', 'loralab_rx.wasm', 'loralab_rx.worker.js', 'loralab_mt.js', 'loralab_mt.wasm', 'loralab_mt.worker.js', 'loralab_st.js', 'loralab_st.wasm'];
const DATA_FILES = ['alpaca_train.json', 'alpaca_eval.json'];
const UPLOT_FILES = [['dist/uPlot.esm.js', 'uPlot.esm.js'], ['dist/uPlot.min.css', 'uPlot.min.css'], ['LICENSE', 'LICENSE']];
const ENTRY = '<script type="module" src="app.js"></script>';

const USAGE = `usage: scripts/site DIR [--wasm-dir D] [--model FILE.gguf]... [--data-dir D] [--quiet]

Writes the browser lab into DIR as a static site: the page, the three wasm builds
(threads and single-thread), the bundled model, the Alpaca data and the charts
library. Copy DIR to any static host (or open it from one); no server headers are
needed: where the host sends no COOP/COEP, a service worker supplies them after one
reload, and where service workers are unavailable the page runs single-threaded.

  DIR            new, empty, or written by scripts/site before (then replaced)
  --wasm-dir D   the emcc outputs (default $LPL_WASM_BUILD_DIR or build-wasm)
  --model F      a .gguf to bundle (repeatable; default every .gguf in models/);
                 the first is the page's default
  --data-dir D   folder with alpaca_train.json and alpaca_eval.json (default data/)
  --quiet        print nothing on success

Exit codes: 0 written, 1 writing failed, 2 bad usage or a missing input.
`;

class UsageError extends Error {}

/** Parses argv into options; throws UsageError on a bad command line. */
export function parseArgs(argv, env = process.env) {
  const opts = { dir: null, wasmDir: path.resolve(REPO, env.LPL_WASM_BUILD_DIR || 'build-wasm'),
                 models: [], dataDir: path.join(REPO, 'data'), quiet: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '-h' || a === '--help') opts.help = true;
    else if (a === '--wasm-dir') opts.wasmDir = path.resolve(next());
    else if (a === '--model') opts.models.push(path.resolve(next()));
    else if (a === '--data-dir') opts.dataDir = path.resolve(next());
    else if (a === '--quiet') opts.quiet = true;
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else if (opts.dir) throw new UsageError(`one output folder only (got ${opts.dir} and ${a})`);
    else opts.dir = path.resolve(a);
  }
  if (!opts.help && !opts.dir) throw new UsageError('name the output folder: scripts/site DIR');
  return opts;
}

// Every input, checked before anything is written: [[source, path inside DIR]].
function collectInputs(opts) {
  const files = [];
  const need = (src, dest, why) => {
    if (!fs.existsSync(src) || !fs.statSync(src).isFile()) throw new UsageError(`${src} is missing: ${why}`);
    files.push([src, dest]);
  };
  for (const f of WASM_FILES) need(path.join(opts.wasmDir, f), `build-wasm/${f}`, WASM_BUILD_HINT);
  if (!fs.readFileSync(path.join(opts.wasmDir, 'loralab_mt.js'), 'utf8').includes('_lab_ablate_step')) {
    throw new UsageError(`the wasm build in ${opts.wasmDir} has no lab API (lab_ablate_step): ${WASM_BUILD_HINT}`);
  }
  let models = opts.models;
  if (!models.length) {
    const dir = path.join(REPO, 'models');
    models = (fs.existsSync(dir) ? fs.readdirSync(dir) : []).filter((f) => f.endsWith('.gguf')).sort()
      .map((f) => path.join(dir, f));
    const i = models.findIndex((m) => path.basename(m) === 'lab-small.q8_0.gguf');
    if (i > 0) models.unshift(...models.splice(i, 1));
    if (!models.length) throw new UsageError('no .gguf model in models/: pass --model FILE.gguf (see models/README.md)');
  }
  const names = new Set();
  for (const m of models) {
    const name = path.basename(m);
    if (!/^[\w.-]+\.gguf$/.test(name)) throw new UsageError(`--model ${m}: the page loads models named like name.gguf (letters, digits, . _ -)`);
    if (names.has(name)) throw new UsageError(`two models named ${name}`);
    names.add(name);
    need(m, `models/${name}`, 'the model to bundle');
  }
  for (const f of DATA_FILES) need(path.join(opts.dataDir, f), `data/${f}`, 'the bundled Alpaca data');
  const uplot = path.join(REPO, 'node_modules', 'uplot');
  for (const [src, dest] of UPLOT_FILES) need(path.join(uplot, src), `vendor/uplot/${dest}`, 'the charts library (npm uplot; scripts/setup installs it)');
  for (const rel of listFiles(path.join(REPO, 'web'))) {
    if (rel === 'index.html' || rel === 'README.md') continue;
    files.push([path.join(REPO, 'web', rel), rel]);
  }
  return { files, defaultModel: path.basename(models[0]) };
}

// Relative paths of the regular files under dir, hidden names skipped.
function listFiles(dir, prefix = '') {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    const full = path.join(dir, e.name);
    const st = fs.statSync(full);
    if (st.isDirectory()) out.push(...listFiles(full, rel));
    else if (st.isFile()) out.push(rel);
  }
  return out.sort();
}

/**
 * The site's index.html from web/index.html: boot.js instead of app.js (it registers
 * the service worker first), the Content-Security-Policy of scripts/serve as a meta
 * tag (a static host sends none; frame-ancestors cannot be set that way), and the
 * first bundled model as the default.
 */
export function siteIndex(html, defaultModel) {
  if (html.split(ENTRY).length !== 2) {
    throw new Error(`web/index.html no longer contains ${ENTRY} exactly once: update scripts/site`);
  }
  const csp = CSP.split('; ').filter((d) => !d.startsWith('frame-ancestors')).join('; ');
  const charset = '<meta charset="utf-8">';
  if (!html.includes(charset)) throw new Error(`web/index.html has no ${charset}: update scripts/site`);
  return html
    .replace(charset, `${charset}\n<meta http-equiv="Content-Security-Policy" content="${csp}">`)
    .replace(ENTRY, '<script src="boot.js"></script>')
    .replace(/(id="model-bundled" type="text" value=")[^"]*"/, `$1${defaultModel}"`);
}

function sha256File(file) {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally { fs.closeSync(fd); }
  return h.digest('hex');
}

function gitCommit() {
  const r = spawnSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const dirty = spawnSync('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' });
  return r.stdout.trim() + (dirty.stdout && dirty.stdout.trim() ? '+changes' : '');
}

// DIR may be replaced only if it is empty or was written by this script.
function checkTarget(dir) {
  if (!fs.existsSync(dir)) return 'new';
  if (!fs.statSync(dir).isDirectory()) throw new UsageError(`${dir} exists and is not a folder`);
  if (fs.readdirSync(dir).length === 0) return 'empty';
  const manifest = path.join(dir, 'site.json');
  let ok = false;
  try { ok = JSON.parse(fs.readFileSync(manifest, 'utf8')).generator === GENERATOR; } catch { ok = false; }
  if (!ok) throw new UsageError(`${dir} is not empty and was not written by scripts/site: choose a new or empty folder`);
  return 'site';
}

/** Writes the site into opts.dir; returns the manifest. Throws on failure. */
export function writeSite(opts) {
  const target = checkTarget(opts.dir);
  const { files, defaultModel } = collectInputs(opts);
  const index = siteIndex(fs.readFileSync(path.join(REPO, 'web', 'index.html'), 'utf8'), defaultModel);
  fs.mkdirSync(path.dirname(opts.dir), { recursive: true });
  const tmp = fs.mkdtempSync(`${opts.dir}.tmp-`);
  try {
    const manifest = { generator: GENERATOR, commit: gitCommit(), created: new Date().toISOString(),
                       default_model: defaultModel, files: [] };
    const add = (rel, bytes) => manifest.files.push({ path: rel, bytes, sha256: sha256File(path.join(tmp, rel)) });
    fs.writeFileSync(path.join(tmp, 'index.html'), index);
    add('index.html', Buffer.byteLength(index));
    for (const [src, rel] of files) {
      fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
      fs.copyFileSync(src, path.join(tmp, rel));
      add(rel, fs.statSync(path.join(tmp, rel)).size);
    }
    manifest.files.sort((a, b) => a.path.localeCompare(b.path));
    fs.writeFileSync(path.join(tmp, 'site.json'), JSON.stringify(manifest, null, 2) + '\n');
    // Swap in: the old site (if any) is removed only once the new one is in place.
    const old = target === 'site' ? `${tmp}.old` : null;
    if (old) fs.renameSync(opts.dir, old);
    else if (target === 'empty') fs.rmdirSync(opts.dir);
    fs.renameSync(tmp, opts.dir);
    if (old) fs.rmSync(old, { recursive: true, force: true });
    return manifest;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

function main() {
  let opts;
  try { opts = parseArgs(process.argv.slice(2)); } catch (e) {
    process.stderr.write(`site: ${e.message}\n${e instanceof UsageError ? 'try: scripts/site --help\n' : ''}`);
    process.exit(2);
  }
  if (opts.help) { process.stdout.write(USAGE); return; }
  let manifest;
  try { manifest = writeSite(opts); } catch (e) {
    process.stderr.write(`site: ${e.message}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  }
  if (opts.quiet) return;
  const total = manifest.files.reduce((n, f) => n + f.bytes, 0);
  process.stdout.write(`site: wrote ${opts.dir}: ${manifest.files.length} files, ${(total / 1e6).toFixed(1)} MB ` +
    `(default model ${manifest.default_model}). Copy it to any static host; see README.md "Deploying the lab".\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
