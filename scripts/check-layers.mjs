#!/usr/bin/env node
// Checks that src/ keeps its layering (src/README.md): a file includes only headers
// of its own folder or of a lower layer, a folder's private headers stay in it, and
// there is no include cycle between files or folders. With --archive LIB.a it also
// checks the symbols the objects really use (nm): no module (a .c with its headers)
// calls into a higher layer, and no two modules call each other, directly or round
// a longer loop. Calls are what cycles are made of; includes only declare them.
//
//   node scripts/check-layers.mjs [--root DIR] [--archive build/liblpl.a]
// Exit 0 when clean; 1 with one line per problem; 2 on bad usage.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Lower rank = lower layer. cli and wasm are two shells of the same rank that never
// include each other.
const RANK = { core: 1, model: 2, io: 3, lab: 4, cli: 5, wasm: 5 };

function usage(msg) {
  process.stderr.write(`check-layers: ${msg}\nusage: node scripts/check-layers.mjs [--root DIR] [--archive LIB.a]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { root: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), archive: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--root' && argv[i + 1]) o.root = path.resolve(argv[++i]);
    else if (argv[i] === '--archive' && argv[i + 1]) o.archive = path.resolve(argv[++i]);
    else usage(`unknown argument ${argv[i]}`);
  }
  return o;
}

// Headers that cross folders: the public API (include/lpl/<layer>/, installed) and
// the library's own cross-layer internals (src/internal/lpl/<layer>/, not installed).
// Both are included as "lpl/<layer>/name.h".
const HEADER_ROOTS = [path.join('include', 'lpl'), path.join('src', 'internal', 'lpl')];

// Every source and header under src/<folder>/ and the two header roots.
function listFiles(root) {
  const out = [];
  for (const base of ['src', ...HEADER_ROOTS]) {
    const dir = path.join(root, base);
    if (!fs.existsSync(dir)) continue;
    for (const folder of fs.readdirSync(dir)) {
      const fdir = path.join(dir, folder);
      if (!fs.statSync(fdir).isDirectory() || (base === 'src' && folder === 'internal')) continue;
      for (const f of fs.readdirSync(fdir)) if (/\.[ch]$/.test(f)) out.push({ folder, file: path.join(fdir, f), base });
    }
  }
  return out;
}

// "folder/name" of a file: a .c and its headers (public or private) are one module.
const moduleOf = (folder, file) => `${folder}/${path.basename(file).replace(/\.[ch]$/, '')}`;

// The quoted includes of a file as {line, target: {folder, file, pub}} or {line, unknown}.
function includesOf(root, f) {
  const out = [];
  const lines = fs.readFileSync(f.file, 'utf8').split('\n');
  lines.forEach((text, i) => {
    const m = text.match(/^\s*#\s*include\s+"([^"]+)"/);
    if (!m) return;
    const pub = m[1].match(/^lpl\/(\w+)\/([\w.]+\.h)$/);
    let target;
    if (pub) {
      const files = HEADER_ROOTS.map((r) => path.join(root, r, pub[1], pub[2]));
      target = { folder: pub[1], file: files.find((x) => fs.existsSync(x)) || files[0], pub: true };
    }
    else {
      const file = path.resolve(path.dirname(f.file), m[1]);
      const rel = path.relative(path.join(root, 'src'), file).split(path.sep);
      target = rel.length === 2 && RANK[rel[0]] ? { folder: rel[0], file, pub: false } : null;
    }
    out.push({ line: i + 1, name: m[1], target });
  });
  return out;
}

// Strongly connected components with more than one member (Tarjan).
function cycles(graph) {
  let index = 0;
  const idx = new Map(), low = new Map(), onStack = new Set(), stack = [], found = [];
  const visit = (v) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); onStack.add(v);
    for (const w of graph.get(v) || []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do { w = stack.pop(); onStack.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1) found.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

function addEdge(graph, a, b) {
  if (a === b) return;
  if (!graph.has(a)) graph.set(a, new Set());
  if (!graph.has(b)) graph.set(b, new Set());
  graph.get(a).add(b);
}

// An edge from folder a to folder b is allowed when b is a's layer or a lower one
// (the two shells excepted).
const allowed = (a, b) => a === b || (RANK[b] < RANK[a]);

function checkIncludes(root, problems) {
  const files = new Map(), folders = new Map();
  for (const f of listFiles(root)) {
    const rel = path.relative(root, f.file);
    if (!RANK[f.folder]) { problems.push(`${rel}: folder "${f.folder}" is not a layer (${Object.keys(RANK).join(', ')})`); continue; }
    for (const inc of includesOf(root, f)) {
      const where = `${rel}:${inc.line}: #include "${inc.name}"`;
      if (!inc.target) { problems.push(`${where}: not a header of src/<layer>/ or include/lpl/<layer>/`); continue; }
      if (!fs.existsSync(inc.target.file)) { problems.push(`${where}: no such header`); continue; }
      if (!allowed(f.folder, inc.target.folder)) {
        problems.push(`${where}: ${f.folder} (layer ${RANK[f.folder]}) may not include ${inc.target.folder} (layer ${RANK[inc.target.folder]})`);
      }
      if (f.base === HEADER_ROOTS[0] && !inc.target.file.startsWith(path.join(root, HEADER_ROOTS[0]) + path.sep)) {
        problems.push(`${where}: a public header may include only public headers (include/lpl/); it is installed alone`);
      }
      if (!inc.target.pub && inc.target.folder !== f.folder) {
        problems.push(`${where}: a private header of src/${inc.target.folder}/; use a public header under include/lpl/`);
      }
      addEdge(files, path.relative(root, f.file), path.relative(root, inc.target.file));
      addEdge(folders, f.folder, inc.target.folder);
    }
  }
  for (const c of cycles(files)) problems.push(`include cycle between files: ${c.join(' <-> ')}`);
  for (const c of cycles(folders)) problems.push(`include cycle between folders: ${c.join(' <-> ')}`);
}

