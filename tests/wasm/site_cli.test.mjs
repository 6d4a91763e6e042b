// scripts/site as a command: --help, bad usage, a missing wasm build (with how to
// build it), a folder it must not overwrite, and replacing its own earlier output.
// Uses a stand-in wasm folder (files with the lab API's export name), so it needs no
// emscripten build; tests/browser/site.test.mjs runs the real one in Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './serve_harness.mjs';

let tmp, wasm, model;

function site(...args) {
  return spawnSync(path.join(REPO, 'scripts', 'site'), args, { encoding: 'utf8' });
}

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-site-cli-'));
  wasm = path.join(tmp, 'wasm');
  fs.mkdirSync(wasm);
  for (const f of ['loralab_rx.js', 'loralab_rx.wasm', 'loralab_rx.worker.js', 'loralab_mt.js', 'loralab_mt.wasm',
                   'loralab_mt.worker.js', 'loralab_st.js', 'loralab_st.wasm']) {
    fs.writeFileSync(path.join(wasm, f), `/* ${f} */ Module["_lab_ablate_step"]`);
  }
  model = path.join(tmp, 'm.q8_0.gguf');
  fs.writeFileSync(model, 'GGUF-stand-in');
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('--help prints the usage and exits 0', () => {
  const r = site('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^usage: scripts\/site DIR/);
  assert.match(r.stdout, /service worker/);
});

test('bad usage exits 2 with a message', () => {
  for (const [args, msg] of [[[], /name the output folder/], [['--bogus', 'x'], /unknown option --bogus/],
                             [['a', 'b'], /one output folder only/], [['x', '--model'], /--model needs a value/]]) {
    const r = site(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, msg);
  }
});

test('a missing wasm build is named, with how to build it; nothing is written', () => {
  const out = path.join(tmp, 'no-wasm');
  const r = site(out, '--wasm-dir', path.join(tmp, 'nowhere'), '--model', model);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /nowhere\/loralab_rx\.js is missing: build it with: .*emcmake cmake -S \. -B build-wasm.*--target loralab_rx loralab_mt loralab_st/);
  assert.equal(fs.existsSync(out), false);
  const partial = path.join(tmp, 'partial');
  fs.mkdirSync(partial);
  for (const f of ['loralab_rx.js', 'loralab_rx.wasm', 'loralab_rx.worker.js', 'loralab_mt.js'])
    fs.copyFileSync(path.join(wasm, f), path.join(partial, f));
  const r2 = site(out, '--wasm-dir', partial, '--model', model);
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /loralab_mt\.wasm is missing/);
  const bad = path.join(tmp, 'bad-model.bin');
  fs.writeFileSync(bad, 'x');
  assert.match(site(out, '--wasm-dir', wasm, '--model', path.join(tmp, 'none.gguf')).stderr, /none\.gguf is missing/);
  assert.match(site(out, '--wasm-dir', wasm, '--model', bad).stderr, /loads models named like name\.gguf/);
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.startsWith('no-wasm')), []);
});

test('writes the site, replaces its own output, refuses a folder it did not write', () => {
  const out = path.join(tmp, 'out');
  const r = site(out, '--wasm-dir', wasm, '--model', model);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /site: wrote .*out: \d+ files/);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'site.json'), 'utf8'));
  assert.equal(manifest.generator, 'scripts/site');
  assert.equal(manifest.default_model, 'm.q8_0.gguf');
  assert.match(fs.readFileSync(path.join(out, 'index.html'), 'utf8'), /id="model-bundled" type="text" value="m\.q8_0\.gguf"/);
  for (const f of manifest.files) assert.ok(fs.existsSync(path.join(out, f.path)), f.path);
  assert.ok(fs.existsSync(path.join(out, 'build-wasm', 'loralab_mt.worker.js')));

  fs.writeFileSync(path.join(out, 'stale.txt'), 'from an older build');
  assert.equal(site(out, '--wasm-dir', wasm, '--model', model, '--quiet').status, 0);
  assert.equal(fs.existsSync(path.join(out, 'stale.txt')), false, 'an earlier output is replaced whole');
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.startsWith('out.')), [], 'no temporary folder left');

  const mine = path.join(tmp, 'mine');
  fs.mkdirSync(mine);
  fs.writeFileSync(path.join(mine, 'notes.txt'), 'keep me');
  const r3 = site(mine, '--wasm-dir', wasm, '--model', model);
  assert.equal(r3.status, 2);
  assert.match(r3.stderr, /mine is not empty and was not written by scripts\/site/);
  assert.deepEqual(fs.readdirSync(mine), ['notes.txt']);
  assert.equal(fs.readFileSync(path.join(mine, 'notes.txt'), 'utf8'), 'keep me');
});
