#!/usr/bin/env node
// Local server for the browser lab: static files only, GET/HEAD only, never outside
// its roots. Files are streamed with byte ranges (send_file.mjs), never read whole. Sends COOP/COEP/CORP on every response so the threaded wasm build can
// run (unless --no-isolation, used to test the single-thread fallback), and a CSP
// that allows scripts from this origin only.
//
//   scripts/serve [--port N] [--host H] [--no-isolation] [--wasm-dir DIR]
//                 [--models-dir DIR] [--data-dir DIR] [--web-dir DIR] [--hub-root DIR]
//                 [--hub-cdn-port N] [--hub-drop-once BYTES] [--hub-no-range]
//
// Mounts: / -> web/, /build-wasm/ -> the emcc outputs, /models/, /data/,
// /vendor/uplot/ -> node_modules/uplot/dist, and with --hub-root DIR a stand-in
// for the Hub (scripts/hub_standin.mjs) at /hub/<org>/<repo>/resolve/<rev>/<file>:
// small files directly, weights by a 302 to a second port (its "CDN") that honours
// Range. --hub-drop-once and --hub-no-range are test switches of that CDN.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startHubStandin } from './hub_standin.mjs';
import { sendFile } from './send_file.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.gguf': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

// Only this origin may run scripts; wasm compilation needs 'wasm-unsafe-eval'.
// The Hub and its CDNs are the only other places the worker may fetch from.
export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Parses argv into options; throws on unknown flags. */
export function parseArgs(argv) {
  const env = process.env;
  const opts = {
    port: 8080, host: '127.0.0.1', isolation: true, quiet: false,
    webDir: path.join(REPO, 'web'),
    wasmDir: path.resolve(REPO, env.LPL_WASM_BUILD_DIR || 'build-wasm'),
    modelsDir: path.join(REPO, 'models'),
    dataDir: path.join(REPO, 'data'),
    uplotDir: path.join(REPO, 'node_modules', 'uplot', 'dist'),
    hubRoot: null, hubCdnPort: 0, hubDropOnce: undefined, hubNoRange: undefined,
  };
  const dirFlags = { '--web-dir': 'webDir', '--wasm-dir': 'wasmDir', '--models-dir': 'modelsDir',
                     '--data-dir': 'dataDir', '--hub-root': 'hubRoot' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') {
      opts.port = Number(next());
      if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('bad --port');
    } else if (a === '--host') opts.host = next();
    else if (a === '--no-isolation') opts.isolation = false;
    else if (a === '--hub-cdn-port' || a === '--hub-drop-once') {
      const v = Number(next());
      if (!Number.isInteger(v) || v < 0 || (a === '--hub-cdn-port' && v > 65535)) throw new Error(`bad ${a}`);
      opts[a === '--hub-cdn-port' ? 'hubCdnPort' : 'hubDropOnce'] = v;
    } else if (a === '--hub-no-range') opts.hubNoRange = true;
    else if (a === '--quiet') opts.quiet = true;
    else if (dirFlags[a]) opts[dirFlags[a]] = path.resolve(next());
    else if (a === '-h' || a === '--help') opts.help = true;
    else throw new Error(`unknown option ${a}`);
  }
  return opts;
}

function baseHeaders(opts) {
  const h = {
    // the Hub stand-in's CDN is another origin the worker fetches from
    'Content-Security-Policy': opts.hub ? CSP.replace("connect-src 'self'", `connect-src 'self' ${opts.hub.cdnOrigin}`) : CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-cache',
  };
  if (opts.isolation) {
    h['Cross-Origin-Opener-Policy'] = 'same-origin';
    h['Cross-Origin-Embedder-Policy'] = 'require-corp';
    h['Cross-Origin-Resource-Policy'] = 'same-origin';
  }
  return h;
}

