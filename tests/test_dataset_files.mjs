// Checks the bundled Alpaca dataset (data/alpaca_train.json, data/alpaca_eval.json):
// well-formed records, enough of them, no shared or repeated instructions, and every
// record short enough to survive the 256-token truncation mostly intact.
// Run from the repo root or anywhere: node --test tests/test_dataset_files.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FILES = { train: 'data/alpaca_train.json', eval: 'data/alpaca_eval.json' };
const MIN_COUNT = { train: 100, eval: 20 };
// Word limits chosen so that prompt template + record stays well under 256 GPT-2 tokens.
const MAX_OUTPUT_WORDS = 60;
const MAX_RECORD_WORDS = 200;

const words = (s) => (s.trim() === '' ? 0 : s.trim().split(/\s+/).length);
// Instructions that differ only in case or spacing count as duplicates.
const normalise = (s) => s.trim().toLowerCase().replace(/\s+/g, ' ');

function loadBytes(name) {
    return readFileSync(join(ROOT, FILES[name]));
}

function load(name) {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(loadBytes(name));
    return JSON.parse(text);
}

// Returns a list of problems in one record; empty when the record is valid.
function recordProblems(r, where) {
    const bad = [];
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return [`${where}: not an object`];
    for (const k of Object.keys(r)) {
        if (!['instruction', 'input', 'output'].includes(k)) bad.push(`${where}: unknown field "${k}"`);
    }
    for (const k of ['instruction', 'output']) {
        if (typeof r[k] !== 'string' || r[k].trim() === '') bad.push(`${where}: ${k} missing or empty`);
    }
    if ('input' in r && typeof r.input !== 'string') bad.push(`${where}: input is not a string`);
    return bad;
}

for (const name of Object.keys(FILES)) {
    test(`${FILES[name]} is valid UTF-8 without a byte-order mark`, () => {
        const bytes = loadBytes(name);
        assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes));
        assert.ok(!(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf), 'BOM present');
    });

    test(`${FILES[name]} is a JSON array of well-formed Alpaca records`, () => {
        const data = load(name);
        assert.ok(Array.isArray(data), 'top level is not an array');
        const problems = data.flatMap((r, i) => recordProblems(r, `record ${i}`));
        assert.deepEqual(problems, []);
    });

    test(`${FILES[name]} has at least ${MIN_COUNT[name]} records`, () => {
        assert.ok(load(name).length >= MIN_COUNT[name], `only ${load(name).length} records`);
    });

    test(`${FILES[name]} has no duplicate instructions`, () => {
        const seen = new Map();
        const dups = [];
        load(name).forEach((r, i) => {
            const key = normalise(r.instruction);
            if (seen.has(key)) dups.push(`records ${seen.get(key)} and ${i}: "${r.instruction}"`);
            else seen.set(key, i);
        });
        assert.deepEqual(dups, []);
    });

    test(`${FILES[name]} records are short enough for 256-token sequences`, () => {
        const long = [];
        load(name).forEach((r, i) => {
            const ow = words(r.output);
            const tw = words(r.instruction) + words(r.input ?? '') + ow;
            if (ow > MAX_OUTPUT_WORDS) long.push(`record ${i}: output has ${ow} words`);
            if (tw > MAX_RECORD_WORDS) long.push(`record ${i}: record has ${tw} words`);
        });
        assert.deepEqual(long, []);
    });

    test(`${FILES[name]} mixes records with and without input`, () => {
        const data = load(name);
        const withInput = data.filter((r) => (r.input ?? '').trim() !== '').length;
        // The prompt template differs with and without input; both must be exercised.
        assert.ok(withInput >= Math.ceil(0.15 * data.length), `only ${withInput} records with input`);
        assert.ok(withInput <= Math.floor(0.5 * data.length), `${withInput} records with input`);
        assert.ok(data.some((r) => !('input' in r)), 'no record omits the input field');
        assert.ok(data.some((r) => r.input === ''), 'no record has an empty input');
    });
}

test('train and eval share no instruction', () => {
    const train = new Set(load('train').map((r) => normalise(r.instruction)));
    const shared = load('eval').filter((r) => train.has(normalise(r.instruction))).map((r) => r.instruction);
    assert.deepEqual(shared, []);
});

test('the checks reject bad records', () => {
    // Guards against a validator that accepts everything.
    assert.equal(recordProblems({ instruction: 'x', output: 'y' }, 'r').length, 0);
    assert.equal(recordProblems({ instruction: 'x', input: '', output: 'y' }, 'r').length, 0);
    assert.equal(recordProblems({ instruction: '', output: 'y' }, 'r').length, 1);
    assert.equal(recordProblems({ instruction: 'x' }, 'r').length, 1);
    assert.equal(recordProblems({ instruction: 'x', input: 3, output: 'y' }, 'r').length, 1);
    assert.equal(recordProblems({ instruction: 'x', output: 'y', extra: 1 }, 'r').length, 1);
    assert.equal(recordProblems(['x'], 'r').length, 1);
    assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.of(0x61, 0xc3, 0x28)));
    assert.equal(words('  two  words '), 2);
    assert.equal(normalise(' Fix  The grammar '), 'fix the grammar');
});
