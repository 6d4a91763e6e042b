// Smoothing of a noisy per-step curve, as TensorBoard and W&B draw train loss: an
// exponential moving average whose start is corrected for its zero initial value
// (debiased), so the first smoothed point is the first raw point and not a value
// pulled toward 0. Missing points (null) stay missing and do not advance the average.

/**
 * values: numbers or null; weight in [0, 1): 0 returns the values, 0.99 is very smooth.
 * Returns a new array of the same length.
 */
export function ema(values, weight) {
  const w = Math.min(Math.max(Number(weight) || 0, 0), 0.999);
  let acc = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || v === undefined || !Number.isFinite(v)) return null;
    acc = acc * w + (1 - w) * v;
    n++;
    return acc / (1 - w ** n);
  });
}
