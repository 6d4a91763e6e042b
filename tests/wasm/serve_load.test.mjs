// scripts/serve under load and its byte ranges: HEAD, 206 with Content-Range, 416,
// suffix and open ranges, multipart/byteranges, If-Range; then 200 concurrent clients
// on loopback (page, wasm, HEAD and Range slices of a model file, a few whole
// downloads) while stalled clients hold connections, with the server's peak RSS
// (VmHWM) measured: it must stay far below the size of the file it streams; and 200
// clients reusing connections as Node's fetch does (keep-alive), across a stall.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseRange } from '../../scripts/send_file.mjs';
import { startServe, stopServe, rawRequest } from './serve_harness.mjs';

const MiB = 1024 * 1024;
const BIG = 512 * MiB;            // the "model": much larger than the memory bound
const RSS_BOUND = 160 * MiB;       // allowed growth of the server's peak RSS under load (measured: 67-87)
const CLIENTS = 200;
const ROUNDS = 3;
const FULL_DOWNLOADS = 2;
const STALLED = 4;

let tmp, server, port, pageBytes, wasmBytes, wasmSha;

// Byte k of the model file: word w = floor(k/4) is (w * 2654435761) mod 2^32, little
// endian, so every slice is distinct and checkable without holding the file.
function expected(start, length) {
  const w0 = Math.floor(start / 4), w1 = Math.floor((start + length + 3) / 4);
  const words = new Uint32Array(w1 - w0);
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(w0 + i, 2654435761) >>> 0;
  const b = Buffer.from(words.buffer);
  return b.subarray(start - w0 * 4, start - w0 * 4 + length);
}

function writeBigFile(file) {
  const fd = fs.openSync(file, 'w');
  const chunk = 8 * MiB;
  for (let off = 0; off < BIG; off += chunk) fs.writeSync(fd, expected(off, Math.min(chunk, BIG - off)));
  fs.closeSync(fd);
}

// Current and peak (high-water mark) resident memory of a process, in bytes.
function status(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`no ${k} in /proc/${pid}/status: has the server exited?`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

function openFiles(pid) { return fs.readdirSync(`/proc/${pid}/fd`).length; }

// A seeded generator for offsets, so a failure names a reproducible request.
function seeded(seed) {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; return s / 2 ** 32; };
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-serve-load-'));
  for (const d of ['web', 'wasm', 'models', 'data']) fs.mkdirSync(path.join(tmp, d));
  pageBytes = Buffer.from(`<!doctype html><title>load</title>${'<p>lab</p>'.repeat(2000)}`);
  fs.writeFileSync(path.join(tmp, 'web', 'index.html'), pageBytes);
  wasmBytes = crypto.randomBytes(512 * 1024);   // the real loralab_mt.wasm is about 350 KB
  wasmSha = crypto.createHash('sha256').update(wasmBytes).digest('hex');
  fs.writeFileSync(path.join(tmp, 'wasm', 'loralab_mt.wasm'), wasmBytes);
  fs.writeFileSync(path.join(tmp, 'models', 'small.bin'), expected(0, 1000));
  writeBigFile(path.join(tmp, 'models', 'big.gguf'));
  server = await startServe(['--port', '0', '--quiet', '--web-dir', path.join(tmp, 'web'),
    '--wasm-dir', path.join(tmp, 'wasm'), '--models-dir', path.join(tmp, 'models'),
    '--data-dir', path.join(tmp, 'data')]);
  port = server.port;
  // scripts/serve execs node: the child's pid is the server's.
  assert.match(fs.readFileSync(`/proc/${server.proc.pid}/comm`, 'utf8'), /node/);
});

after(async () => {
  if (server) await stopServe(server.proc);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const raw = (method, target, headers = '') => rawRequest(port, method, target, headers);

test('parseRange follows RFC 9110', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), [{ start: 0, end: 9 }]);
  assert.deepEqual(parseRange('bytes=90-', 100), [{ start: 90, end: 99 }]);
  assert.deepEqual(parseRange('bytes=-10', 100), [{ start: 90, end: 99 }]);
  assert.deepEqual(parseRange('bytes=-1000', 100), [{ start: 0, end: 99 }]);
  assert.deepEqual(parseRange('bytes=95-200', 100), [{ start: 95, end: 99 }]);
  assert.deepEqual(parseRange('bytes=0-0, 5-6', 100), [{ start: 0, end: 0 }, { start: 5, end: 6 }]);
  assert.deepEqual(parseRange('bytes=100-, 0-1', 100), [{ start: 0, end: 1 }]);
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  for (const bad of [undefined, '', 'bytes=', 'bytes=-', 'bytes=5-2', 'items=0-1', 'bytes=a-b', 'bytes 0-1',
                     'bytes=0-1-2', `bytes=${Array.from({ length: 17 }, (_, i) => `${i}-${i}`).join(',')}`]) {
    assert.equal(parseRange(bad, 100), null, String(bad));
  }
});

