// A stand-in for the Hugging Face Hub as a browser meets it, for tests and benchmarks
// (scripts/serve --hub-root DIR mounts it at /hub/). DIR/<org>/<repo>/<file> (or
// DIR/<repo>/<file>) is the current state of a repo's main branch.
//
//  GET|HEAD /hub/<repo>/resolve/<rev>/<file>
//    rev: "main" or the repo's current commit (40 hex: a hash of the repo's file
//    names, sizes and mtimes, so changing a file moves main; older commits are gone).
//    ETags are send_file.mjs's (size and mtime; the Hub uses the file's sha256).
//    Small files: 200 with the bytes, ETag, X-Repo-Commit.
//    LFS files (.bin .safetensors .gguf .h5 .msgpack .pt, or >= 10 MB): 302 to the
//    "CDN", a second server on its own port, with X-Linked-Size, X-Linked-Etag and
//    X-Repo-Commit, as the Hub does.
//  GET|HEAD on the CDN: the file as scripts/send_file.mjs sends it (ETag,
//    Accept-Ranges; Range answers 206 with Content-Range, an unsatisfiable one 416).
//  Both send CORS headers (Access-Control-Allow-Origin: *, the headers above exposed)
//  and answer OPTIONS preflights.
//
// Test switches (options, or env LPL_HUB_DROP_ONCE / LPL_HUB_NO_RANGE):
//   dropOnce: N  the first CDN response of each file that reaches byte N is cut
//                there (the connection is destroyed), once per file;
//   noRange: true  the CDN ignores Range and always sends the whole file (200).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { sendFile, parseRange, etagOf } from './send_file.mjs';

const LFS_EXT = new Set(['.bin', '.safetensors', '.gguf', '.h5', '.msgpack', '.pt', '.pth', '.onnx']);
const LFS_MIN = 10 * 1024 * 1024;
const EXPOSE = 'X-Repo-Commit, X-Linked-Size, X-Linked-Etag, ETag, Content-Range, Content-Length, Accept-Ranges';

const cors = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': EXPOSE,
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

