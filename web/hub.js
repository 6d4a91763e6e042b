// Models from the Hugging Face Hub, inside the worker (classic script, defines
// self.LabHub): byte-progress downloads of `${base}/${repo}/resolve/${revision}/${file}`,
// model.safetensors where it exists else pytorch_model.bin, plus config.json,
// vocab.json and merges.txt; a memory check before anything is downloaded; the
// converted Q8_0 GGUF cached in Cache Storage (or OPFS) so the next visit skips it.
'use strict';

self.LabHub = (function () {
  const GB = 1024 * 1024 * 1024;
  const WASM_MAX = 4 * GB;          // -sMAXIMUM_MEMORY=4GB, wasm32's ceiling
  const CACHE_NAME = 'loralab-models-v1';

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

  /** Size of a file on the Hub (HEAD), or -1 if it does not exist (404). */
  async function probe(url) {
    const r = await fetch(url, { method: 'HEAD' });
    if (r.status === 404) return -1;
    if (!r.ok) throw new Error(`HEAD ${url}: HTTP ${r.status}`);
    const n = Number(r.headers.get('x-linked-size') || r.headers.get('content-length'));
    return Number.isFinite(n) ? n : 0;
  }

  /**
   * GET with a byte count: onBytes(delta, declaredTotal) after each chunk. Returns a Uint8Array.
   * Throws with the URL and HTTP status on failure.
   */
  async function download(url, onBytes) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
    const declared = Number(r.headers.get('content-length'));
    if (!r.body) {
      const buf = new Uint8Array(await r.arrayBuffer());
      onBytes(buf.length, buf.length);
      return buf;
    }
    const reader = r.body.getReader();
    let out = Number.isFinite(declared) && declared > 0 ? new Uint8Array(declared) : new Uint8Array(1 << 20);
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (n + value.length > out.length) {  // unknown or wrong length: grow
        const bigger = new Uint8Array(Math.max(out.length * 2, n + value.length));
        bigger.set(out.subarray(0, n));
        out = bigger;
      }
      out.set(value, n);
      n += value.length;
      onBytes(value.length, declared || 0);
    }
    return n === out.length ? out : out.slice(0, n);
  }

  /** Parameter count of a GPT-2 config (HF config.json), for the memory check. */
  function paramsOf(cfg) {
    const L = cfg.n_layer, d = cfg.n_embd, V = cfg.vocab_size, P = cfg.n_positions || cfg.n_ctx;
    const ff = cfg.n_inner || 4 * d;
    if (![L, d, V, P].every((x) => Number.isInteger(x) && x > 0)) {
      throw new Error('config.json is missing n_layer, n_embd, vocab_size or n_positions');
    }
    const block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d);
    return V * d + P * d + L * block + 2 * d;
  }

  /**
   * Memory check before a download: the checkpoint and the converted model must
   * both fit in wasm memory at once, next to what is already allocated.
   * Returns {need, avail}; throws a readable refusal if need > avail.
   */
  function checkMemory(repo, ckptBytes, params, heapBytes) {
    const gguf = Math.ceil(params * 34 / 32);      // Q8_0: 34 bytes per 32 weights
    const work = 64 * 1024 * 1024 + params * 4 / 8;  // converter scratch, generous
    const need = ckptBytes + gguf + work;
    let avail = WASM_MAX - heapBytes;
    const dm = self.navigator && self.navigator.deviceMemory;
    if (dm) avail = Math.min(avail, dm * GB * 0.75);
    const gb = (x) => (x / GB).toFixed(2) + ' GB';
    if (need > avail) {
      throw new Error(`Not enough memory for ${repo}: converting it needs about ${gb(need)} ` +
        `(checkpoint ${gb(ckptBytes)} + Q8_0 model ${gb(gguf)} + working space), ` +
        `but this page can use at most ${gb(avail)} more. Choose a smaller model.`);
    }
    return { need, avail };
  }

  // ---- cache: Cache Storage, else OPFS, else none.
  function cacheKey(base, repo, revision) {
    return `${self.location.origin}/__loralab_cache__/${encodeURIComponent(base)}/` +
           `${encodeURIComponent(repo)}/${encodeURIComponent(revision)}/model.q8_0.gguf`;
  }
  function opfsName(key) { return 'model-' + key.replace(/[^A-Za-z0-9._-]/g, '_') ; }

  async function cacheGet(key) {
    try {
      if (self.caches) {
        const c = await caches.open(CACHE_NAME);
        const r = await c.match(key);
        if (r) return new Uint8Array(await r.arrayBuffer());
        return null;
      }
      if (navigator.storage && navigator.storage.getDirectory) {
        const dir = await navigator.storage.getDirectory();
        const h = await dir.getFileHandle(opfsName(key));
        return new Uint8Array(await (await h.getFile()).arrayBuffer());
      }
    } catch (e) { /* a missing entry or no storage: download again */ }
    return null;
  }

  async function cachePut(key, bytes) {
    try {
      if (self.caches) {
        const c = await caches.open(CACHE_NAME);
        await c.put(key, new Response(bytes, { headers: { 'Content-Type': 'application/octet-stream' } }));
        return 'Cache Storage';
      }
      if (navigator.storage && navigator.storage.getDirectory) {
        const dir = await navigator.storage.getDirectory();
        const h = await dir.getFileHandle(opfsName(key), { create: true });
        const w = await h.createWritable();
        await w.write(bytes);
        await w.close();
        return 'OPFS';
      }
    } catch (e) { return null; }   // quota exceeded etc.: still usable this visit
    return null;
  }

  async function clearCache() {
    if (self.caches) await caches.delete(CACHE_NAME);
  }

  /**
   * Fetches repo@revision from base (default the Hub), converts it to Q8_0 GGUF
   * with the module's importer and caches it. progress({phase, loaded, total, text}).
   * Returns {gguf: Uint8Array, fromCache, weights, cachedIn}.
   */
  async function load({ base, repo, revision }, bridge, progress) {
    base = base || 'https://huggingface.co';
    revision = revision || 'main';
    checkRepo(repo, revision);
    const key = cacheKey(base, repo, revision);
    const cached = await cacheGet(key);
    if (cached) {
      progress({ phase: 'cache', loaded: cached.length, total: cached.length, text: `${repo}: from the browser cache` });
      return { gguf: cached, fromCache: true, weights: null, cachedIn: null };
    }
    const url = (f) => fileUrl(base, repo, revision, f);
    progress({ phase: 'probe', loaded: 0, total: 0, text: `${repo}: looking for the checkpoint` });
    let weights = 'model.safetensors';
    let size = await probe(url(weights));
    if (size < 0) {
      weights = 'pytorch_model.bin';
      size = await probe(url(weights));
    }
    if (size < 0) throw new Error(`${repo}@${revision} has neither model.safetensors nor pytorch_model.bin`);

    // config.json first (tiny): it says how big the model is, for the memory check.
    const dec = new TextDecoder();
    const configText = dec.decode(await download(url('config.json'), () => {}));
    let cfg;
    try { cfg = JSON.parse(configText); } catch (e) { throw new Error(`${repo}: config.json is not JSON (${e.message})`); }
    checkMemory(repo, size, paramsOf(cfg), bridge.heapBytes());

    progress({ phase: 'download', loaded: 0, total: size, text: `${repo}: downloading the tokenizer` });
    const [vocab, merges] = await Promise.all([download(url('vocab.json'), () => {}),
                                               download(url('merges.txt'), () => {})]);
    let loaded = 0;
    const tick = (d) => {
      loaded += d;
      progress({ phase: 'download', loaded, total: size, text: `${repo}: downloading ${weights}` });
    };
    const ckpt = await download(url(weights), tick);
    progress({ phase: 'convert', loaded, total: loaded, text: `${repo}: converting ${weights} to Q8_0 GGUF` });
    const gguf = bridge.convertHf(configText, ckpt, dec.decode(vocab), dec.decode(merges), 'q8_0');
    const cachedIn = await cachePut(key, gguf);
    return { gguf, fromCache: false, weights, cachedIn };
  }

  return { fileUrl, probe, download, paramsOf, checkMemory, load, clearCache, cacheKey };
})();