test('HEAD answers headers only, with the length and Accept-Ranges', async () => {
  const h = await raw('HEAD', '/models/big.gguf');
  assert.equal(h.status, 200);
  assert.equal(h.headers['content-length'], String(BIG));
  assert.equal(h.headers['accept-ranges'], 'bytes');
  assert.match(h.headers.etag, /^"[0-9a-z]+-[0-9a-z]+"$/);
  assert.equal(h.bytes.length, 0);
  const hr = await raw('HEAD', '/models/big.gguf', 'Range: bytes=10-19\r\n');
  assert.equal(hr.status, 206);
  assert.equal(hr.headers['content-range'], `bytes 10-19/${BIG}`);
  assert.equal(hr.headers['content-length'], '10');
  assert.equal(hr.bytes.length, 0);
});

test('one range: 206 with Content-Range and exactly those bytes', async () => {
  for (const [spec, start, end] of [['0-0', 0, 0], ['1000-1999', 1000, 1999], [`${BIG - 5}-`, BIG - 5, BIG - 1],
                                    ['-7', BIG - 7, BIG - 1], [`${BIG - 3}-${BIG + 100}`, BIG - 3, BIG - 1]]) {
    const r = await raw('GET', '/models/big.gguf', `Range: bytes=${spec}\r\n`);
    assert.equal(r.status, 206, spec);
    assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${BIG}`, spec);
    assert.equal(r.headers['content-length'], String(end - start + 1), spec);
    assert.ok(r.bytes.equals(expected(start, end - start + 1)), spec);
  }
});

test('unsatisfiable ranges get 416 with the size; malformed ones the whole file', async () => {
  for (const spec of ['1000-', '1010-1020', '-0', '2000-, 1000-']) {
    const r = await raw('GET', '/models/small.bin', `Range: bytes=${spec}\r\n`);
    assert.equal(r.status, 416, spec);
    assert.equal(r.headers['content-range'], 'bytes */1000', spec);
    assert.match(r.body, /range not satisfiable: the file has 1000 bytes/);
  }
  for (const spec of ['bytes=5-2', 'items=0-10', 'bytes=x-']) {
    const r = await raw('GET', '/models/small.bin', `Range: ${spec}\r\n`);
    assert.equal(r.status, 200, spec);
    assert.ok(r.bytes.equals(expected(0, 1000)), spec);
  }
});

test('several ranges: multipart/byteranges with each part and its Content-Range', async () => {
  const r = await raw('GET', '/models/small.bin', 'Range: bytes=0-3, 500-509, -2\r\n');
  assert.equal(r.status, 206);
  const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(r.headers['content-type']);
  assert.ok(m, r.headers['content-type']);
  assert.equal(Number(r.headers['content-length']), r.bytes.length);
  const text = r.bytes.toString('latin1');
  const parts = text.split(`--${m[1]}`);
  assert.equal(parts.at(-1), '--\r\n');
  const got = parts.slice(1, -1).map((p) => {
    const [head, body] = p.replace(/^\r\n/, '').split('\r\n\r\n');
    return { range: /Content-Range: bytes (\d+)-(\d+)\/1000/.exec(head).slice(1).map(Number),
             type: /Content-Type: (.*)/.exec(head)[1], body: Buffer.from(body.replace(/\r\n$/, ''), 'latin1') };
  });
  assert.deepEqual(got.map((g) => g.range), [[0, 3], [500, 509], [998, 999]]);
  for (const g of got) {
    assert.equal(g.type, 'application/octet-stream');
    assert.ok(g.body.equals(expected(g.range[0], g.range[1] - g.range[0] + 1)));
  }
});

test('If-Range: the current ETag gets the range, a stale one the whole file', async () => {
  const { etag } = (await raw('HEAD', '/models/small.bin')).headers;
  const ok = await raw('GET', '/models/small.bin', `Range: bytes=0-9\r\nIf-Range: ${etag}\r\n`);
  assert.equal(ok.status, 206);
  const stale = await raw('GET', '/models/small.bin', 'Range: bytes=0-9\r\nIf-Range: "old-version"\r\n');
  assert.equal(stale.status, 200);
  assert.equal(stale.bytes.length, 1000);
});

// ---------------------------------------------------------------- load

// One request on its own connection. Not keep-alive: when this busy test process is
// starved of CPU for longer than the server's keep-alive timeout (5 s), it would send
// its next request on a connection the server has already closed and see "socket hang
// up" — a race browsers hide by retrying, and not a fault of the server.
function request(agent, method, pathName, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathName, headers, agent }, (res) => {
      const hash = pathName.endsWith('.wasm') ? crypto.createHash('sha256') : null;
      const chunks = [];
      let length = 0;
      const keep = pathName !== '/models/big.gguf' || headers.Range;
      res.on('data', (d) => { length += d.length; hash?.update(d); if (keep) chunks.push(d); });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, length,
                                    sha: hash?.digest('hex'), body: keep ? Buffer.concat(chunks) : null }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function client(id, failures) {
  let what = '';
  const get = (method, pathName, headers) => {
    what = `${method} ${pathName} ${headers ? headers.Range : ''}`;
    return request(agent, method, pathName, headers);
  };
  const agent = new http.Agent({ keepAlive: false, maxSockets: 1 });
  const rand = seeded(id + 1);
  const check = (label, ok) => { if (!ok) failures.push(`client ${id}: ${label}`); };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const page = await get('GET', '/');
      check('GET /', page.status === 200 && page.body.equals(pageBytes));
      const wasm = await get('GET', '/build-wasm/loralab_mt.wasm');
      check('GET wasm', wasm.status === 200 && wasm.sha === wasmSha);
      const head = await get('HEAD', '/models/big.gguf');
      check('HEAD model', head.status === 200 && Number(head.headers['content-length']) === BIG && head.length === 0);
      const len = 1 + Math.floor(rand() * 256 * 1024);
      const start = Math.floor(rand() * (BIG - len));
      const slice = await get('GET', '/models/big.gguf', { Range: `bytes=${start}-${start + len - 1}` });
      check(`Range ${start}+${len}`, slice.status === 206 &&
            slice.headers['content-range'] === `bytes ${start}-${start + len - 1}/${BIG}` &&
            slice.body.equals(expected(start, len)));
      const tail = await get('GET', '/models/big.gguf', { Range: 'bytes=-4096' });
      check('suffix range', tail.status === 206 && tail.body.equals(expected(BIG - 4096, 4096)));
      const none = await get('GET', '/models/big.gguf', { Range: `bytes=${BIG}-` });
      check('416', none.status === 416 && none.headers['content-range'] === `bytes */${BIG}`);
    }
  } catch (e) {
    failures.push(`client ${id}: ${what}: ${e.message}`);
  } finally {
    agent.destroy();
  }
}

// A client that asks for the whole model and then stops reading: the server must
// wait on it (backpressure) without buffering the file or holding up anyone else.
function stalledClient() {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write('GET /models/big.gguf HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    });
    const s = { sock, received: 0, ended: false, firstData: null };
    sock.on('data', (d) => {
      s.received += d.length;
      if (!s.firstData) { s.firstData = d; sock.pause(); resolve(s); }
    });
    sock.on('end', () => { s.ended = true; });
    sock.on('error', reject);
  });
}

test(`${CLIENTS} concurrent clients, stalled readers, whole downloads: no failure, bounded server memory`,
  { timeout: 180000 }, async () => {
    const pid = server.proc.pid;
    const mb = (b) => (b / MiB).toFixed(1);
    const warm = await raw('GET', '/models/big.gguf', 'Range: bytes=0-65535\r\n');
    assert.equal(warm.status, 206);
    const base = status(pid);
    const baseFds = openFiles(pid);

    const stalled = await Promise.all(Array.from({ length: STALLED }, stalledClient));
    // A slow-loris request: headers never finished.
    const loris = net.connect(port, '127.0.0.1');
    loris.on('error', () => {});
    loris.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');

    // Peak RSS: the kernel's high-water mark, plus samples; over the bound fails at once.
    let peak = base.hwm, sampler;
    const overBound = new Promise((_, reject) => {
      sampler = setInterval(() => {
        try { peak = Math.max(peak, status(pid).hwm); } catch (e) { return reject(e); }
        if (peak - base.hwm >= RSS_BOUND) {
          reject(new Error(`server peak RSS grew by ${mb(peak - base.hwm)} MiB (bound ${mb(RSS_BOUND)} MiB) ` +
                           `while streaming a ${mb(BIG)} MiB file`));
        }
      }, 25);
    });
    const failures = [];
    const t0 = Date.now();
    const whole = Array.from({ length: FULL_DOWNLOADS }, async (_, i) => {
      const agent = new http.Agent({ keepAlive: false });
      try {
        const r = await request(agent, 'GET', '/models/big.gguf');
        if (r.status !== 200 || r.length !== BIG) failures.push(`whole download ${i}: ${r.status}, ${r.length} bytes`);
      } catch (e) { failures.push(`whole download ${i}: ${e.message}`); }
    });
    try {
      await Promise.race([overBound,
        Promise.all([...Array.from({ length: CLIENTS }, (_, i) => client(i, failures)), ...whole])]);
    } finally {
      clearInterval(sampler);
      if (failures.length || peak - base.hwm >= RSS_BOUND) {
        for (const s of stalled) s.sock.destroy();
        loris.destroy();
      }
    }
    const seconds = (Date.now() - t0) / 1000;
    peak = Math.max(peak, status(pid).hwm);

    assert.deepEqual(failures, []);
    // The stalled readers are still waiting, their connections open and unfinished.
    for (const s of stalled) {
      assert.equal(s.ended, false);
      assert.ok(s.received < BIG / 4, `a stalled client received ${s.received} bytes`);
    }
    // Resumed, a stalled reader gets the right bytes from where it stopped.
    const s0 = stalled[0];
    const headEnd = s0.firstData.indexOf('\r\n\r\n') + 4;
    assert.match(s0.firstData.subarray(0, headEnd).toString('latin1'), /^HTTP\/1\.1 200 /);
    const more = await new Promise((resolve) => {
      const chunks = [s0.firstData.subarray(headEnd)];
      let n = chunks[0].length;
      s0.sock.removeAllListeners('data');
      s0.sock.on('data', (d) => {
        chunks.push(d); n += d.length;
        if (n >= 8 * MiB) { s0.sock.pause(); resolve(Buffer.concat(chunks)); }
      });
      s0.sock.resume();
    });
    assert.ok(more.equals(expected(0, more.length)), 'bytes after resuming');
    for (const s of stalled) s.sock.destroy();
    loris.destroy();
    // Clients gone mid-file: their file streams are closed with them (no leaked fds).
    let fds = openFiles(pid);
    for (let i = 0; i < 100 && fds > baseFds; i++) {
      await new Promise((r) => setTimeout(r, 50));
      fds = openFiles(pid);
    }
    assert.ok(fds <= baseFds, `the server holds ${fds} descriptors after the clients left, ${baseFds} before`);

    const growth = peak - base.hwm;
    console.log(`# serve under load: ${CLIENTS} clients x ${ROUNDS} rounds + ${FULL_DOWNLOADS} whole downloads of ` +
      `${mb(BIG)} MiB in ${seconds.toFixed(1)} s; server RSS ${mb(base.rss)} MiB before, peak ${mb(peak)} ` +
      `MiB (growth ${mb(growth)} MiB, bound ${mb(RSS_BOUND)} MiB)`);
    assert.ok(growth < RSS_BOUND, `server peak RSS grew by ${mb(growth)} MiB while streaming a ${mb(BIG)} MiB file`);
  });

