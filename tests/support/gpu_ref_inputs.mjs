// The WebGPU engine's inputs (web/gpu/API.md) from a `gpu_ref step` dump
// (tests/support/gpu_ref.c): its metadata and its sections. One definition for the Node
// tests (tests/gpu/support.mjs), the page tests (tests/browser/gpu_step.test.mjs) and
// bench/gpu_check.mjs. stepInputs uses nothing from its module, so the page gets it as
// source text (withStepInputs): page.evaluate cannot import from tests/.

/** Engine inputs {config, tensors, lora, train, batches} from gpu_ref's metadata, sec(name)
 *  (a section as its typed array) and train options that differ from the dump's. */
export function stepInputs(meta, sec, trainOverrides = {}) {
  const c = meta.config, C = c.n_embd;
  const mat = (name, rows, cols) => ({ type: meta.sections[name].type, rows, cols, data: sec(name) });
  const shapes = [[3 * C, C], [C, C], [4 * C, C], [C, 4 * C]];
  const tensors = {
    wte: mat('wte', c.n_vocab, C), wpe: sec('wpe'), lnf_w: sec('lnf_w'), lnf_b: sec('lnf_b'),
    blocks: Array.from({ length: c.n_layer }, (_, l) => ({
      ln1_w: sec(`h${l}.ln1_w`), ln1_b: sec(`h${l}.ln1_b`), ln2_w: sec(`h${l}.ln2_w`), ln2_b: sec(`h${l}.ln2_b`),
      w: shapes.map(([o, i], s) => mat(`h${l}.w${s}`, o, i)), b: shapes.map((_, s) => sec(`h${l}.b${s}`)),
    })),
  };
  const lora = { r: meta.r, scaling: meta.scaling, dropout: meta.lora_dropout, modules: meta.modules, params: sec('params0') };
  const train = { maxT: meta.T, maxBatch: meta.NB, gradClip: meta.clip, dropout: meta.dropout,
    baseSeed: BigInt(meta.base_seed), loraSeed: BigInt(meta.lora_seed), ...trainOverrides };
  const lens = sec('lens'), tok = sec('tokens'), tg = sec('targets'), mask = sec('mask'), T = meta.T;
  const examples = Array.from(lens, (n, e) => ({ tokens: tok.subarray(e * T, e * T + n),
    targets: tg.subarray(e * T, e * T + n), mask: mask.subarray(e * T, e * T + n) }));
  const batches = Array.from({ length: meta.steps }, (_, s) => examples.slice(s * meta.NB, (s + 1) * meta.NB));
  return { config: c, tensors, lora, train, batches };
}

/** fn(arg, stepInputs) as a one-argument function whose source text holds stepInputs:
 *  page.evaluate sends a function's source to the page, and the lab's CSP forbids
 *  building a function from a string there. */
export function withStepInputs(fn) {
  return new Function('arg', `return (${fn})(arg, ${stepInputs});`);
}
