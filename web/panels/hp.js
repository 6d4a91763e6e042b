// Panel 4, Hyper-parameters: the inputs marked data-hp. "Study defaults" and "Quick"
// are the engine's (lab_presets: the CLI's defaults and its --quick), not copies.

// max_len 0 is the library's default: the model's context, at most 256. The field
// shows that number once a model is loaded, until the user types another.
let maxLenFits = false;
let modelCtx = 0;

function fitMaxLen() {
  const input = document.querySelector('[data-hp="max_len"]');
  if (input && maxLenFits) input.value = modelCtx ? String(Math.min(256, modelCtx)) : '';
}

/** Writes values into the inputs. */
export function setHp(values) {
  for (const input of document.querySelectorAll('[data-hp]')) {
    // a setting the presets do not carry (device: the page's choice) keeps its input
    if (values[input.dataset.hp] !== undefined) input.value = String(values[input.dataset.hp]);
  }
  maxLenFits = values.max_len === 0;
  fitMaxLen();
}

/** The loaded model's context: a max_len left at its default follows it. */
export function setModelContext(nCtx) {
  modelCtx = nCtx || 0;
  fitMaxLen();
}

/** Typing a max_len keeps it, whatever model is loaded next. */
export function initHpPanel() {
  const input = document.querySelector('[data-hp="max_len"]');
  if (input) input.addEventListener('input', () => { maxLenFits = false; });
}

/** A base-dropout field's value: "config" or a number (NaN when it is neither). */
export function baseDropoutValue(text) {
  const t = String(text).trim();
  return t === 'config' ? 'config' : (t === '' ? NaN : Number(t));
}

/** The inputs as an object: numbers, the schedule's and compute's names, and base
 * dropout as "config" or a number. */
export function readHp() {
  const hp = {};
  for (const input of document.querySelectorAll('[data-hp]')) {
    const k = input.dataset.hp;
    if (k === 'base_dropout') hp[k] = baseDropoutValue(input.value);
    else hp[k] = input.tagName === 'SELECT' ? input.value : Number(input.value);
  }
  return hp;
}

/** One message per value out of range; empty when all are fine. */
export function checkHp(hp) {
  const bad = [];
  const intIn = (k, lo, hi) => { if (!Number.isInteger(hp[k]) || hp[k] < lo || hp[k] > hi) bad.push(`${k} must be an integer in ${lo}..${hi}`); };
  intIn('r', 1, 1024); intIn('epochs', 1, 1000); intIn('batch_size', 1, 1024); intIn('n_train', 1, 1e7);
  intIn('n_eval', 1, 1e7); if (hp.max_len !== 0) intIn('max_len', 2, 1 << 20); intIn('warmup_steps', 0, 1e7); intIn('seed', 0, 2 ** 31);
  intIn('seeds', 1, 20);
  if (!(hp.lr > 0)) bad.push('lr must be > 0');
  if (!(hp.alpha > 0)) bad.push('alpha must be > 0');
  if (!(hp.dropout >= 0 && hp.dropout < 1)) bad.push('dropout must be in [0, 1)');
  if (hp.base_dropout !== undefined && hp.base_dropout !== 'config' && !(hp.base_dropout >= 0 && hp.base_dropout < 1)) {
    bad.push('base dropout must be "config" or a number in [0, 1)');
  }
  return bad;
}