// ---------------------------------------------------------------- keep-alive reuse

test(`${CLIENTS} fetch clients x 5 files on reused connections, across a 5.5 s stall: no failure`,
  { timeout: 120000 }, async () => {
    // Node's fetch pools connections and reuses them until the time the server
    // announces in Keep-Alive, less 1 s. A client process that stalls (a busy CI
    // machine, a laptop waking up) past the moment the server closes an idle
    // connection sends its next request on a closed socket: UND_ERR_SOCKET, "other
    // side closed". With Node's default 5 s server timeout this stall failed 186 of
    // 1,000 requests; the server must keep connections well past what it announces.
    const files = () => [['/', {}, pageBytes], ['/build-wasm/loralab_mt.wasm', {}, wasmBytes],
                         ['/models/small.bin', {}, expected(0, 1000)],
                         ['/models/big.gguf', { Range: 'bytes=0-4095' }, expected(0, 4096)],
                         ['/models/big.gguf', { Range: 'bytes=-100' }, expected(BIG - 100, 100)]];
    const want = files();
    const failures = [];
    let done = 0;
    const get = async (id, k) => {
      const [f, headers, bytes] = want[k];
      try {
        const r = await fetch(`http://127.0.0.1:${port}${f}`, { headers });
        const body = Buffer.from(await r.arrayBuffer());
        if (!body.equals(bytes)) failures.push(`client ${id} ${f}: ${r.status}, ${body.length} bytes`);
        done++;
      } catch (e) {
        failures.push(`client ${id} ${f}: ${e.cause?.code || ''} ${e.cause?.message || e.message}`);
      }
    };
    // Every client's first file: the pool now holds idle connections.
    await Promise.all(Array.from({ length: CLIENTS }, (_, id) => get(id, 0)));
    const t = Date.now();
    while (Date.now() - t < 5500); // the stall: this process runs nothing, timers included
    await Promise.all(Array.from({ length: CLIENTS }, async (_, id) => { for (let k = 1; k < 5; k++) await get(id, k); }));
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${CLIENTS * 5} requests failed`);
    assert.equal(done, CLIENTS * 5);
    const h = await fetch(`http://127.0.0.1:${port}/`);
    await h.arrayBuffer();
    assert.match(h.headers.get('keep-alive') || '', /^timeout=\d+$/, 'the server announces its keep-alive time');
  });