function sendText(res, req, status, text, headers) {
  const body = Buffer.from(text + '\n', 'utf8');
  res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8',
                          'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Splits a raw request path into decoded segments. Returns null when the path is
 * not acceptable: not origin-form, bad percent-encoding, NUL, backslash, a segment
 * that decodes to "..", "." or contains "/", or a hidden name.
 */
export function safeSegments(rawPath) {
  if (typeof rawPath !== 'string' || !rawPath.startsWith('/')) return null;
  const out = [];
  for (const raw of rawPath.split('/')) {
    if (raw === '') continue;
    let seg;
    try { seg = decodeURIComponent(raw); } catch { return null; }
    if (seg.includes('/') || seg.includes('\\') || seg.includes('\0')) return null;
    if (seg === '.' || seg === '..' || seg.startsWith('.')) return null;
    out.push(seg);
  }
  return out;
}

// Resolves segments under root; returns the real path of a regular file inside the
// real root, or null (missing, directory, or a symlink that leaves the root).
function resolveInside(root, segs) {
  let realRoot;
  try { realRoot = fs.realpathSync(root); } catch { return null; }
  let real;
  try { real = fs.realpathSync(path.join(realRoot, ...segs)); } catch { return null; }
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return { escaped: true };
  let st;
  try { st = fs.statSync(real); } catch { return null; }
  if (!st.isFile()) return null;
  return { file: real, size: st.size, mtime: st.mtime };
}

// Maps a request to [root, segments] by mount point, or null.
function route(opts, segs) {
  if (segs.length === 0) return [opts.webDir, ['index.html']];
  const [head, ...rest] = segs;
  if (head === 'build-wasm') return [opts.wasmDir, rest];
  if (head === 'models') return [opts.modelsDir, rest];
  if (head === 'data') return [opts.dataDir, rest];
  if (head === 'vendor' && rest[0] === 'uplot') return [opts.uplotDir, rest.slice(1)];
  if (head === 'hub') return null; // the Hub stand-in answers these, when started
  return [opts.webDir, segs];
}

function handle(opts, req, res) {
  const headers = baseHeaders(opts);
  if (opts.hub && req.url.startsWith('/hub/') && req.method === 'OPTIONS') {
    return opts.hub.handle(req, res, req.url.split(/[?#]/, 1)[0].slice(4), headers);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendText(res, req, 405, 'method not allowed', { ...headers, Allow: 'GET, HEAD' });
  }
  const rawPath = req.url.split(/[?#]/, 1)[0];
  if (opts.hub && rawPath.startsWith('/hub/')) return opts.hub.handle(req, res, rawPath.slice(4), headers);
  const segs = safeSegments(rawPath);
  if (!segs) return sendText(res, req, 403, 'forbidden path', headers);
  const r = route(opts, segs);
  if (!r) return sendText(res, req, 404, 'not found', headers);
  const found = resolveInside(r[0], r[1]);
  if (!found) return sendText(res, req, 404, 'not found', headers);
  if (found.escaped) return sendText(res, req, 403, 'forbidden path', headers);
  const type = MIME[path.extname(found.file).toLowerCase()] || 'application/octet-stream';
  sendFile(req, res, found, type, headers);
}

// Keep-alive: a client reuses an idle connection until the time the server announced
// (Keep-Alive: timeout=N) minus a margin; Node's fetch keeps 1 s. With Node's default
// (close after 5 s, announce 5) a client whose process stalls for a moment sends its
// next request on a connection the server has just closed: "other side closed". The
// server therefore announces KEEP_ALIVE_ANNOUNCED and closes only KEEP_ALIVE_GRACE
// later, and waits longer for headers than it keeps connections (Node's advice).
const KEEP_ALIVE_ANNOUNCED_S = 60;
const KEEP_ALIVE_GRACE_MS = 5000;

/** Applies the keep-alive timeouts above to an http.Server. */
export function setKeepAlive(server) {
  server.keepAliveTimeout = KEEP_ALIVE_ANNOUNCED_S * 1000 + KEEP_ALIVE_GRACE_MS;
  server.headersTimeout = server.keepAliveTimeout + 1000;
  // Before the handler: it may answer (and send the headers) at once.
  server.prependListener('request', (req, res) => {
    if (res.shouldKeepAlive) res.setHeader('Keep-Alive', `timeout=${KEEP_ALIVE_ANNOUNCED_S}`);
  });
}

/** Starts the server; resolves to {server, url, port, close()}. */
export async function startServer(options = {}) {
  const opts = { ...parseArgs([]), ...options };
  if (opts.hubRoot) {
    opts.hub = await startHubStandin({ root: opts.hubRoot, host: opts.host, cdnPort: opts.hubCdnPort,
                                       dropOnce: opts.hubDropOnce, noRange: opts.hubNoRange });
  }
  const server = http.createServer((req, res) => {
    try { handle(opts, req, res); } catch (e) {
      if (!res.headersSent) sendText(res, req, 500, 'internal error', baseHeaders(opts));
      else res.destroy();
    }
  });
  setKeepAlive(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      const { port } = server.address();
      const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
      resolve({ server, port, url: `http://${host}:${port}/`, hub: opts.hub || null,
                close: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(() => ok()); })
                  .then(() => opts.hub && opts.hub.close()) });
    });
  });
}

async function main() {
  let opts;
  try { opts = parseArgs(process.argv.slice(2)); } catch (e) {
    process.stderr.write(`serve: ${e.message}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write('usage: scripts/serve [--port N (0 = any free)] [--host 127.0.0.1] [--no-isolation]\n' +
      '       [--web-dir D] [--wasm-dir D] [--models-dir D] [--data-dir D] [--hub-root D] [--quiet]\n' +
      '       [--hub-cdn-port N] [--hub-drop-once BYTES] [--hub-no-range]   (Hub stand-in test switches)\n');
    return;
  }
  const s = await startServer(opts);
  process.stdout.write(`serving ${s.url} (${opts.isolation ? 'cross-origin isolated' : 'no isolation'}; wasm from ${opts.wasmDir})\n`);
  if (s.hub) process.stdout.write(`Hub stand-in at ${s.url}hub (CDN ${s.hub.cdnOrigin})\n`);
  const stop = () => s.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => { process.stderr.write(`serve: ${e.message}\n`); process.exit(1); });
}
