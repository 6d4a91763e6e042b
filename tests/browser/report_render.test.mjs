// web/report.js without a browser: the diagram's model follows the module names it is
// given (GPT-2's, Llama's q/k/v/o/gate/up/down, and names no layout knows, which get a
// row of their own rather than vanish), its summary reads as lpl_lora_describe writes
// it, the suffix trap is found only where a short target reaches past what the other
// targets name, and fillTemplate fills each slot once, escaping '<' in the results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import '../../web/report.js';

const R = globalThis.LoraLabReport;
const sel = (layers, mods) => layers.flatMap((l) => mods.map((m) => [l, m]));

test('GPT-2 placements: layout, summary and the suffix trap', () => {
  const m = R.diagramModel([
    { name: 'attn', target_modules: ['c_attn', 'c_proj'], selected: sel([0, 1, 2], ['attn.c_attn', 'attn.c_proj', 'mlp.c_proj']) },
    { name: 'baseline', target_modules: ['c_attn', 'c_proj', 'c_fc'], selected: sel([0, 1, 2], ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']) },
    { name: 'top', target_modules: ['attn.c_proj'], selected: sel([1, 2], ['attn.c_proj']) },
    { name: 'regex', target_modules: '.*mlp.c_fc', selected: sel([2], ['mlp.c_fc']) },
  ], 3);
  assert.equal(m.layout.title, 'GPT-2 block');
  assert.deepEqual(R.layoutModules(m.layout), ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']);
  const [attn, base, top, regex] = m.placements;
  assert.deepEqual([...attn.surprises], ['mlp.c_proj']);
  assert.match(attn.note, /“c_proj” is matched by suffix/);
  assert.deepEqual([...base.surprises], [], 'every sub-block named: no surprise');
  assert.deepEqual([...top.surprises, ...regex.surprises], []);
  const order = R.layoutModules(m.layout);
  assert.equal(R.describe(attn.lit, order, 3), '3×attn.c_attn, 3×attn.c_proj, 3×mlp.c_proj');
  assert.equal(R.describe(top.lit, order, 3), '2×attn.c_proj [layers 1 2]');
  assert.equal(R.describe(new Map(), order, 3), 'none');
  assert.deepEqual(top.layers, [1, 2]);
});

test('Llama names take the Llama block; unknown names get a row of their own', () => {
  const llama = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
  const m = R.diagramModel([
    { name: 'all', target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], selected: sel([0, 1], llama) },
    { name: 'qv', target_modules: ['q_proj', 'v_proj'], selected: sel([0, 1], ['self_attn.q_proj', 'self_attn.v_proj']) },
  ], 2);
  assert.equal(m.layout.title, 'Llama block');
  assert.deepEqual(R.layoutModules(m.layout), llama);
  assert.deepEqual(m.placements.map((p) => [...p.surprises]), [[], []], 'Llama names are unambiguous');
  const odd = R.diagramModel([{ name: 'x', target_modules: ['wte'], selected: [[0, 'attn.c_attn'], [0, 'transformer.wte']] }], 1);
  assert.equal(odd.layout.title, 'GPT-2 block');
  assert.deepEqual(odd.layout.rows.at(-1), { kind: 'modules', ids: ['transformer.wte'], note: 'other modules' });
  assert.equal(R.describe(odd.placements[0].lit, R.layoutModules(odd.layout), 1), '1×attn.c_attn, 1×transformer.wte');
  // Layers past nLayer widen the strip instead of disappearing.
  assert.equal(R.diagramModel([{ name: 'y', selected: [[5, 'mlp.c_fc']] }], 2).nLayer, 6);
});

test('fillTemplate: each slot once, in one pass, "<" escaped; refusals', () => {
  const t = 'A@@LAB_RESULTS@@B@@LAB_META@@C@@LAB_RENDERER@@D';
  assert.equal(R.fillTemplate(t, "r('@@LAB_META@@')", '{"a": "</script> @@LAB_RENDERER@@"}', 'T'),
    'A{"a": "\\u003c/script> @@LAB_RENDERER@@"}B{"written": "T"}Cr(\'@@LAB_META@@\')D');
  assert.throws(() => R.fillTemplate('@@LAB_RESULTS@@@@LAB_META@@', '', '{}', 'T'), /0 @@LAB_RENDERER@@ slots/);
  assert.throws(() => R.fillTemplate(t, 'x = "</Script>"', '{}', 'T'), /end tag of script/);
});

test('deviceLine: the WebGPU adapter of a GPU run, the build of a CPU run', () => {
  const gpu = { config: { device: 'webgpu' }, environment: { build: 'wasm-simd128',
    webgpu: { vendor: 'google', architecture: 'swiftshader', emulation: true } } };
  assert.equal(R.deviceLine(gpu), 'WebGPU (google swiftshader, a CPU emulator)');
  gpu.environment.webgpu = { vendor: 'nvidia', architecture: 'ampere' };
  assert.equal(R.deviceLine(gpu), 'WebGPU (nvidia ampere)');
  assert.equal(R.deviceLine({ config: { device: 'cpu' }, environment: { build: 'native' } }), 'CPU (native)');
  assert.equal(R.deviceLine({ environment: {} }), undefined, 'an old results file names no device');
});

test('an older results.json: its "placements" list is read as the trainings', () => {
  const trainings = [{ name: 'baseline', seed: 42, status: 'done', eval_loss: 2.5 },
                     { name: 'ffn', seed: 42, status: 'done', eval_loss: 2.7 }];
  const now = { format: 'loralab-results', config: { placements: ['baseline', 'ffn'] }, trainings };
  const old = { format: 'loralab-results', config: { placements: ['baseline', 'ffn'] }, placements: trainings };
  assert.deepEqual(R.trainingsOf(now), trainings);
  assert.deepEqual(R.trainingsOf(old), trainings);
  assert.deepEqual(R.columnsOf(old).map((c) => [c.p.name, c.value('eval_loss')]), [['baseline', 2.5], ['ffn', 2.7]]);
  // the document's own list wins over the old key, and the config's placements are never trainings
  assert.deepEqual(R.trainingsOf({ trainings, placements: [{ name: 'stale' }] }), trainings);
  assert.deepEqual(R.trainingsOf({ config: { placements: ['baseline'] } }), []);
});
