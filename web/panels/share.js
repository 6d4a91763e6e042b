// Sharing a run: "Download report" writes one self-contained HTML file (the template
// web/report_template.html filled by report.js's fillTemplate, exactly as `loralab
// report` fills it), and "Compare runs" overlays several results files.
import '../report.js';
import { el } from '../dom.js';
import { showError } from '../state.js';

const R = globalThis.LoraLabReport;

async function text(url) {
  const r = await fetch(url, { cache: 'no-cache' });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.text();
}

/** "YYYY-MM-DDTHH:MM:SSZ" now, as `loralab report` writes it. */
export function nowStamp() {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The report file of a results.json text (resolves to a string; rejects with a readable reason). */
export async function reportHtml(resultsText, written = nowStamp()) {
  const [template, renderer] = await Promise.all([text('report_template.html'), text('report.js')]);
  return R.fillTemplate(template, renderer, resultsText, written);
}

function save(name, data, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** The "report.html" download button for a results document's text, or null when it is not one. */
export function reportButton(json) {
  let doc = null;
  try { doc = JSON.parse(json); } catch (e) { return null; }
  if (!doc || doc.format !== 'loralab-results' || !R.trainingsOf(doc).length) return null;
  return el('button', { type: 'button', id: 'dl-report', text: 'report.html (self-contained)',
    title: 'one HTML file with the settings, diagram, curves, table and verdicts; opens offline',
    onclick: async () => {
      try {
        save('report.html', await reportHtml(json), 'text/html');
      } catch (e) {
        showError(`The report could not be made: ${e.message}`);
      }
    } });
}


