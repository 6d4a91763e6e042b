// scripts/serve: only GET/HEAD, only inside its roots (.., encoded .., absolute
// paths, symlinks), loopback by default, isolation + CSP headers on every answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startServe, stopServe as stop, rawRequest } from './serve_harness.mjs';

const SECRET = 'TOP-SECRET-CONTENT';

let tmp, proc, port;

// Sends a request line exactly as given (no client-side normalisation of "..").
const raw = (method, target, extraHeaders = '') => rawRequest(port, method, target, extraHeaders);

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-serve-'));
  const d = (n) => { fs.mkdirSync(path.join(tmp, n), { recursive: true }); return path.join(tmp, n); };
  const web = d('root/web'), wasm = d('root/wasm'), models = d('root/models'), hub = d('root/hub/org/repo');
  fs.writeFileSync(path.join(tmp, 'secret.txt'), SECRET);
  fs.writeFileSync(path.join(tmp, 'root', 'secret.txt'), SECRET);
  fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>t</title>');
  fs.writeFileSync(path.join(web, 'app.js'), 'export {};');
  fs.writeFileSync(path.join(web, '.hidden'), SECRET);
  fs.writeFileSync(path.join(wasm, 'm.wasm'), Buffer.from([0, 97, 115, 109, 1, 0, 0, 0]));
  fs.writeFileSync(path.join(models, 'tiny.gguf'), 'GGUF');
  fs.writeFileSync(path.join(hub, 'config.json'), '{"n_layer":2}');
  fs.symlinkSync(path.join(tmp, 'secret.txt'), path.join(web, 'escape.txt'));
  fs.symlinkSync(tmp, path.join(web, 'up'));
  fs.symlinkSync('/etc', path.join(models, 'etc'));
  fs.symlinkSync(path.join(web, 'app.js'), path.join(web, 'inside.js'));
  const s = await startServe(['--port', '0', '--web-dir', web, '--wasm-dir', wasm, '--models-dir', models,
                              '--data-dir', d('root/data'), '--hub-root', path.join(tmp, 'root/hub')]);
  proc = s.proc;
  port = s.port;
  assert.equal(s.host, '127.0.0.1');
});

after(async () => {
  if (proc) await stop(proc);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('serves files with the right MIME types and isolation headers', async () => {
  const idx = await raw('GET', '/');
  assert.equal(idx.status, 200);
  assert.match(idx.headers['content-type'], /^text\/html/);
  assert.match(idx.body, /<title>t<\/title>/);
  const js = await raw('GET', '/app.js');
  assert.match(js.headers['content-type'], /^text\/javascript/);
  const w = await raw('GET', '/build-wasm/m.wasm');
  assert.equal(w.status, 200);
  assert.equal(w.headers['content-type'], 'application/wasm');
  assert.equal(w.headers['content-length'], '8');
  const m = await raw('GET', '/models/tiny.gguf');
  assert.equal(m.headers['content-type'], 'application/octet-stream');
  assert.equal(m.body, 'GGUF');
});

test('COOP, COEP, CORP and CSP are on every response, errors included', async () => {
  for (const [method, target] of [['GET', '/'], ['GET', '/nope'], ['GET', '/../x'], ['POST', '/'],
                                  ['HEAD', '/app.js'], ['GET', '/build-wasm/m.wasm']]) {
    const r = await raw(method, target);
    assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin', `${method} ${target}`);
    assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', `${method} ${target}`);
    assert.equal(r.headers['cross-origin-resource-policy'], 'same-origin', `${method} ${target}`);
    const csp = r.headers['content-security-policy'];
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
    assert.doesNotMatch(csp, /unsafe-inline|'unsafe-eval'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  }
});

test('only GET and HEAD are answered', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
    const r = await raw(method, '/index.html', 'Content-Length: 0\r\n');
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.allow, 'GET, HEAD');
  }
  const h = await raw('HEAD', '/app.js');
  assert.equal(h.status, 200);
  assert.equal(h.headers['content-length'], String('export {};'.length));
  assert.equal(h.body, '');
});

