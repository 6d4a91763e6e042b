// Models from the Hugging Face Hub (or local files), inside the worker (classic
// script, defines self.LabHub). The checkpoint is never held whole: its bytes go from
// the network (or File.stream()) straight into the wasm importer (lab_import_*),
// which converts each tensor to Q8_0 inside the GGUF it builds in wasm memory.
//
//  - config.json first: its X-Repo-Commit names the commit main resolves to; with the
//    weights' ETag it keys the cache, so a moved main downloads again and an
//    unchanged one loads from the cache.
//  - A zip pytorch_model.bin keeps its entry sizes in the central directory at the
//    end: that end is fetched first with an HTTP Range request (File.slice locally).
//  - An interrupted download resumes with Range from the last byte received; a
//    server without Range is told apart with a clear message.
//  - The memory check happens in lab_import_begin, before the weights are fetched.
//  - Converted models are cached in OPFS (Cache Storage would hit its quota with
//    GB-sized entries); a cache entry is written through a writable that is only
//    committed when complete, so a cancel or error leaves none.
'use strict';

self.LabHub = (function () {
  const MB = 1024 * 1024;
  const TAIL = MB;                    // bytes fetched from a .bin's end for its zip directory
  const RETRIES = 5;                  // resumptions of one download
  const CACHE_DIR = 'loralab-models';

  function fileUrl(base, repo, revision, file) {
    const b = String(base).replace(/\/+$/, '');
    const enc = (s) => String(s).split('/').map(encodeURIComponent).join('/');
    return `${b}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(file)}`;
  }

  function checkRepo(repo, revision) {
    if (!/^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(repo) || repo.includes('..')) {
      throw new Error(`"${repo}" is not a Hub repo id (expected e.g. microsoft/DialoGPT-small or gpt2)`);
    }
    if (!/^[\w.-]+$/.test(revision) || revision.includes('..')) {
      throw new Error(`"${revision}" is not a revision (a branch, tag or commit hash)`);
    }
  }

  const cancelled = () => Object.assign(new Error('cancelled'), { cancelled: true });
  const mb = (n) => (n / MB).toFixed(n < 10 * MB ? 1 : 0) + ' MB';

  /** Size and ETag of a file on the Hub (HEAD, following the CDN redirect); null on 404. */
  async function probe(url, signal) {
    const r = await fetch(url, { method: 'HEAD', signal });
    if (r.status === 404) return null;
    if (!r.ok) throw new Error(`HEAD ${url}: HTTP ${r.status}`);
    const size = Number(r.headers.get('content-length') || r.headers.get('x-linked-size'));
    return { size: Number.isFinite(size) ? size : 0, etag: r.headers.get('etag') || r.headers.get('x-linked-etag') || '' };
  }

  /** A small file's text and the Hub's headers. */
  async function getText(url, signal) {
    const r = await fetch(url, { signal });
    if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}${r.status === 404 ? ' (not found)' : ''}`);
    return { text: await r.text(), commit: r.headers.get('x-repo-commit') || '', etag: r.headers.get('etag') || '' };
  }

  /** Parameter count of a GPT-2, Llama or Qwen2 config (HF config.json); throws on
   *  a config that names none of them or lacks their sizes. */
  function paramsOf(cfg) {
    if (cfg.model_type === 'llama' || cfg.model_type === 'qwen2') {
      const L = cfg.num_hidden_layers, d = cfg.hidden_size, V = cfg.vocab_size, H = cfg.num_attention_heads;
      const KV = cfg.num_key_value_heads || H, F = cfg.intermediate_size;
      if (![L, d, V, H, KV, F].every((x) => Number.isInteger(x) && x > 0)) {
        throw new Error('config.json is missing num_hidden_layers, hidden_size, num_attention_heads, intermediate_size or vocab_size');
      }
      const kv = (d / H) * KV, bias = cfg.model_type === 'qwen2' ? d + 2 * kv : 0;
      const block = 2 * d + d * d + 2 * d * kv + bias + d * d + 3 * d * F;
      return V * d * (cfg.tie_word_embeddings === false ? 2 : 1) + L * block + d;
    }
    const L = cfg.n_layer, d = cfg.n_embd, V = cfg.vocab_size, P = cfg.n_positions || cfg.n_ctx;
    const ff = cfg.n_inner || 4 * d;
    if (![L, d, V, P].every((x) => Number.isInteger(x) && x > 0)) {
      throw new Error('config.json is missing n_layer, n_embd, vocab_size or n_positions');
    }
    const block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d);
    return V * d + P * d + L * block + 2 * d;
  }

  /** Progress text: bytes, rate, time left, then the importer's tensor count. */
  function meter(label, total, imp, progress) {
    const t0 = performance.now();
    return (loaded, force) => {
      const s = (performance.now() - t0) / 1000;
      const rate = s > 0.2 ? loaded / s : 0;
      const p = imp ? imp.progress() : null;
      const parts = [label];
      if (rate) parts.push(`${(rate / MB).toFixed(1)} MB/s`);
      if (rate && total > loaded) parts.push(`${Math.ceil((total - loaded) / rate)} s left`);
      if (p && p.tensors_total) parts.push(`tensor ${p.tensors_done} of ${p.tensors_total}`);
      progress({ phase: 'download', loaded, total, rate, text: parts.join(', '),
                 tensorsDone: p ? p.tensors_done : 0, tensorsTotal: p ? p.tensors_total : 0 }, force);
    };
  }

  /**
   * Streams url into sink(u8) from byte 0 to size, resuming with Range after an
   * interruption (the response must be a 206 starting at the next byte, with the
   * same ETag). tick(loaded) reports progress. Throws {cancelled} when signal aborts.
   */
  async function streamUrl(url, size, etag, sink, tick, signal) {
    let got = 0, tries = 0, lastError = null;
    while (got < size || size === 0) {
      if (signal.aborted) throw cancelled();
      let r;
      try {
        // no-store: GBs of weights need not land in the HTTP cache too (and a cached
        // tail would turn this GET into a sparse range request)
        r = await fetch(url, { signal, cache: 'no-store', headers: got ? { Range: `bytes=${got}-` } : {} });
      } catch (e) {
        if (signal.aborted) throw cancelled();
        if (++tries > RETRIES) throw new Error(`downloading ${url}: ${e.message}`);
        lastError = e;
        await new Promise((ok) => setTimeout(ok, 500 * tries));
        continue;
      }
      if (got === 0) {
        if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
        if (size === 0) size = Number(r.headers.get('content-length')) || 0;
      } else {
        if (r.status === 200) {
          r.body && r.body.cancel();
          throw new Error(`the download broke off after ${mb(got)} of ${mb(size)} (${lastError && lastError.message}), ` +
            'and the server does not support resuming it (HTTP Range requests): try again');
        }
        const m = /^bytes (\d+)-/.exec(r.headers.get('content-range') || '');
        if (r.status !== 206 || !m || Number(m[1]) !== got) {
          throw new Error(`resuming the download at byte ${got}: the server answered HTTP ${r.status} ${r.headers.get('content-range') || ''}`);
        }
        const e2 = r.headers.get('etag');
        if (etag && e2 && e2 !== etag) throw new Error('the file changed on the server during the download: load it again');
      }
      const reader = r.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (signal.aborted) throw cancelled();
          sink(value);
          got += value.length;
          tick(got);
        }
      } catch (e) {
        if (e.cancelled || signal.aborted) { reader.cancel().catch(() => {}); throw cancelled(); }
        if (e.importer) throw e;                   // a conversion error, not the network
        lastError = e;
      }
      if (size === 0) return got;
      if (got < size) {
        if (++tries > RETRIES) throw new Error(`downloading ${url}: the connection kept breaking (${lastError && lastError.message})`);
        lastError = lastError || new Error('the connection closed early');
        tick(got, true);
      }
    }
    return got;
  }

  // ---- cache: OPFS directory CACHE_DIR with one .gguf per entry and index.json.
  async function cacheDir(create) {
    if (!(self.navigator && navigator.storage && navigator.storage.getDirectory)) return null;
    const root = await navigator.storage.getDirectory();
    try { return await root.getDirectoryHandle(CACHE_DIR, { create }); } catch (e) { return null; }
  }

  async function readIndex(dir) {
    try {
      const f = await (await dir.getFileHandle('index.json')).getFile();
      const list = JSON.parse(await f.text());
      return Array.isArray(list) ? list : [];
    } catch (e) { return []; }
  }

  async function writeIndex(dir, list) {
    const w = await (await dir.getFileHandle('index.json', { create: true })).createWritable();
    await w.write(JSON.stringify(list));
    await w.close();
  }

  const fileOf = (key) => 'm-' + Array.from(new TextEncoder().encode(key))
    .reduce((h, b) => (Math.imul(h, 31) + b) >>> 0, 7).toString(16) + '-' + key.replace(/[^A-Za-z0-9._-]/g, '_').slice(-80) + '.gguf';

  /** Cached models: [{key, repo, revision, commit, etag, weights, bytes, savedAt}]. */
  async function listCache() {
    const dir = await cacheDir(false);
    if (!dir) return [];
    const list = await readIndex(dir), out = [];
    for (const e of list) {   // only entries whose file is really there and whole
      try {
        const f = await (await dir.getFileHandle(e.file)).getFile();
        if (f.size === e.bytes) out.push(e);
      } catch (err) { /* gone */ }
    }
    return out;
  }

  async function cacheLookup(key) {
    const dir = await cacheDir(false);
    if (!dir) return null;
    const e = (await readIndex(dir)).find((x) => x.key === key);
    if (!e) return null;
    try {
      const file = await (await dir.getFileHandle(e.file)).getFile();
      return file.size === e.bytes ? { entry: e, file } : null;
    } catch (err) { return null; }
  }

  /** Writes the loaded model under key; resolves 'OPFS' or null (no OPFS, quota). Cancel aborts it. */
  async function cachePut(key, meta, lab, signal) {
    const dir = await cacheDir(true);
    if (!dir) return null;
    const file = fileOf(key);
    let w = null;
    try {
      w = await (await dir.getFileHandle(file, { create: true })).createWritable();
      for (const chunk of lab.modelChunks()) {
        if (signal.aborted) throw cancelled();
        await w.write(chunk);
      }
      await w.close();
      w = null;
      const list = (await readIndex(dir)).filter((x) => x.key !== key);
      list.push({ ...meta, key, file, bytes: lab.modelSize(), savedAt: Date.now() });
      await writeIndex(dir, list);
      return 'OPFS';
    } catch (e) {
      if (w) await w.abort().catch(() => {});   // the swap file is discarded: no partial entry
      await dir.removeEntry(file).catch(() => {});
      if (e.cancelled) throw e;
      return null;
    }
  }

  async function deleteCached(key) {
    const dir = await cacheDir(false);
    if (!dir) return;
    const list = await readIndex(dir);
    const e = list.find((x) => x.key === key);
    if (e) await dir.removeEntry(e.file).catch(() => {});
    await writeIndex(dir, list.filter((x) => x.key !== key));
  }

  async function clearCache() {
    if (self.caches) await caches.delete('loralab-models-v1');   // the previous version's store
    const root = self.navigator && navigator.storage && navigator.storage.getDirectory ? await navigator.storage.getDirectory() : null;
    if (root) await root.removeEntry(CACHE_DIR, { recursive: true }).catch(() => {});
  }

  /** Async chunks of a Blob/File (File.stream()), for the importer or a cached GGUF. */
  async function* blobChunks(blob, signal) {
    const reader = blob.stream().getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (signal && signal.aborted) throw cancelled();
        yield value;
      }
    } finally { reader.cancel().catch(() => {}); }
  }

  // The importer's errors are conversion errors, not network ones.
  function feeder(imp) {
    return (u8) => {
      try { imp.feed(u8); } catch (e) { e.importer = true; throw e; }
    };
  }

  /**
   * The memory check before any weight is fetched: everything the import holds at
   * its peak (the converted model, the largest tensor held, buffers) against what
   * wasm memory can still give. Throws a refusal naming both.
   */
  function checkMemory(lab, what, configText) {
    const m = lab.importCheck(configText, 'q8_0');
    let avail = m.bytes_available;
    const dm = self.navigator && navigator.deviceMemory;    // a coarse hint, in GB
    if (dm && avail > dm * 1024 * MB * 0.75) avail = dm * 1024 * MB * 0.75;
    if (avail >= 0 && m.bytes_needed > avail) {
      throw new Error(`Not enough memory for ${what}: importing this model needs about ${Math.round(m.bytes_needed / MB)} MB ` +
        `at its peak (the converted model ${Math.round(m.gguf_bytes / MB)} MB, the largest tensor and buffers ` +
        `${Math.round((m.bytes_needed - m.gguf_bytes) / MB)} MB), but only ${Math.round(avail / MB)} MB are available. ` +
        'Choose a smaller model.');
    }
    return m;
  }

  function beginImport(lab, what, files, name) {
    checkMemory(lab, what, files.config);
    return lab.importer({ ...files, type: 'q8_0', name });
  }

  /** 1 for the Llama family's config.json (llama, qwen2), whose tokenizer is tokenizer.json. */
  const isLlama = (cfg) => cfg && (cfg.model_type === 'llama' || cfg.model_type === 'qwen2');

  /**
   * The tokenizer's files for the importer: a Llama-family repo's tokenizer.json and
   * tokenizer_config.json (Qwen2.5's repos have vocab.json + merges.txt too, but only
   * tokenizer.json holds the special tokens and the pre-tokenizer); GPT-2's vocab.json +
   * merges.txt, or tokenizer.json when a repo has no vocab.json.
   */
  async function tokenizerFiles(cfg, url, signal) {
    const json = async () => {
      const [tok, tc] = await Promise.all([getText(url('tokenizer.json'), signal),
        getText(url('tokenizer_config.json'), signal).catch(() => null)]);
      return { tokenizer: tok.text, tokenizerConfig: tc ? tc.text : null };
    };
    if (isLlama(cfg)) return json();
    if (!await probe(url('vocab.json'), signal)) return json();
    const [vocab, merges] = await Promise.all([getText(url('vocab.json'), signal), getText(url('merges.txt'), signal)]);
    return { vocab: vocab.text, merges: merges.text };
  }

  /**
   * Fetches repo@revision from base (default the Hub) into the module, streamed and
   * converted to Q8_0, or from the cache. progress({phase, loaded, total, text}).
   * Returns {info, fromCache, weights, cachedIn, commit, bytes}.
   */
  async function load({ base, repo, revision }, lab, progress, signal) {
    base = base || 'https://huggingface.co';
    revision = revision || 'main';
    checkRepo(repo, revision);
    const url = (f) => fileUrl(base, repo, revision, f);
    progress({ phase: 'probe', loaded: 0, total: 0, text: `${repo}: resolving ${revision}` }, true);
    const config = await getText(url('config.json'), signal);
    let cfg;
    try { cfg = JSON.parse(config.text); } catch (e) { throw new Error(`${repo}: config.json is not JSON (${e.message})`); }
    paramsOf(cfg);
    checkMemory(lab, repo, config.text);
    const keyOf = (id) => `${base}|${repo}|${id}`;
    if (config.commit) {
      const hit = await cacheLookup(keyOf(config.commit));
      if (hit) return fromCache(hit, lab, progress, signal);
    }
    let weights = 'model.safetensors';
    let w = await probe(url(weights), signal);
    if (!w) { weights = 'pytorch_model.bin'; w = await probe(url(weights), signal); }
    if (!w) throw new Error(`${repo}@${revision} has neither model.safetensors nor pytorch_model.bin`);
    const id = config.commit || (w.etag && `etag:${w.etag}`) || '';
    if (!config.commit && id) {
      const hit = await cacheLookup(keyOf(id));
      if (hit) return fromCache(hit, lab, progress, signal);
    }
    const imp = beginImport(lab, repo, { config: config.text, ...await tokenizerFiles(cfg, url, signal) }, repo);
    let info;
    try {
      if (weights.endsWith('.bin') && w.size > 0) await fetchTail(url(weights), w.size, imp, signal);
      const tick = meter(`${repo}: downloading and converting ${weights}`, w.size, imp, progress);
      await streamUrl(url(weights), w.size, w.etag, feeder(imp), tick, signal);
      progress({ phase: 'convert', loaded: w.size, total: w.size, text: `${repo}: finishing the conversion` }, true);
      info = imp.finish();
    } catch (e) {
      imp.abort();
      throw e;
    }
    let cachedIn = null;
    if (id) {
      progress({ phase: 'cache', loaded: 0, total: 0, text: `${repo}: saving the converted model in the browser` }, true);
      cachedIn = await cachePut(keyOf(id), { repo, revision, commit: config.commit, etag: w.etag, weights, base }, lab, signal);
    }
    return { info, fromCache: false, weights, cachedIn, commit: config.commit, bytes: lab.modelSize() };
  }

  /** The zip directory at a .bin's end (Range); a server without Range is noted, not fatal. */
  async function fetchTail(u, size, imp, signal) {
    const n = Math.min(size, TAIL);
    const r = await fetch(u, { signal, cache: 'no-store', headers: { Range: `bytes=${size - n}-` } });
    if (r.status !== 206) {
      r.body && r.body.cancel();
      return false;   // a legacy .bin needs no directory; a zip one fails with a message naming Range
    }
    imp.zipTail(new Uint8Array(await r.arrayBuffer()), size);
    return true;
  }

  /** A GGUF file (cache entry, local pick) copied into wasm memory and loaded. */
  async function writeBlob(lab, blob, signal) {
    const w = lab.modelWriter(blob.size);
    try {
      for await (const u8 of blobChunks(blob, signal)) w.write(u8);
      return w.finish();
    } catch (e) {
      w.abort();
      throw e;
    }
  }

  async function fromCache(hit, lab, progress, signal) {
    const e = hit.entry;
    progress({ phase: 'cache', loaded: 0, total: e.bytes, text: `${e.repo}: from the browser cache` }, true);
    const info = await writeBlob(lab, hit.file, signal);
    return { info, fromCache: true, weights: e.weights, cachedIn: 'OPFS', commit: e.commit, bytes: e.bytes };
  }

  /**
   * Local files: a .gguf (streamed into wasm memory), or a checkpoint with config.json
   * and tokenizer.json (+ tokenizer_config.json), or vocab.json and merges.txt, picked
   * together, streamed through the importer.
   */
  async function loadFiles(files, lab, progress, signal) {
    const by = (re) => files.find((f) => re.test(f.name));
    const gguf = by(/\.gguf$/i);
    if (gguf) {
      progress({ phase: 'load', loaded: 0, total: gguf.size, text: `reading ${gguf.name}` }, true);
      return { info: await writeBlob(lab, gguf, signal), name: gguf.name, bytes: gguf.size };
    }
    const ckpt = by(/\.(safetensors|bin)$/i);
    if (!ckpt) throw new Error('pick a .gguf file, or a .safetensors/.bin checkpoint with its config.json and tokenizer.json (or vocab.json and merges.txt)');
    const tokJson = by(/^tokenizer\.json$/i);
    if (tokJson && by(/^config\.json$/i)) {
      const tc = by(/^tokenizer_config\.json$/i);
      const text = { config: await by(/^config\.json$/i).text(), tokenizer: await tokJson.text(), tokenizerConfig: tc ? await tc.text() : null };
      let cfg = null;
      try { cfg = JSON.parse(text.config); } catch (e) { /* the importer names the fault */ }
      if (isLlama(cfg) || !by(/^(vocab|encoder)\.json$/i)) return importFiles(ckpt, text, lab, progress, signal);
    }
    const need = { config: by(/^config\.json$/i), vocab: by(/^(vocab|encoder)\.json$/i), merges: by(/^(merges\.txt|vocab\.bpe)$/i) };
    const missing = Object.keys(need).filter((k) => !need[k]);
    if (missing.length) {
      throw new Error(`${ckpt.name} needs ${missing.map((k) => ({ config: 'config.json', vocab: 'vocab.json', merges: 'merges.txt' })[k]).join(', ')} (or config.json and tokenizer.json) selected together with it`);
    }
    const text = {};
    for (const k of Object.keys(need)) text[k] = await need[k].text();
    return importFiles(ckpt, text, lab, progress, signal);
  }

  /** A local checkpoint streamed through the importer with its config and tokenizer texts. */
  async function importFiles(ckpt, text, lab, progress, signal) {
    const imp = beginImport(lab, ckpt.name, text, ckpt.name.replace(/\.(safetensors|bin)$/i, ''));
    try {
      if (/\.bin$/i.test(ckpt.name)) {
        const n = Math.min(ckpt.size, TAIL);
        imp.zipTail(new Uint8Array(await ckpt.slice(ckpt.size - n).arrayBuffer()), ckpt.size);
      }
      const tick = meter(`converting ${ckpt.name}`, ckpt.size, imp, progress);
      let loaded = 0;
      const feed = feeder(imp);
      for await (const u8 of blobChunks(ckpt, signal)) {
        feed(u8);
        loaded += u8.length;
        tick(loaded);
      }
      return { info: imp.finish(), name: ckpt.name, bytes: lab.modelSize(), weights: ckpt.name };
    } catch (e) {
      imp.abort();
      throw e;
    }
  }

  /** A GGUF from a URL (the bundled model), streamed into wasm memory. */
  async function loadUrl(u, lab, progress, signal) {
    const label = u.split('/').pop();
    const head = await fetch(u, { method: 'HEAD', signal });
    if (!head.ok) throw new Error(`GET ${u}: HTTP ${head.status}`);
    const size = Number(head.headers.get('content-length'));
    if (!(size > 0)) throw new Error(`${u}: the server did not say how large the model is`);
    const w = lab.modelWriter(size);
    let info;
    try {
      await streamUrl(u, size, head.headers.get('etag') || '', (v) => w.write(v),
                      meter(`downloading ${label}`, size, null, progress), signal);
      info = w.finish();
    } catch (e) {
      w.abort();
      throw e;
    }
    return { info, name: u, bytes: size };
  }

  return { fileUrl, probe, paramsOf, load, loadFiles, loadUrl, listCache, deleteCached, clearCache, streamUrl };
})();
