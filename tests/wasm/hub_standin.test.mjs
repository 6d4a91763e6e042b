// The Hub stand-in of scripts/serve --hub-root (scripts/hub_standin.mjs): small files
// answered directly with X-Repo-Commit and ETag, weights by a 302 to a second port
// with X-Linked-Size / X-Linked-Etag / X-Repo-Commit, CORS on both, Range on the CDN
// (206 + Content-Range, suffix ranges, 416, If-Range), a moved main, and the two test
// switches (a connection dropped once mid-file, Range disabled).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { startServer } from '../../scripts/serve.mjs';

let tmp, root;
const weights = Buffer.alloc(300000);
for (let i = 0; i < weights.length; i++) weights[i] = (i * 131 + 7) & 255;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-hubsi-'));
  root = path.join(tmp, 'hub');
  fs.mkdirSync(path.join(root, 'org', 'm'), { recursive: true });
  fs.writeFileSync(path.join(root, 'org', 'm', 'config.json'), '{"n_layer": 2}');
  fs.writeFileSync(path.join(root, 'org', 'm', 'pytorch_model.bin'), weights);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// GET/HEAD without following redirects; resolves {status, headers, body} or {error, body} when cut.
function req(url, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve) => {
    const r = http.request(url, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (e) => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), error: e }));
      res.on('aborted', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), error: 'aborted' }));
    });
    r.on('error', (e) => resolve({ error: e, body: Buffer.alloc(0) }));
    r.end();
  });
}

async function withServer(opts, f) {
  const s = await startServer({ port: 0, quiet: true, hubRoot: root, ...opts });
  try { await f(s); } finally { await s.close(); }
}

test('small files directly, weights by 302 to the CDN, CORS and Hub headers on both', async () => {
  await withServer({}, async (s) => {
    const cfg = await req(`${s.url}hub/org/m/resolve/main/config.json`);
    assert.equal(cfg.status, 200);
    assert.equal(cfg.body.toString(), '{"n_layer": 2}');
    assert.match(cfg.headers['x-repo-commit'], /^[0-9a-f]{40}$/);
    assert.ok(cfg.headers.etag);
    assert.equal(cfg.headers['access-control-allow-origin'], '*');
    assert.match(cfg.headers['access-control-expose-headers'], /X-Repo-Commit/);
    const commit = cfg.headers['x-repo-commit'];

    const r = await req(`${s.url}hub/org/m/resolve/main/pytorch_model.bin`, { method: 'HEAD' });
    assert.equal(r.status, 302);
    assert.equal(Number(r.headers['x-linked-size']), weights.length);
    assert.equal(r.headers['x-repo-commit'], commit);
    assert.ok(r.headers['x-linked-etag']);
    assert.ok(r.headers.location.startsWith(s.hub.cdnOrigin + '/'), r.headers.location);
    // the page may only fetch from the CDN because the CSP names it
    assert.match(cfg.headers['content-security-policy'], new RegExp(`connect-src 'self' ${s.hub.cdnOrigin}`));

    const full = await req(r.headers.location);
    assert.equal(full.status, 200);
    assert.ok(full.body.equals(weights));
    assert.equal(full.headers['accept-ranges'], 'bytes');
    assert.equal(full.headers.etag, r.headers['x-linked-etag']);
    assert.equal(full.headers['access-control-allow-origin'], '*');

    // by commit as revision; an unknown revision or file is a 404
    assert.equal((await req(`${s.url}hub/org/m/resolve/${commit}/config.json`)).status, 200);
    assert.equal((await req(`${s.url}hub/org/m/resolve/${'0'.repeat(40)}/config.json`)).status, 404);
    assert.equal((await req(`${s.url}hub/org/m/resolve/main/model.safetensors`)).status, 404);
    assert.equal((await req(`${s.url}hub/org/nope/resolve/main/config.json`)).status, 404);
    assert.equal((await req(`${s.url}hub/org/m/resolve/main/..%2f..%2fetc`)).status, 403);
    const pre = await req(r.headers.location, { method: 'OPTIONS' });
    assert.equal(pre.status, 204);
    assert.match(pre.headers['access-control-allow-headers'], /Range/);
  });
});

test('the CDN honours Range: 206 with Content-Range, suffix ranges, 416, If-Range', async () => {
  await withServer({}, async (s) => {
    const loc = (await req(`${s.url}hub/org/m/resolve/main/pytorch_model.bin`)).headers.location;
    const a = await req(loc, { headers: { Range: 'bytes=1000-' } });
    assert.equal(a.status, 206);
    assert.equal(a.headers['content-range'], `bytes 1000-${weights.length - 1}/${weights.length}`);
    assert.ok(a.body.equals(weights.subarray(1000)));
    const b = await req(loc, { headers: { Range: 'bytes=10-19' } });
    assert.equal(b.status, 206);
    assert.ok(b.body.equals(weights.subarray(10, 20)));
    const tail = await req(loc, { headers: { Range: 'bytes=-100' } });
    assert.equal(tail.status, 206);
    assert.ok(tail.body.equals(weights.subarray(weights.length - 100)));
    const bad = await req(loc, { headers: { Range: `bytes=${weights.length}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], `bytes */${weights.length}`);
    const stale = await req(loc, { headers: { Range: 'bytes=5-', 'If-Range': '"other"' } });
    assert.equal(stale.status, 200);
    assert.equal(stale.body.length, weights.length);
  });
});

test('a moved main: a new commit, and the old redirect target is gone', async () => {
  await withServer({}, async (s) => {
    const before = await req(`${s.url}hub/org/m/resolve/main/pytorch_model.bin`, { method: 'HEAD' });
    const p = path.join(root, 'org', 'm', 'pytorch_model.bin');
    fs.writeFileSync(p, weights.subarray(0, 1000));
    fs.utimesSync(p, new Date(), new Date(Date.now() + 5000));
    const afterHead = await req(`${s.url}hub/org/m/resolve/main/pytorch_model.bin`, { method: 'HEAD' });
    assert.notEqual(afterHead.headers['x-repo-commit'], before.headers['x-repo-commit']);
    assert.notEqual(afterHead.headers['x-linked-etag'], before.headers['x-linked-etag']);
    assert.equal((await req(before.headers.location)).status, 404);
    assert.equal((await req(afterHead.headers.location)).body.length, 1000);
    fs.writeFileSync(p, weights);
  });
});

test('test switches: a connection dropped once mid-file; Range disabled', async () => {
  await withServer({ hubDropOnce: 100000 }, async (s) => {
    const loc = (await req(`${s.url}hub/org/m/resolve/main/pytorch_model.bin`)).headers.location;
    const cut = await req(loc);
    assert.ok(cut.error, 'the first download is cut');
    assert.equal(cut.body.length, 100000);
    assert.ok(cut.body.equals(weights.subarray(0, 100000)));
    const rest = await req(loc, { headers: { Range: 'bytes=100000-' } });
    assert.equal(rest.status, 206);
    assert.ok(Buffer.concat([cut.body, rest.body]).equals(weights));
    const again = await req(loc);
    assert.ok(!again.error && again.body.equals(weights), 'only once');
  });
  await withServer({ hubNoRange: true }, async (s) => {
    const loc = (await req(`${s.url}hub/org/m/resolve/main/pytorch_model.bin`)).headers.location;
    const r = await req(loc, { headers: { Range: 'bytes=1000-' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['accept-ranges'], undefined);
    assert.equal(r.body.length, weights.length);
  });
});
