// Sends one regular file over HTTP for scripts/serve: streamed from disk with
// backpressure (never read whole, so memory stays bounded whatever the file size and
// however slowly the client reads), with byte ranges as RFC 9110 §14 defines them:
//   one satisfiable range   -> 206, Content-Range: bytes a-b/size
//   several ranges          -> 206 multipart/byteranges (at most MAX_RANGES)
//   none satisfiable        -> 416, Content-Range: bytes */size
//   malformed, not "bytes", too many ranges, or a stale If-Range -> the whole file (200),
//   as the RFC allows a server to ignore a Range it will not serve.
import fs from 'node:fs';
import crypto from 'node:crypto';
import { Readable, pipeline } from 'node:stream';

export const MAX_RANGES = 16;

/**
 * Parses a Range header against a file of `size` bytes. Returns null when the whole
 * file should be sent (no header, malformed, another unit, more than MAX_RANGES),
 * 'unsatisfiable' when no range overlaps the file, else [{start, end}] (inclusive).
 */
export function parseRange(header, size) {
  if (typeof header !== 'string') return null;
  const m = /^bytes=(.*)$/i.exec(header.trim());
  if (!m) return null;
  const specs = m[1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length === 0 || specs.length > MAX_RANGES) return null;
  const out = [];
  for (const s of specs) {
    const r = /^(\d*)-(\d*)$/.exec(s);
    if (!r || (r[1] === '' && r[2] === '')) return null;
    if (r[1] === '') {                      // suffix: the last N bytes
      const n = Number(r[2]);
      if (n > 0 && size > 0) out.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const start = Number(r[1]);
    if (r[2] !== '' && Number(r[2]) < start) return null;   // "5-2" is invalid: ignore the header
    if (start >= size) continue;
    out.push({ start, end: r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1) });
  }
  return out.length ? out : 'unsatisfiable';
}

/** A validator for a file: changes when its size or modification time does. */
export function etagOf(found) {
  return `"${found.size.toString(36)}-${Math.floor(found.mtime.getTime()).toString(36)}"`;
}

// If-Range names the version the client holds; a range of another version is useless.
function ifRangeMatches(value, found) {
  if (value === undefined) return true;
  if (value.startsWith('"')) return value === etagOf(found);
  return value === found.mtime.toUTCString();
}

function streamTo(res, source) {
  // pipeline destroys the file stream when the client goes away (no leaked fds).
  pipeline(source, res, () => {});
}

/**
 * Answers req with the file found = {file, size, mtime}: status, headers (`headers`
 * plus Content-Type `type`, length, validators) and, unless HEAD, the bytes.
 * A read error after the headers went out ends the connection.
 */
export function sendFile(req, res, found, type, headers = {}) {
  const common = { ...headers, 'Accept-Ranges': 'bytes', ETag: etagOf(found),
                   'Last-Modified': found.mtime.toUTCString() };
  const head = req.method === 'HEAD';
  let ranges = parseRange(req.headers.range, found.size);
  if (ranges && !ifRangeMatches(req.headers['if-range'], found)) ranges = null;

  if (ranges === 'unsatisfiable') {
    const body = Buffer.from(`range not satisfiable: the file has ${found.size} bytes\n`);
    res.writeHead(416, { ...common, 'Content-Range': `bytes */${found.size}`,
                         'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length });
    return res.end(head ? undefined : body);
  }
  if (!ranges) {
    res.writeHead(200, { ...common, 'Content-Type': type, 'Content-Length': found.size });
    if (head || found.size === 0) return res.end();
    return streamTo(res, fs.createReadStream(found.file, { start: 0, end: found.size - 1 }));
  }
  if (ranges.length === 1) {
    const { start, end } = ranges[0];
    res.writeHead(206, { ...common, 'Content-Type': type, 'Content-Length': end - start + 1,
                         'Content-Range': `bytes ${start}-${end}/${found.size}` });
    if (head) return res.end();
    return streamTo(res, fs.createReadStream(found.file, { start, end }));
  }
  const boundary = crypto.randomBytes(12).toString('hex');
  const partHead = ranges.map(({ start, end }) => Buffer.from(
    `\r\n--${boundary}\r\nContent-Type: ${type}\r\nContent-Range: bytes ${start}-${end}/${found.size}\r\n\r\n`));
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const length = ranges.reduce((n, r, i) => n + partHead[i].length + r.end - r.start + 1, tail.length);
  res.writeHead(206, { ...common, 'Content-Type': `multipart/byteranges; boundary=${boundary}`,
                       'Content-Length': length });
  if (head) return res.end();
  async function* parts() {
    for (let i = 0; i < ranges.length; i++) {
      yield partHead[i];
      yield* fs.createReadStream(found.file, { start: ranges[i].start, end: ranges[i].end });
    }
    yield tail;
  }
  return streamTo(res, Readable.from(parts(), { objectMode: false }));
}
