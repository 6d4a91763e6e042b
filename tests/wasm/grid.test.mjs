// Grids in the wasm API (src/wasm/api.c): lab_count expands r lists and layer bands
// into arms as the CLI and plans do, with the parameters PEFT would count; a bad grid
// is refused with the reason in lab_last_error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const wasmDir = path.resolve(process.env.LPL_WASM_BUILD_DIR || 'build-wasm');
const SKIP = existsSync(path.join(wasmDir, 'loralab_st.js')) ? false : `no ${wasmDir}/loralab_st.js`;

test('lab_count of a grid: placements x bands x r, counted per arm', { skip: SKIP }, async () => {
  const factory = require(path.join(wasmDir, 'loralab_st.js'));
  const mod = await factory({ wasmBinary: readFileSync(path.join(wasmDir, 'loralab_st.wasm')),
                              locateFile: (f) => path.join(wasmDir, f) });
  const count = (exp) => mod.ccall('lab_count', 'string', ['string'], [JSON.stringify(exp)]);
  const arms = JSON.parse(count({ preset: 'dialogpt-medium', placements: ['baseline', 'attn-exact'], r: [8, 16], bands: 3 }));
  // d 1024: c_attn 1024+3072, attn.c_proj 1024+1024, mlp.c_fc 1024+4096, mlp.c_proj 4096+1024 per layer
  const perLayer = { baseline: 4096 + 2048 + 5120 + 5120, 'attn-exact': 4096 + 2048 };
  const want = [];
  for (const p of ['baseline', 'attn-exact']) {
    for (const [a, b] of [[0, 7], [8, 15], [16, 23]]) {
      for (const r of [8, 16]) want.push({ name: `${p}.L${a}-${b}.r${r}`, trainable: r * perLayer[p] * 8, r, first: a });
    }
  }
  assert.deepEqual(arms.map((x) => x.name), want.map((w) => w.name));
  arms.forEach((x, i) => {
    assert.equal(x.trainable, want[i].trainable, x.name);
    assert.equal(x.r, want[i].r, `${x.name} carries its r`);
    assert.equal(x.layers[0], want[i].first, `${x.name} starts at layer ${want[i].first}`);
    assert.equal(x.layers.length, 8);
  });
  assert.equal(count({ preset: 'gpt2', bands: 13 }), '');
  assert.match(mod.ccall('lab_last_error', 'string', [], []), /fewer than bands=13/);
});