test('dot-dot, encoded dot-dot and backslashes are refused', async () => {
  const targets = ['/../secret.txt', '/../../secret.txt', '/models/../../secret.txt', '/%2e%2e/secret.txt',
                   '/%2E%2E/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%2e%2e%2fsecret.txt',
                   '/build-wasm/..%2F..%2Fsecret.txt', '/..%5csecret.txt', '/..\\secret.txt',
                   '/%252e%252e/secret.txt', '/hub/org/repo/resolve/main/..%2f..%2fsecret.txt',
                   '/hub/org/resolve/main/../../secret.txt', '/./secret.txt', '/.hidden', '/%00',
                   '/%e0%a4%a'];
  for (const t of targets) {
    const r = await raw('GET', t);
    assert.ok(r.status === 403 || r.status === 404, `${t}: ${r.status}`);
    assert.ok(!r.body.includes(SECRET), t);
  }
  assert.equal((await raw('GET', '/%2e%2e/secret.txt')).status, 403);
  assert.equal((await raw('GET', '/..%2fsecret.txt')).status, 403);
});

test('absolute paths stay inside the root', async () => {
  for (const t of ['//etc/passwd', '/etc/passwd', `/${tmp}/secret.txt`, `//${tmp}/secret.txt`,
                   'http://127.0.0.1/../secret.txt', `file://${tmp}/secret.txt`, '*', 'secret.txt']) {
    const r = await raw('GET', t);
    assert.ok(r.status === 403 || r.status === 404 || r.status === 400, `${t}: ${r.status}`);
    assert.ok(!r.body.includes(SECRET) && !r.body.includes('root:'), t);
  }
});

test('symlinks that leave the root are refused, those inside are served', async () => {
  assert.equal((await raw('GET', '/escape.txt')).status, 403);
  assert.equal((await raw('GET', '/up/secret.txt')).status, 403);
  assert.equal((await raw('GET', '/models/etc/passwd')).status, 403);
  const ok = await raw('GET', '/inside.js');
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'export {};');
});

test('hub layout maps /hub/<org>/<repo>/resolve/<rev>/<file> and 404s the rest', async () => {
  const r = await raw('GET', '/hub/org/repo/resolve/main/config.json');
  assert.equal(r.status, 200);
  assert.equal(r.body, '{"n_layer":2}');
  assert.equal((await raw('HEAD', '/hub/org/repo/resolve/main/model.safetensors')).status, 404);
  assert.equal((await raw('GET', '/hub/org/repo/config.json')).status, 404);
});

test('loopback only by default: not reachable on other interfaces', async (t) => {
  const ext = Object.values(os.networkInterfaces()).flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal);
  if (!ext) return t.skip('no non-loopback IPv4 interface');
  const err = await new Promise((resolve) => {
    const s = net.connect(port, ext.address);
    s.on('connect', () => { s.destroy(); resolve(null); });
    s.on('error', resolve);
  });
  assert.ok(err && err.code === 'ECONNREFUSED', `connected via ${ext.address}`);
});

test('--no-isolation drops COOP/COEP but keeps the CSP', async () => {
  const s = await startServe(['--port', '0', '--no-isolation', '--web-dir', path.join(tmp, 'root/web')]);
  try {
    const saved = port;
    port = s.port;
    const r = await raw('GET', '/');
    port = saved;
    assert.equal(r.status, 200);
    assert.equal(r.headers['cross-origin-opener-policy'], undefined);
    assert.equal(r.headers['cross-origin-embedder-policy'], undefined);
    assert.match(r.headers['content-security-policy'], /default-src 'self'/);
  } finally {
    await stop(s.proc);
  }
});

test('bad options are refused with a message', async () => {
  await assert.rejects(startServe(['--bogus']), /unknown option --bogus/);
});