// Maps an archive member (name.c.o) to its module, by the unique src/<folder>/name.c.
function objectModules(root) {
  const byName = new Map();
  for (const f of listFiles(root)) {
    if (f.base !== 'src' || !f.file.endsWith('.c')) continue;
    const name = path.basename(f.file);
    if (byName.has(name)) byName.set(name, null);   // ambiguous: two folders have it
    else byName.set(name, { folder: f.folder, module: moduleOf(f.folder, f.file) });
  }
  return byName;
}

function checkSymbols(root, archive, problems) {
  const text = execFileSync('nm', ['-A', archive], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const byName = objectModules(root);
  const defs = new Map(), uses = [];
  for (const line of text.split('\n')) {
    const m = line.match(/^[^:]+:([^:]+\.c\.o(?:bj)?):\s*(?:[0-9a-f]+)?\s+([A-Za-z])\s+(\S+)$/);
    if (!m) continue;
    const obj = m[1].replace(/\.o(bj)?$/, '');
    const mod = byName.get(obj);
    if (mod === null) { problems.push(`${obj}: the same file name in two folders; symbols cannot be attributed`); continue; }
    if (!mod) continue;                              // third-party object (cJSON)
    if (m[2] === 'U') uses.push([mod, m[3]]);
    else if (/[TDBRCV]/.test(m[2])) defs.set(m[3], mod);
  }
  const graph = new Map();
  const reported = new Set();
  for (const [mod, sym] of uses) {
    const def = defs.get(sym);
    if (!def || def.module === mod.module) continue;
    addEdge(graph, mod.module, def.module);
    const key = `${mod.module}>${def.module}`;
    if (!allowed(mod.folder, def.folder) && !reported.has(key)) {
      reported.add(key);
      problems.push(`${mod.module} calls ${sym} of ${def.module}: ${mod.folder} may not use ${def.folder}`);
    }
  }
  for (const c of cycles(graph)) problems.push(`call cycle between modules (nm ${path.basename(archive)}): ${c.join(' <-> ')}`);
  return graph;
}

const opts = parseArgs(process.argv.slice(2));
const problems = [];
checkIncludes(opts.root, problems);
if (opts.archive) {
  if (!fs.existsSync(opts.archive)) usage(`no archive ${opts.archive}`);
  checkSymbols(opts.root, opts.archive, problems);
}
for (const p of problems) process.stdout.write(`${p}\n`);
process.stdout.write(problems.length ? `check-layers: ${problems.length} problem(s)\n`
  : `check-layers: ${listFiles(opts.root).length} files, layers ${Object.keys(RANK).join(' < ')}: no upward include, no cycle${opts.archive ? ' (includes and symbols)' : ''}\n`);
process.exit(problems.length ? 1 : 0);