function text(res, req, status, msg, headers = {}) {
  const body = Buffer.from(msg + '\n');
  res.writeHead(status, { ...cors, ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function preflight(req, res) {
  res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
                       'Access-Control-Allow-Headers': 'Range, If-Range, If-None-Match', 'Access-Control-Max-Age': '600' });
  res.end();
}

// A segment is a plain name: no dot-names, separators or NUL.
const okSeg = (s) => typeof s === 'string' && s !== '' && !s.startsWith('.') && !/[\\/\0]/.test(s);

function decodeSegs(raw) {
  const out = [];
  for (const r of raw.split('/')) {
    if (r === '') continue;
    let s;
    try { s = decodeURIComponent(r); } catch { return null; }
    if (!okSeg(s)) return null;
    out.push(s);
  }
  return out;
}

/** The files of a repo directory and its commit hash; null if no such repo. */
function repoState(root, repo) {
  const dir = path.join(root, ...repo);
  let names;
  try { names = fs.readdirSync(dir).filter((n) => !n.startsWith('.')).sort(); } catch { return null; }
  const files = new Map();
  const h = crypto.createHash('sha1');
  for (const n of names) {
    const st = fs.statSync(path.join(dir, n));
    if (!st.isFile()) continue;
    files.set(n, { file: path.join(dir, n), size: st.size, mtime: st.mtime, mtimeMs: st.mtimeMs });
    h.update(`${n}\0${st.size}\0${st.mtimeMs}\n`);
  }
  return { dir, files, commit: h.digest('hex') };
}

/**
 * Starts the CDN server and returns {handle(req, res, rawPath, baseHeaders), cdnOrigin,
 * close()}. handle answers the /hub/ part of a request (rawPath without "/hub").
 */
export async function startHubStandin({ root, host = '127.0.0.1', cdnPort = 0, dropOnce, noRange } = {}) {
  const env = process.env;
  dropOnce = dropOnce ?? (env.LPL_HUB_DROP_ONCE ? Number(env.LPL_HUB_DROP_ONCE) : 0);
  noRange = noRange ?? env.LPL_HUB_NO_RANGE === '1';
  const dropped = new Set();
  const stats = { cdnGets: 0, rangeGets: 0, drops: 0 };

  const cdn = http.createServer((req, res) => {
    try { serveCdn(req, res); } catch (e) { if (!res.headersSent) text(res, req, 500, 'internal error'); else res.destroy(); }
  });
  // /repos/<repo...>/<commit>/<file>
  function serveCdn(req, res) {
    if (req.method === 'OPTIONS') return preflight(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, req, 405, 'method not allowed', { Allow: 'GET, HEAD' });
    const segs = decodeSegs(req.url.split(/[?#]/, 1)[0]);
    if (!segs || segs.length < 4 || segs[0] !== 'repos') return text(res, req, 404, 'not found');
    const file = segs[segs.length - 1], commit = segs[segs.length - 2], repo = segs.slice(1, -2);
    const state = repoState(root, repo);
    const f = state && state.files.get(file);
    if (!f || commit !== state.commit) return text(res, req, 404, 'not found (the file changed since the redirect)');
    const headers = { ...cors, 'Cache-Control': 'no-cache' };
    if (req.method === 'GET') {
      stats.cdnGets++;
      if (req.headers.range && !noRange) stats.rangeGets++;
    }
    const key = `${f.file}\0${f.mtimeMs}`;
    if (noRange) {   // a server that knows no Range: always the whole file (dropped once too, if asked)
      res.writeHead(200, { ...headers, ETag: etagOf(f), 'Content-Type': 'application/octet-stream', 'Content-Length': f.size });
      if (req.method === 'HEAD') return res.end();
      return sendBytes(res, f, 0, f.size - 1, dropOnce > 0 && f.size > dropOnce ? key : null);
    }
    const ranges = parseRange(req.headers.range, f.size);
    const one = Array.isArray(ranges) && ranges.length === 1 ? ranges[0] : null;
    const start = one ? one.start : 0, end = one ? one.end : f.size - 1;
    if (req.method === 'GET' && dropOnce > 0 && (one || !ranges) && start < dropOnce && end >= dropOnce && !dropped.has(key)) {
      res.writeHead(one ? 206 : 200, { ...headers, ETag: etagOf(f), 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream',
        'Content-Length': end - start + 1, ...(one ? { 'Content-Range': `bytes ${start}-${end}/${f.size}` } : {}) });
      return sendBytes(res, f, start, end, key);
    }
    return sendFile(req, res, f, 'application/octet-stream', headers);
  }

  // Streams bytes [start, end] of f; with dropKey, cuts the connection where the
  // response reaches byte dropOnce (once per file, counted when it happens, so a
  // request cancelled earlier does not use it up).
  function sendBytes(res, f, start, end, dropKey) {
    const stream = fs.createReadStream(f.file, { start, end });
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    if (!dropKey) return stream.pipe(res);
    let at = start;
    stream.on('data', (chunk) => {
      const room = dropOnce - at;
      if (!dropped.has(dropKey) && chunk.length >= room) {
        dropped.add(dropKey);
        stats.drops++;
        stream.destroy();
        res.write(chunk.subarray(0, room), () => setTimeout(() => res.socket && res.socket.destroy(), 20));
        return;
      }
      at += chunk.length;
      if (!res.write(chunk)) { stream.pause(); res.once('drain', () => stream.resume()); }
    });
    stream.on('end', () => res.end());
  }

  await new Promise((ok, fail) => { cdn.once('error', fail); cdn.listen(cdnPort, host, ok); });
  const cdnHost = host.includes(':') ? `[${host}]` : host;
  const cdnOrigin = `http://${cdnHost}:${cdn.address().port}`;

  /** The /hub/ side: rawPath is "/<repo...>/resolve/<rev>/<file...>". */
  function handle(req, res, rawPath, baseHeaders = {}) {
    const h = { ...baseHeaders, ...cors };
    if (req.method === 'OPTIONS') return preflight(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, req, 405, 'method not allowed', { ...h, Allow: 'GET, HEAD' });
    const segs = decodeSegs(rawPath);
    if (!segs) return text(res, req, 403, 'forbidden path', h);
    const k = segs.indexOf('resolve');
    if (k < 1 || k > 2 || segs.length !== k + 3) return text(res, req, 404, 'not found', h);
    const repo = segs.slice(0, k), rev = segs[k + 1], file = segs[k + 2];
    const state = repoState(root, repo);
    if (!state) return text(res, req, 404, 'Repository not found', { ...h, 'X-Error-Code': 'RepoNotFound' });
    if (rev !== 'main' && rev !== state.commit) return text(res, req, 404, 'Revision not found', { ...h, 'X-Error-Code': 'RevisionNotFound' });
    const f = state.files.get(file);
    if (!f) return text(res, req, 404, 'Entry not found', { ...h, 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': state.commit });
    const etag = etagOf(f);   // the CDN sends the same ETag (scripts/send_file.mjs)
    if (LFS_EXT.has(path.extname(file).toLowerCase()) || f.size >= LFS_MIN) {
      const loc = `${cdnOrigin}/repos/${repo.map(encodeURIComponent).join('/')}/${state.commit}/${encodeURIComponent(file)}`;
      res.writeHead(302, { ...h, Location: loc, 'X-Linked-Size': f.size, 'X-Linked-Etag': etag,
                           'X-Repo-Commit': state.commit, 'Content-Length': 0 });
      return res.end();
    }
    res.writeHead(200, { ...h, ETag: etag, 'X-Repo-Commit': state.commit, 'Content-Length': f.size,
                         'Content-Type': file.endsWith('.json') ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8' });
    if (req.method === 'HEAD') return res.end();
    const stream = fs.createReadStream(f.file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  return {
    handle, cdnOrigin, stats,
    close: () => new Promise((ok) => { cdn.closeAllConnections?.(); cdn.close(() => ok()); }),
  };
}
