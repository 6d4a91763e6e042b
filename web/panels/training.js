// The Training panel: one Charts instance (charts.js) over the page's chart slots.
import { $ } from '../dom.js';
import { Charts } from '../charts.js';

export const charts = new Charts({
  train: $('#chart-train'), eval: $('#chart-eval'), ppl: $('#chart-ppl'), eff: $('#chart-eff'),
  heatmap: $('#heatmap'), heatSelect: $('#heatmap-placement'),
});

export function initTrainingPanel() {
  $('#heatmap-placement').addEventListener('change', () => charts.drawHeatmap());
  const slider = $('#train-smoothing');
  const show = () => {
    charts.setSmoothing(Number(slider.value));
    $('#train-smoothing-value').textContent = Number(slider.value).toFixed(2);
  };
  slider.addEventListener('input', show);
  show();
}
