// The page imports a Llama-family repo from the Hub stand-in (scripts/serve --hub-root)
// as the Hub lays SmolLM2's out: config.json, a bf16 model.safetensors,
// tokenizer.json and tokenizer_config.json, no vocab.json or merges.txt (a tiny
// random checkpoint, tests/llama_ref.py, with a SmolLM2-style tokenizer made by
// scripts/make_test_tokenizers.mjs). The placements switch to the Llama presets
// (all-linear, attn, mlp, qv ticked) and the quick study trains all four.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, REPO, wasmHasApi } from './harness.mjs';
import { corpus, writeTokenizers } from '../../scripts/make_test_tokenizers.mjs';

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const SKIP = !wasmHasApi() ? 'the wasm build has no lab API yet (src/wasm/api.c)'
  : !hasTorch ? 'python3-torch is missing (tests/llama_ref.py)' : false;

let tmp, hubRoot;
before(() => {
  if (SKIP) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-hub-llama-'));
  hubRoot = path.join(tmp, 'hub');
  const [tok] = writeTokenizers(path.join(tmp, 'tok'), ['smollm2'], { text: corpus().slice(0, 200000), merges: 200 });
  const dst = path.join(hubRoot, 'org', 'tiny-smollm2');
  const r = spawnSync('/usr/bin/python3', ['tests/llama_ref.py', '--arch', 'llama', '--dtype', 'bf16', '--vocab', '512',
    '--tokenizer', tok, '--out', dst], { cwd: REPO });
  assert.equal(r.status, 0, r.stderr.toString());
  fs.rmSync(path.join(dst, 'ref.safetensors'));
});
after(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

test('Hub import of a Llama-family repo with tokenizer.json; the quick study trains the four placements',
  { timeout: 300000, skip: SKIP }, async () => {
    const h = await open({ hubRoot });
    const { page } = h;
    try {
      await page.goto(`${h.url}?hub=/hub&autoload=0&test=1&quick=1`);
      await page.waitForFunction(() => window.__lab && window.__lab.ready, null, { timeout: 30000 });
      const before = await page.$$eval('#presets input[type=checkbox]', (els) => els.map((e) => e.value));
      assert.ok(before.includes('baseline') && !before.includes('qv'), `GPT-2 presets first: ${before}`);
      await page.check('input[name=model-kind][value=hub]');
      await page.fill('#hub-repo', 'org/tiny-smollm2');
      await page.fill('#hub-rev', 'main');
      await page.click('#load-model');
      await page.waitForFunction(() => window.__lab.state.model || window.__lab.state.errors.length, null, { timeout: 60000 });
      assert.deepEqual(await page.evaluate(() => window.__lab.state.errors), []);
      const model = await page.evaluate(() => window.__lab.state.model);
      assert.equal(model.arch, 'llama');
      assert.equal(model.n_vocab, 512);
      assert.match(await page.textContent('#model-status'), /converted from model\.safetensors/);
      const ticked = await page.$$eval('#presets input[type=checkbox]', (els) => els.filter((e) => e.checked).map((e) => e.value));
      assert.deepEqual(ticked, ['all-linear', 'attn', 'mlp', 'qv']);
      await page.waitForFunction(() => window.__lab.state.counts.length === 4, null, { timeout: 20000 });

      await page.click('#load-data');
      await page.waitForFunction(() => window.__lab.state.data || window.__lab.state.errors.length, null, { timeout: 60000 });
      for (const [k, v] of Object.entries({ seeds: 1, n_train: 4, n_eval: 2, epochs: 1, max_len: 40 }))
        await page.fill(`[data-hp="${k}"]`, String(v));
      await page.waitForFunction(() => !document.querySelector('#run').disabled, null, { timeout: 20000 });
      await page.click('#run');
      await page.waitForFunction(() => window.__lab.state.running, null, { timeout: 10000 }).catch(() => {});
      await page.waitForFunction(() => !window.__lab.state.running, null, { timeout: 240000 });
      assert.deepEqual(await page.evaluate(() => window.__lab.state.errors), []);
      const doc = JSON.parse(await page.evaluate(() => window.__lab.state.resultsJson));
      assert.deepEqual(doc.trainings.map((p) => [p.name, p.status]),
        [['all-linear', 'done'], ['attn', 'done'], ['mlp', 'done'], ['qv', 'done']]);
      const qv = doc.trainings.find((p) => p.name === 'qv');
      assert.deepEqual([...new Set(qv.selected.map(([, m]) => m))].sort(), ['self_attn.q_proj', 'self_attn.v_proj']);
      for (const p of doc.trainings) assert.ok(Number.isFinite(p.eval_loss), `${p.name}: eval loss ${p.eval_loss}`);
      assert.deepEqual(h.consoleErrors.filter((e) => !/404 \(Not Found\)/.test(e)), []);
    } finally {
      await h.close();
    }
  });
