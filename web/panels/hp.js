// Panel 4, Hyper-parameters: the inputs marked data-hp. "Study defaults" and "Quick"
// are the engine's (lab_presets: the CLI's defaults and its --quick), not copies.

/** Writes values into the inputs. */
export function setHp(values) {
  for (const input of document.querySelectorAll('[data-hp]')) input.value = String(values[input.dataset.hp]);
}

/** The inputs as an object: numbers, and the schedule's and compute's names. */
export function readHp() {
  const hp = {};
  for (const input of document.querySelectorAll('[data-hp]')) {
    const k = input.dataset.hp;
    hp[k] = input.tagName === 'SELECT' ? input.value : Number(input.value);
  }
  return hp;
}

/** One message per value out of range; empty when all are fine. */
export function checkHp(hp) {
  const bad = [];
  const intIn = (k, lo, hi) => { if (!Number.isInteger(hp[k]) || hp[k] < lo || hp[k] > hi) bad.push(`${k} must be an integer in ${lo}..${hi}`); };
  intIn('r', 1, 1024); intIn('epochs', 1, 1000); intIn('batch_size', 1, 1024); intIn('n_train', 1, 1e7);
  intIn('n_eval', 1, 1e7); intIn('max_len', 8, 8192); intIn('warmup_steps', 0, 1e7); intIn('seed', 0, 2 ** 31);
  intIn('seeds', 1, 20);
  if (!(hp.lr > 0)) bad.push('lr must be > 0');
  if (!(hp.alpha > 0)) bad.push('alpha must be > 0');
  if (!(hp.dropout >= 0 && hp.dropout < 1)) bad.push('dropout must be in [0, 1)');
  return bad;
}
