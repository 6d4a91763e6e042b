// DOM helpers that never parse markup: text goes in as text nodes, attributes one by
// one. Anything that came from a file, the network or the model is shown through
// these (or textContent), never innerHTML.
import './report.js';

// One set of number formats for the page and the self-contained report (report.js).
export const { fmtInt, fmtBytes, fmtTime } = globalThis.LoraLabReport;

/** el('td', {class: 'num', dataset: {value: 3}}, 'text', childNode, ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const $ = (sel) => document.querySelector(sel);

/** Replaces the children of node. */
export function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

export function fmtNum(x, digits = 4) {
  if (!Number.isFinite(x)) return '–';
  return Number(x.toPrecision(digits)).toString();
}
