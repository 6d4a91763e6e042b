#!/usr/bin/env node
// Makes docs/img/diagram.png for the README: the adapted-modules diagram of the study's
// model (DialoGPT-medium's shape, no weights needed) for the study's three placements,
// attn-exact and a custom placement on the top half of the layers, drawn by
// web/report.js from `loralab count --json` in headless Chromium.
//   node scripts/screenshot_diagram.mjs [--loralab build/loralab] [--out docs/img/diagram.png]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt; };
const exe = path.resolve(arg('--loralab', path.join(REPO, 'build', 'loralab')));
const out = path.resolve(arg('--out', path.join(REPO, 'docs', 'img', 'diagram.png')));

const r = spawnSync(exe, ['count', '--preset', 'dialogpt-medium', '--placements', 'baseline,ffn,attn,attn-exact',
  '--placement', 'top-half=attn.c_attn,attn.c_proj@12-23', '--r', '16', '--json'], { encoding: 'utf8' });
if (r.status !== 0) throw new Error(`loralab count failed: ${r.stderr || r.error}`);
const counts = JSON.parse(r.stdout);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-diagram-'));
const page = path.join(dir, 'diagram.html');
fs.writeFileSync(page, `<!doctype html><html lang="en"><meta charset="utf-8"><title>diagram</title>
<style>body{font-family:system-ui,sans-serif;margin:12px;background:#fff;max-width:900px}
.lab-legend{list-style:none;padding:0;font-size:14px}.lab-legend .touches{font-family:monospace;font-size:13px}
.trap-note{color:#8a5a00;font-size:14px}</style>
<h3>DialoGPT-medium (24 layers), r=16: where each placement's adapters go</h3><div id="d"></div>
<script src="${pathToFileURL(path.join(REPO, 'web', 'report.js')).href}"></script>
<script>document.getElementById('d').append(LoraLabReport.diagramFigure(${JSON.stringify(counts)}, 24));</script></html>`);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
try {
  const p = await browser.newPage({ viewport: { width: 920, height: 800 } });
  await p.goto(pathToFileURL(page).href);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  await p.locator('body').screenshot({ path: out });
  console.log(`${out}: ${counts.map((c) => `${c.name} ${c.trainable}`).join(', ')}`);
} finally {
  await browser.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
