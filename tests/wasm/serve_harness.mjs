// Shared by the scripts/serve tests: start the real script as a child process on a
// free port, stop it, and send raw HTTP/1.1 requests (no client-side normalisation).
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Starts scripts/serve with args; resolves to {proc, host, port} once it prints its URL. */
export function startServe(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(REPO, 'scripts', 'serve'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('serve did not start: ' + out)), 10000);
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/([^/\s]+):(\d+)\//);
      if (m) { clearTimeout(timer); resolve({ proc: p, host: m[1], port: Number(m[2]) }); }
    });
    p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited ${code}: ${out}`)); });
  });
}

/** Stops a server started by startServe (SIGTERM); resolves when it has exited. */
export function stopServe(p) {
  return new Promise((resolve) => {
    if (p.exitCode !== null) return resolve();
    p.removeAllListeners('exit');
    p.on('exit', resolve);
    p.kill('SIGTERM');
  });
}

/**
 * Sends one request exactly as given and reads the answer to the end of the
 * connection. Resolves to {status, headers (lower-case names), body (latin1 string),
 * bytes (Buffer of the body)}.
 */
export function rawRequest(port, method, target, extraHeaders = '') {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('end', () => {
      const data = Buffer.concat(chunks);
      const split = data.indexOf('\r\n\r\n');
      const head = data.subarray(0, split < 0 ? data.length : split).toString('latin1');
      const bytes = split < 0 ? Buffer.alloc(0) : data.subarray(split + 4);
      const lines = head.split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status, headers, body: bytes.toString('latin1'), bytes });
    });
    sock.write(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extraHeaders}\r\n`);
  });
}
