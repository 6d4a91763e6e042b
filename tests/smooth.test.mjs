// The page's train-loss smoothing (web/smooth.js) against a direct computation of the
// debiased exponential moving average: s_n = sum_k (1-w) w^(n-k) x_k / (1 - w^n).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ema } from '../web/smooth.js';

function direct(xs, w) {
  const kept = xs.filter((v) => v !== null);
  return kept.map((_, n) => {
    let s = 0;
    for (let k = 0; k <= n; k++) s += (1 - w) * w ** (n - k) * kept[k];
    return s / (1 - w ** (n + 1));
  });
}

test('ema is the debiased exponential moving average', () => {
  const xs = [3.2, 2.9, 3.4, 2.1, 2.6, 1.9, 2.4, 1.7];
  for (const w of [0.3, 0.6, 0.9, 0.99]) {
    const got = ema(xs, w), want = direct(xs, w);
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-12, `w ${w} point ${i}: ${v} vs ${want[i]}`));
    assert.ok(Math.abs(got[0] - xs[0]) < 1e-12, 'the first point is the first value (debiased)');
  }
});

test('weight 0 gives the raw values; a constant stays constant; gaps stay gaps', () => {
  assert.deepEqual(ema([1, 5, 2], 0), [1, 5, 2]);
  for (const v of ema(Array(50).fill(2.5), 0.9)) assert.ok(Math.abs(v - 2.5) < 1e-12);
  const got = ema([4, null, 2, undefined, 6], 0.5);
  assert.equal(got[1], null);
  assert.equal(got[3], null);
  const want = direct([4, 2, 6], 0.5);
  assert.ok(Math.abs(got[2] - want[1]) < 1e-12 && Math.abs(got[4] - want[2]) < 1e-12);
});

test('smoothing lowers the noise of a noisy curve', () => {
  let s = 1;
  const rand = () => { s = (s * 16807) % 2147483647; return s / 2147483647; };
  const xs = Array.from({ length: 400 }, (_, i) => 3 * Math.exp(-i / 150) + (rand() - 0.5));
  const rough = (a) => a.slice(1).reduce((t, v, i) => t + (v - a[i]) ** 2, 0);
  assert.ok(rough(ema(xs, 0.9)) < rough(xs) / 20);
});
