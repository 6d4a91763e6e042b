// The WebGPU LoRA training engine (API.md): GPT-2-family forward, backward, clipping
// and AdamW on the GPU, mirroring src/model/gpt2.c, lora.c and optim.c step by step.
// Kernels are the .wgsl files beside this module (README.md).

const KERNELS = ['matmul', 'elementwise', 'layernorm', 'attention', 'loss', 'embed', 'rows', 'optim'];
const SITES = 4; // GPT-2 sites: c_attn, attn.c_proj, c_fc, mlp.c_proj
const N_SITES_C = 11; // LPL_N_SITES in the C core (for lora by_site indexing)
const U64 = (1n << 64n) - 1n;
const MIN_LIMITS = {
  maxStorageBufferBindingSize: 128 << 20,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxStorageBuffersPerShaderStage: 8,
};

/** splitmix64's finaliser (lpl_mix64) on BigInt. */
export function mix64(z) {
  z = BigInt.asUintN(64, z);
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & U64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & U64;
  return z ^ (z >> 31n);
}

/** The C core's per-forward key generator: first next = mix64(seed ^ salt); each
 *  training forward takes next and advances it. salt: 'base' or 'lora'. */
export function dropoutKeyStream(seed, salt) {
  const s = salt === 'lora' ? 0x6c6f72612d64726fn : 0x626173652d64726fn;
  return mix64(BigInt.asUintN(64, BigInt(seed)) ^ s);
}
function advance(next) { return mix64((next + 0x9e3779b97f4a7c15n) & U64); }

// Kernels with workgroup reductions: they get reduce.wgsl, or reduce_subgroups.wgsl
// when the device has `subgroups` and the probe below accepts its subgroups.
const REDUCING = new Set(['layernorm', 'attention', 'loss', 'optim']);

/** The WGSL sources of every kernel file, by name (fetched beside this module). */
export async function loadKernelSources() {
  const out = {};
  const names = ['common', 'reduce', 'reduce_subgroups', ...KERNELS];
  const isNode = typeof process !== 'undefined' && process.versions && process.versions.node &&
    typeof window === 'undefined' && typeof WorkerGlobalScope === 'undefined';
  for (const n of names) {
    const url = new URL(`./${n}.wgsl`, import.meta.url);
    if (isNode || url.protocol === 'file:') {
      const fs = await import('node:fs/promises');
      out[n] = await fs.readFile(url, 'utf8');
    } else {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`WebGPU: cannot load kernel ${n}.wgsl (HTTP ${r.status})`);
      out[n] = await r.text();
    }
  }
  return out;
}

/** The code engine.js compiles for kernel k: common.wgsl, a reduction file, the kernel. */
export function kernelCode(src, k, subgroups) {
  const red = REDUCING.has(k) ? src[subgroups ? 'reduce_subgroups' : 'reduce'] + '\n' : '';
  return (subgroups ? 'enable subgroups;\n' : '') + src.common + '\n' + red + src[k];
}

/**
 * True when the device has `subgroups` and they are laid out as reduce_subgroups.wgsl
 * assumes: in workgroups of 256 and of 64, every subgroup is full and holds consecutive
 * local_invocation_index values (lane = index % size). WebGPU does not promise that
 * layout, so it is checked on the device; any failure means the tree reductions.
 */
export async function subgroupReductionsUsable(device) {
  if (!device.features.has('subgroups')) return false;
  try {
    device.pushErrorScope('validation');
    const sizes = [256, 64];
    const out = device.createBuffer({ size: 4 * 320, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const rb = device.createBuffer({ size: 4 * 320, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    sizes.forEach((n, i) => {
      const code = `enable subgroups;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(${n})
fn main(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32,
        @builtin(subgroup_size) size: u32) {
  let first = subgroupBroadcastFirst(li);
  let nActive = subgroupAdd(1u);
  out[${i * 256}u + li] = select(0u, 1u, lane == li % size && first == li - lane && nActive == size && ${n}u % size == 0u);
}`;
      const pipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe);
      pass.setBindGroup(0, device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] }));
      pass.dispatchWorkgroups(1);
      pass.end();
    });
    enc.copyBufferToBuffer(out, 0, rb, 0, 4 * 320);
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) { out.destroy(); rb.destroy(); return false; }
    await rb.mapAsync(GPUMapMode.READ);
    const v = new Uint32Array(rb.getMappedRange().slice(0));
    rb.unmap(); out.destroy(); rb.destroy();
    return v.every((x) => x === 1);
  } catch {
    return false;
  }
}

// Compiled pipelines per device (and reduction variant): a run creates a trainer per
// training, and compiling the kernels (and probing subgroups) each time costs seconds
// under SwiftShader.
const pipeCache = new WeakMap();
async function pipelines(device, wantSubgroups) {
  let perDevice = pipeCache.get(device);
  if (!perDevice) { perDevice = {}; pipeCache.set(device, perDevice); }
  if (perDevice.subgroupsUsable === undefined) perDevice.subgroupsUsable = await subgroupReductionsUsable(device);
  const subgroups = wantSubgroups && perDevice.subgroupsUsable;
  const key = subgroups ? 'subgroups' : 'tree';
  if (perDevice[key]) return { pipes: perDevice[key], subgroups };
  const src = await loadKernelSources();
  const pipes = {};
  device.pushErrorScope('validation');
  for (const k of KERNELS) {
    const module = device.createShaderModule({ code: kernelCode(src, k, subgroups), label: k });
    pipes[k] = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: k });
  }
  const perr = await device.popErrorScope();
  if (perr) throw new Error(`WebGPU: kernel compilation failed: ${perr.message}`);
  perDevice[key] = pipes;
  return { pipes, subgroups };
}

/** Requests an adapter and a device with the adapter's own limits (API.md). */
export async function requestGpuDevice(gpu, opts = {}) {
  if (!gpu) throw new Error('WebGPU: navigator.gpu is not available in this browser');
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference || 'high-performance' });
  if (!adapter) throw new Error('WebGPU: no adapter');
  const al = adapter.limits;
  for (const [k, v] of Object.entries(MIN_LIMITS))
    if (al[k] < v) throw new Error(`WebGPU: the adapter's ${k} is ${al[k]}, the engine needs at least ${v}`);
  const limits = {};
  for (const k of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension'])
    limits[k] = al[k];
  const features = [];
  for (const f of ['subgroups', 'timestamp-query']) if (adapter.features.has(f)) features.push(f);
  const device = await adapter.requestDevice({ requiredLimits: limits, requiredFeatures: features });
  const info = adapter.info || {};
  return {
    device, limits, features,
    adapterInfo: { vendor: info.vendor || '', architecture: info.architecture || '', device: info.device || '',
      description: info.description || '' },
  };
}

function q8RowBytes(cols) { return (cols / 32) * 34; }

// Buffers of one owner (a model or a trainer), checked against the device's limits.
function allocator(device) {
  const lim = device.limits;
  const maxBind = lim.maxStorageBufferBindingSize, maxBuf = lim.maxBufferSize;
  const buffers = [];
  const ST = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  function buf(bytes, label, usage = ST) {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > maxBuf) throw new Error(`WebGPU: ${label} needs ${size} bytes, above the adapter's maxBufferSize ${maxBuf}`);
    if ((usage & GPUBufferUsage.STORAGE) && size > maxBind)
      throw new Error(`WebGPU: ${label} needs ${size} bytes, above the adapter's maxStorageBufferBindingSize ${maxBind}`);
    const b = device.createBuffer({ size, usage, label });
    buffers.push(b);
    return b;
  }
  function upload(data, label) {
    const bytes = data.byteLength;
    const b = buf(bytes, label);
    const padded = Math.ceil(bytes / 4) * 4;
    if (padded === bytes) device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, bytes);
    else {
      const tmp = new Uint8Array(padded);
      tmp.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
      device.queue.writeBuffer(b, 0, tmp);
    }
    return b;
  }
  return { buffers, buf, upload, f32buf: (n, label) => buf(n * 4, label), maxBind,
    destroy() { for (const b of buffers) b.destroy(); buffers.length = 0; } };
}

/** Uploads the base model once (API.md createGpuModel); trainers of several trainings
 *  share it: {config, W, bytes, destroy()}. */
export async function createGpuModel(device, config, tensors) {
  const L = config.n_layer, C = config.n_embd, H = config.n_head, V = config.n_vocab;
  if (C % H) throw new Error(`WebGPU: n_embd ${C} is not a multiple of n_head ${H}`);
  if (C % 32) throw new Error(`WebGPU: n_embd ${C} is not a multiple of 32 (Q8_0 blocks)`);
  if (!tensors || !tensors.blocks || tensors.blocks.length !== L)
    throw new Error(`WebGPU: ${tensors && tensors.blocks ? tensors.blocks.length : 'no'} blocks for n_layer ${L}`);
  const al = allocator(device);
  const { upload, maxBind } = al;
  device.pushErrorScope('out-of-memory');
  // matrices stay Q8_0 (or f32), split by rows to fit a binding
  function matrix(m, rows, cols, label) {
    if (!m || m.rows !== rows || m.cols !== cols)
      throw new Error(`WebGPU: ${label} must be a ${rows} x ${cols} matrix (got ${m ? `${m.rows} x ${m.cols}` : 'none'})`);
    if (m.type !== 'q8_0' && m.type !== 'f32') throw new Error(`WebGPU: ${label} has type ${m.type}; the engine takes q8_0 or f32`);
    const q8 = m.type === 'q8_0';
    const rb = q8 ? q8RowBytes(cols) : cols * 4;
    if (m.data.byteLength !== rb * rows) throw new Error(`WebGPU: ${label} holds ${m.data.byteLength} bytes, expected ${rb * rows}`);
    const perChunk = Math.max(1, Math.floor(maxBind / rb));
    const chunks = [];
    const bytes = new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    for (let r0 = 0; r0 < rows; r0 += perChunk) {
      const r1 = Math.min(rows, r0 + perChunk);
      chunks.push({ r0, r1, buf: upload(bytes.subarray(r0 * rb, r1 * rb), `${label}[${r0}:${r1}]`) });
    }
    return { q8, rows, cols, rb, chunks };
  }
  const vec = (a, n, label) => {
    if (!a || a.length !== n) throw new Error(`WebGPU: ${label} must hold ${n} floats`);
    return upload(a, label);
  };
  const shapes = [[3 * C, C], [C, C], [4 * C, C], [C, 4 * C]];
  let W;
  try {
    W = {
      wte: matrix(tensors.wte, V, C, 'wte'),
      wpe: vec(tensors.wpe, config.n_ctx * C, 'wpe'),
      lnf_w: vec(tensors.lnf_w, C, 'ln_f.weight'), lnf_b: vec(tensors.lnf_b, C, 'ln_f.bias'),
      blocks: tensors.blocks.map((b, l) => ({
        ln1_w: vec(b.ln1_w, C, `h.${l}.ln_1.weight`), ln1_b: vec(b.ln1_b, C, `h.${l}.ln_1.bias`),
        ln2_w: vec(b.ln2_w, C, `h.${l}.ln_2.weight`), ln2_b: vec(b.ln2_b, C, `h.${l}.ln_2.bias`),
        w: b.w.map((m, s) => matrix(m, shapes[s][0], shapes[s][1], `h.${l}.site${s}`)),
        b: b.b.map((v, s) => vec(v, shapes[s][0], `h.${l}.site${s}.bias`)),
      })),
    };
    W.head = tensors.lm_head ? matrix(tensors.lm_head, V, C, 'lm_head') : W.wte;
  } catch (e) {
    await device.popErrorScope();
    al.destroy();
    throw e;
  }
  const oom = await device.popErrorScope();
  if (oom) { al.destroy(); throw new Error(`WebGPU out of memory while uploading the model: ${oom.message}`); }
  return { device, config: { ...config }, W, bytes: al.buffers.reduce((a, b) => a + b.size, 0), destroy: () => al.destroy() };
}

/** Uploads the adapters (and the model, unless opts.model is one from createGpuModel)
 *  and returns the trainer (API.md). */
export async function createGpuTrainer(device, opts) {
  const { lora, train = {} } = opts;
  const model = opts.model || await createGpuModel(device, opts.config, opts.tensors);
  const ownModel = !opts.model;
  const config = model.config;
  if (opts.model && opts.config)
    for (const k of ['n_layer', 'n_embd', 'n_head', 'n_ctx', 'n_vocab'])
      if (opts.config[k] !== config[k]) throw new Error(`WebGPU: the uploaded model has ${k} ${config[k]}, the training ${opts.config[k]}`);
  const L = config.n_layer, C = config.n_embd, H = config.n_head, V = config.n_vocab;
  const eps = config.ln_eps ?? 1e-5;
  const maxT = train.maxT ?? config.n_ctx;
  if (maxT < 1 || maxT > config.n_ctx) throw new Error(`WebGPU: maxT ${maxT} must be in 1..n_ctx (${config.n_ctx})`);
  if (maxT > 1024) throw new Error(`WebGPU: maxT ${maxT} above 1024 (attention rows live in workgroup memory)`);
  const hd = C / H;
  const al = allocator(device);
  const { buffers, buf, upload, f32buf, maxBind } = al;
  let lostReason = null;
  device.lost?.then((i) => { lostReason = `WebGPU device lost: ${i.message || i.reason}`; });
  // opts.train.subgroups === false forces the tree reductions (tests, benchmarks)
  const { pipes, subgroups } = await pipelines(device, train.subgroups !== false);
  const W = model.W;
  const shapes = [[3 * C, C], [C, C], [4 * C, C], [C, 4 * C]];

  // ---- adapters
  const r = lora.r, scaling = lora.scaling;
  let off = 0;
  const mods = lora.modules.map((m) => {
    const [out, inp] = shapes[m.site];
    if (m.site < 0 || m.site >= SITES) throw new Error(`WebGPU: LoRA site ${m.site} is not a GPT-2 site`);
    if (m.in !== undefined && (m.in !== inp || m.out !== out)) throw new Error(`WebGPU: LoRA module layer ${m.layer} site ${m.site} has shape ${m.out}x${m.in}, expected ${out}x${inp}`);
    const o = { layer: m.layer, site: m.site, in: inp, out, aOff: off, bOff: off + r * inp };
    off += r * (inp + out);
    return o;
  });
  const nParams = off;
  if (lora.params.length !== nParams) throw new Error(`WebGPU: lora.params holds ${lora.params.length} floats, the modules need ${nParams}`);
  const bySite = new Map(mods.map((m, i) => [m.layer * SITES + m.site, i]));
  const lowest = mods.length ? Math.min(...mods.map((m) => m.layer)) : L;
  device.pushErrorScope('out-of-memory');
  const P = upload(lora.params, 'lora params'), G = f32buf(nParams, 'lora grads');
  const Mm = f32buf(nParams, 'adam m'), Vm = f32buf(nParams, 'adam v');
  const as = train.adamState;
  if (as) { device.queue.writeBuffer(Mm, 0, as.m); device.queue.writeBuffer(Vm, 0, as.v); }
  const adam = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...(train.adamw || {}) };
  let t = as ? as.t : 0;
  const drop = { embd: 0, attn: 0, resid: 0, ...(train.dropout || {}) };
  const loraP = lora.dropout || 0;
  let baseNext = as?.baseNext ?? dropoutKeyStream(train.baseSeed ?? 0, 'base');
  let loraNext = as?.loraNext ?? dropoutKeyStream(train.loraSeed ?? 42, 'lora');
  const gradClip = train.gradClip ?? 0;
  const maxBatch = train.maxBatch ?? 8;

  // ---- activations (per layer, as lpl_gpt2_state)
  const A = {
    resid: Array.from({ length: L + 1 }, (_, l) => f32buf(maxT * C, `resid${l}`)),
    ln1: Array.from({ length: L }, (_, l) => f32buf(2 * maxT, `ln1 stats${l}`)),
    ln2: Array.from({ length: L }, (_, l) => f32buf(2 * maxT, `ln2 stats${l}`)),
    qkv: Array.from({ length: L }, (_, l) => f32buf(maxT * 3 * C, `qkv${l}`)),
    atty: Array.from({ length: L }, (_, l) => f32buf(maxT * C, `atty${l}`)),
    lse: Array.from({ length: L }, (_, l) => f32buf(H * maxT, `lse${l}`)),
    res2: Array.from({ length: L }, (_, l) => f32buf(maxT * C, `res2${l}`)),
    fch: Array.from({ length: L }, (_, l) => f32buf(maxT * 4 * C, `fch${l}`)),
    u: mods.map((m, i) => f32buf(maxT * r, `lora u${i}`)),
    lnf: f32buf(maxT * C, 'lnf'), lnfS: f32buf(2 * maxT, 'lnf stats'),
    lnBuf: f32buf(maxT * C, 'ln buf'), gelu: f32buf(maxT * 4 * C, 'gelu buf'),
    dres: f32buf(maxT * C, 'dres'), dC: f32buf(maxT * C, 'dC'), d3C: f32buf(maxT * 3 * C, 'd3C'),
    d4a: f32buf(maxT * 4 * C, 'd4C a'), d4b: f32buf(maxT * 4 * C, 'd4C b'),
    xd: f32buf(maxT * 4 * C, 'lora xd'), dxd: f32buf(maxT * 4 * C, 'lora dxd'), du: f32buf(maxT * r, 'lora du'),
    pm: f32buf(H * maxT * maxT, 'attn P'), ds: f32buf(H * maxT * maxT, 'attn dS'),
    nll: f32buf(maxT, 'nll'),
    stats: f32buf(4, 'stats'),
    ids: buf(maxBatch * 3 * maxT * 4, 'token ids'),
    dummy: f32buf(4, 'dummy'),
  };
  // logits of the packed scored rows, in tiles of rows that fit one binding
  const logitRows = Math.max(1, Math.min(maxT, Math.floor(maxBind / (V * 4))));
  A.logits = f32buf(logitRows * V, 'logits');
  // The LM head's input gradient walks all V rows for only C/64 column tiles: split into
  // slices of headSliceRows rows summed separately (A.headPart), then added up, so that a
  // GPU has V/headSliceRows times more workgroups to run at once.
  const headSliceRows = Math.max(16, train.headSliceRows ?? 2048);
  const headSlices = [];
  for (const ch of W.head.chunks)
    for (let s0 = 0; s0 < ch.r1 - ch.r0; s0 += headSliceRows)
      headSlices.push({ ch, s0, s1: Math.min(ch.r1 - ch.r0, s0 + headSliceRows) });
  if (headSlices.length > 1) A.headPart = f32buf(headSlices.length * logitRows * C, 'lm head partial dX');
  const readBuf = buf(16, 'stats readback', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  const oom = await device.popErrorScope();
  if (oom) {
    al.destroy();
    if (ownModel) model.destroy();
    throw new Error(`WebGPU out of memory while allocating the training's buffers: ${oom.message}`);
  }

  // ---- dispatch recording: uniforms go to one arena written before submit
  let arena = null, arenaCap = 0;
  let rec = null; // {words: [], passes: [{pipe, entries, wg}]}
  function begin() { rec = { words: [], ops: [] }; }
  function op(kind, uniform, bindings, wg) {
    const slot = rec.words.length;
    const w = new ArrayBuffer(64);
    const dv = new DataView(w);
    uniform.forEach((v, i) => {
      if (typeof v === 'object' && v.f !== undefined) dv.setFloat32(i * 4, v.f, true);
      else dv.setUint32(i * 4, v >>> 0, true);
    });
    rec.words.push(w);
    rec.ops.push({ kind, bindings, wg, slot, cls: prof ? profClass(kind, uniform) : null });
  }
  function clear(b, size) { rec.ops.push({ clear: b, size }); }
  function copy(srcB, dst, size) { rec.ops.push({ copy: [srcB, dst, size] }); }
  const F = (f) => ({ f });
  function submit(extra) {
    const n = rec.words.length;
    const need = Math.max(1, n) * 256;
    if (need > arenaCap) {
      arenaCap = Math.max(need, arenaCap * 2);
      arena = device.createBuffer({ size: arenaCap, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniform arena' });
      buffers.push(arena);
    }
    const data = new Uint8Array(need);
    rec.words.forEach((w, i) => data.set(new Uint8Array(w), i * 256));
    device.queue.writeBuffer(arena, 0, data);
    const enc = device.createCommandEncoder();
    let pass = null;
    const timed = prof ? [] : null; // profiling: [{cls, set, q}] one pass per dispatch
    for (const o of rec.ops) {
      if (o.clear || o.copy) {
        if (pass) { pass.end(); pass = null; }
        if (o.clear) enc.clearBuffer(o.clear, 0, o.size);
        else enc.copyBufferToBuffer(o.copy[0], 0, o.copy[1], 0, o.copy[2]);
        continue;
      }
      if (timed) {
        if (pass) pass.end();
        const i = timed.length, set = profSet(i >> 11), q = (i & 2047) * 2;
        timed.push({ cls: o.cls, set: i >> 11 });
        pass = enc.beginComputePass({ timestampWrites: { querySet: set.qs, beginningOfPassWriteIndex: q, endOfPassWriteIndex: q + 1 } });
      }
      if (!pass) pass = enc.beginComputePass();
      const pipe = pipes[o.kind];
      const entries = [{ binding: 0, resource: { buffer: arena, offset: o.slot * 256, size: 64 } }];
      o.bindings.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b } }));
      pass.setPipeline(pipe);
      pass.setBindGroup(0, device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries }));
      pass.dispatchWorkgroups(...o.wg);
    }
    if (pass) pass.end();
    if (timed && timed.length) {
      const nSets = ((timed.length - 1) >> 11) + 1;
      for (let k = 0; k < nSets; k++) {
        const n = Math.min(2048, timed.length - k * 2048) * 2, set = profSets[k];
        enc.resolveQuerySet(set.qs, 0, n, set.resolve, 0);
        enc.copyBufferToBuffer(set.resolve, 0, set.read, 0, n * 8);
      }
      profPending.push(timed);
    }
    if (extra) extra(enc);
    device.queue.submit([enc.finish()]);
    rec = null;
  }
  // ---- profiling (train.profile with the `timestamp-query` feature): each dispatch in a
  // pass of its own with begin/end timestamps, summed per kernel class. Off by default:
  // one pass per dispatch changes the schedule being measured.
  function profClass(kind, u) {
    const num = (v) => (typeof v === 'object' ? v.f : v);
    if (kind === 'matmul') {
      const [M, N, K] = u, bmode = num(u[13]);
      const name = bmode === 1 ? 'matmul, Q8_0 forward (X W^T)' : bmode === 2 ? 'matmul, Q8_0 input gradient (dY W)' : 'matmul, f32 (LoRA A/B)';
      return { name, flops: 2 * M * N * K };
    }
    if (kind === 'attention') {
      // products over the causal (i, j <= i) pairs: forward QK^T, PV; backward per query
      // row S, dP, dQ (mode 1), per key row dK, dV (mode 2)
      const [T, , Hh, hdd] = u, mode = u[12], pairs = (T * (T + 1)) / 2;
      const prods = mode === 0 ? 2 : mode === 1 ? 3 : 2;
      return { name: mode === 0 ? 'attention forward' : 'attention backward', flops: prods * 2 * pairs * hdd * Hh };
    }
    return { name: kind, flops: 0 };
  }
  const prof = !!train.profile && device.features.has('timestamp-query');
  if (train.profile && !prof) throw new Error('WebGPU: train.profile needs the timestamp-query feature, which this device lacks');
  const profSets = [], profPending = [], profTotals = new Map();
  function profSet(k) {
    while (profSets.length <= k) {
      const qs = device.createQuerySet({ type: 'timestamp', count: 4096 });
      const resolve = device.createBuffer({ size: 4096 * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const read = device.createBuffer({ size: 4096 * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      profSets.push({ qs, resolve, read });
      buffers.push(resolve, read, qs);
    }
    return profSets[k];
  }
  async function collectProfile() {
    while (profPending.length) {
      const timed = profPending.shift();
      const nSets = ((timed.length - 1) >> 11) + 1;
      for (let k = 0; k < nSets; k++) {
        const set = profSets[k];
        await set.read.mapAsync(GPUMapMode.READ);
        const ts = new BigUint64Array(set.read.getMappedRange().slice(0));
        set.read.unmap();
        for (let i = k * 2048; i < Math.min(timed.length, (k + 1) * 2048); i++) {
          const j = (i & 2047) * 2, c = timed[i].cls;
          const ns = ts[j + 1] > ts[j] ? Number(ts[j + 1] - ts[j]) : 0;
          const e = profTotals.get(c.name) || { kernel: c.name, ns: 0, flops: 0, dispatches: 0 };
          e.ns += ns; e.flops += c.flops; e.dispatches += 1;
          profTotals.set(c.name, e);
        }
      }
    }
  }
  const grid1 = (n) => { const g = Math.ceil(n / 256); return g <= 65535 ? [g, 1, 1] : [65535, Math.ceil(g / 65535), 1]; };

  // ---- ops
  // C = alpha * A op B (+C)(+bias); B f32 or a Q8_0 matrix chunk. See matmul.wgsl.
  function mm({ M, N, K, a, aOff = 0, sam, sak, b = null, bOff = 0, sbk = 0, sbn = 0, q = null, bmode = 0,
    c, cOff = 0, ldc, acc = 0, alpha = 1, bias = null }) {
    op('matmul', [M, N, K, aOff, sam, sak, bOff, sbk, sbn, cOff, ldc, acc, F(alpha), bmode, q ? q.rb : 0, bias ? 1 : 0],
      [a, b || A.dummy, q ? q.buf : A.dummy, c, bias || A.dummy], [Math.ceil(N / 64), Math.ceil(M / 64), 1]);
  }
  // Y[T][rows] = X[T][cols] W^T (+ bias), over W's chunks
  function linFwd(Y, X, Wm, bias, T) {
    for (const ch of Wm.chunks) {
      const n = ch.r1 - ch.r0;
      mm({ M: T, N: n, K: Wm.cols, a: X, sam: Wm.cols, sak: 1, q: { buf: ch.buf, rb: Wm.rb }, bmode: Wm.q8 ? 1 : 0,
        b: Wm.q8 ? null : ch.buf, sbk: 1, sbn: Wm.cols, c: Y, cOff: ch.r0, ldc: Wm.rows, bias: Wm.chunks.length === 1 ? bias : null });
    }
    if (bias && Wm.chunks.length > 1) throw new Error('WebGPU: a split matrix with a bias is not supported');
  }
  // dX[T][cols] (+)= dY[T][rows] W, over W's chunks (ldy: row stride of dY)
  function linBwdIn(dX, dY, Wm, T, acc, ldy = Wm.rows) {
    Wm.chunks.forEach((ch, i) => {
      mm({ M: T, N: Wm.cols, K: ch.r1 - ch.r0, a: dY, aOff: ch.r0, sam: ldy, sak: 1, q: { buf: ch.buf, rb: Wm.rb },
        bmode: Wm.q8 ? 2 : 0, b: Wm.q8 ? null : ch.buf, sbk: Wm.cols, sbn: 1, c: dX, ldc: Wm.cols, acc: acc || i > 0 ? 1 : 0 });
    });
  }
  function ew(mode, n, X, Y, Z = null, d = null) {
    const k = d ? d.key : 0n;
    op('elementwise', [n, mode, Number(k & 0xffffffffn), Number(k >> 32n), d ? d.stream : 0, F(d ? d.p : 0), F(d ? d.keep : 1), 0, 0, 0, 0, 0],
      [X, Y, Z || A.dummy], grid1(n));
  }
  const keepOf = (p) => Math.fround(1 / Math.fround(1 - Math.fround(p)));
  function ln(mode, T, X, w, b, Y, S, dY = null) {
    op('layernorm', [T, C, F(eps), mode, maxT, 0, 0, 0], [X, w, b, Y, S, dY || A.dummy], [T, 1, 1]);
  }
  function attn(mode, T, l, key, dY = null) {
    const on = key !== null && drop.attn > 0;
    const k = on ? key : 0n;
    op('attention', [T, C, H, hd, F(1 / Math.sqrt(hd)), on ? 1 : 0, Number(k & 0xffffffffn), Number(k >> 32n),
      l * 4 + 1, F(drop.attn), F(keepOf(drop.attn)), maxT, mode, 0, 0, 0],
    [A.qkv[l], A.atty[l], A.lse[l], dY || A.dummy, A.d3C, A.pm, A.ds], [T, H, 1]);
  }

  // LoRA branch of one site (lpl_lora_site_forward): Y += s * (drop(X) A^T) B^T
  function loraFwd(mi, Y, X, T, lkey) {
    const m = mods[mi];
    let x = X;
    if (lkey !== null && loraP > 0) {
      ew(1, T * m.in, X, A.xd, null, { key: lkey, stream: m.layer * 4 + m.site, p: loraP, keep: keepOf(loraP) });
      x = A.xd;
    }
    mm({ M: T, N: r, K: m.in, a: x, sam: m.in, sak: 1, b: P, bOff: m.aOff, sbk: 1, sbn: m.in, c: A.u[mi], ldc: r });
    mm({ M: T, N: m.out, K: r, a: A.u[mi], sam: r, sak: 1, b: P, bOff: m.bOff, sbk: 1, sbn: r, c: Y, ldc: m.out, acc: 1, alpha: scaling });
  }
  // lpl_lora_site_backward: dB += dY^T (s u); du = s dY B; dA += du^T x; dX += drop(du A)
  function loraBwd(mi, dX, dY, X, T, lkey) {
    const m = mods[mi];
    const dropOn = lkey !== null && loraP > 0;
    const d = dropOn ? { key: lkey, stream: m.layer * 4 + m.site, p: loraP, keep: keepOf(loraP) } : null;
    mm({ M: m.out, N: r, K: T, a: dY, sam: 1, sak: m.out, b: A.u[mi], sbk: r, sbn: 1, c: G, cOff: m.bOff, ldc: r, acc: 1, alpha: scaling });
    mm({ M: T, N: r, K: m.out, a: dY, sam: m.out, sak: 1, b: P, bOff: m.bOff, sbk: r, sbn: 1, c: A.du, ldc: r, alpha: scaling });
    let x = X;
    if (dropOn) { ew(1, T * m.in, X, A.xd, null, d); x = A.xd; }
    mm({ M: r, N: m.in, K: T, a: A.du, sam: 1, sak: r, b: x, sbk: m.in, sbn: 1, c: G, cOff: m.aOff, ldc: m.in, acc: 1 });
    if (!dX) return;
    if (dropOn) {
      mm({ M: T, N: m.in, K: r, a: A.du, sam: r, sak: 1, b: P, bOff: m.aOff, sbk: m.in, sbn: 1, c: A.dxd, ldc: m.in });
      ew(2, T * m.in, A.dxd, dX, null, d);
    } else {
      mm({ M: T, N: m.in, K: r, a: A.du, sam: r, sak: 1, b: P, bOff: m.aOff, sbk: m.in, sbn: 1, c: dX, ldc: m.in, acc: 1 });
    }
  }
  function siteFwd(l, s, Y, X, T, lkey) {
    linFwd(Y, X, W.blocks[l].w[s], W.blocks[l].b[s], T);
    const mi = bySite.get(l * SITES + s);
    if (mi !== undefined) loraFwd(mi, Y, X, T, lkey);
  }
  function siteBwd(l, s, dX, dY, X, T, lkey) {
    const Wm = W.blocks[l].w[s];
    if (dX) linBwdIn(dX, dY, Wm, T, 0);
    const mi = bySite.get(l * SITES + s);
    if (mi !== undefined) loraBwd(mi, dX, dY, X, T, lkey);
  }

  // One sequence forward (+ backward when training). idsOff: where its ids live in A.ids
  // (tokens at idsOff, row targets at idsOff + maxT, scored rows at idsOff + 2 maxT).
  // nllOut (evals): {buf, off}: the rows' losses go to buf from off instead of A.nll.
  function sequence(T, nScored, idsOff, training, ceScale, bkey, lkey, nllOut) {
    const dOn = training && bkey !== null;
    const dres = (site, l) => ({ key: bkey, stream: l * 4 + site, p: drop.resid, keep: keepOf(drop.resid) });
    const residOn = dOn && drop.resid > 0;
    for (const ch of W.wte.chunks)
      op('embed', [T, C, W.wte.rb, ch.r0, ch.r1, W.wte.q8 ? 1 : 0, idsOff, 0], [ch.buf, W.wpe, A.ids, A.resid[0]], [T, 1, 1]);
    if (dOn && drop.embd > 0) ew(6, T * C, A.dummy, A.resid[0], null, { key: bkey, stream: 0, p: drop.embd, keep: keepOf(drop.embd) });
    for (let l = 0; l < L; l++) {
      const b = W.blocks[l];
      ln(0, T, A.resid[l], b.ln1_w, b.ln1_b, A.lnBuf, A.ln1[l]);
      siteFwd(l, 0, A.qkv[l], A.lnBuf, T, lkey);
      attn(0, T, l, dOn ? bkey : null);
      siteFwd(l, 1, A.dC, A.atty[l], T, lkey);
      if (residOn) ew(6, T * C, A.dummy, A.dC, null, dres(2, l));
      ew(0, T * C, A.resid[l], A.res2[l], A.dC);
      ln(0, T, A.res2[l], b.ln2_w, b.ln2_b, A.lnBuf, A.ln2[l]);
      siteFwd(l, 2, A.fch[l], A.lnBuf, T, lkey);
      ew(3, T * 4 * C, A.fch[l], A.gelu);
      siteFwd(l, 3, A.dC, A.gelu, T, lkey);
      if (residOn) ew(6, T * C, A.dummy, A.dC, null, dres(3, l));
      ew(0, T * C, A.res2[l], A.resid[l + 1], A.dC);
    }
    ln(0, T, A.resid[L], W.lnf_w, W.lnf_b, A.lnf, A.lnfS);
    if (nScored === 0) return;
    op('rows', [nScored, C, 0, idsOff + 2 * maxT], [A.lnf, A.lnBuf, A.ids], [nScored, 1, 1]);
    if (training) clear(A.dC, maxT * C * 4);
    // LM head over tiles of scored rows (the logits of one tile fit one binding)
    for (let k0 = 0; k0 < nScored; k0 += logitRows) {
      const n = Math.min(logitRows, nScored - k0);
      for (const ch of W.head.chunks)
        mm({ M: n, N: ch.r1 - ch.r0, K: C, a: A.lnBuf, aOff: k0 * C, sam: C, sak: 1, q: { buf: ch.buf, rb: W.head.rb },
          bmode: W.head.q8 ? 1 : 0, b: W.head.q8 ? null : ch.buf, sbk: 1, sbn: C, c: A.logits, cOff: ch.r0, ldc: V });
      const nb = nllOut ? nllOut.buf : A.nll, no = nllOut ? nllOut.off + k0 : 0;
      op('loss', [n, V, F(ceScale), training ? 1 : 0, idsOff + maxT + k0, no, 0, 0], [A.logits, A.ids, nb, A.stats], [n, 1, 1]);
      op('loss', [n, V, F(0), 2, 0, no, 0, 0], [A.logits, A.ids, nb, A.stats], [1, 1, 1]);
      if (training && headSlices.length === 1) {
        const ch = W.head.chunks[0];
        mm({ M: n, N: C, K: ch.r1 - ch.r0, a: A.logits, aOff: ch.r0, sam: V, sak: 1,
          q: { buf: ch.buf, rb: W.head.rb }, bmode: W.head.q8 ? 2 : 0, b: W.head.q8 ? null : ch.buf, sbk: C, sbn: 1,
          c: A.dC, cOff: k0 * C, ldc: C, acc: 1 });
      } else if (training) {
        headSlices.forEach(({ ch, s0, s1 }, i) => mm({ M: n, N: C, K: s1 - s0, a: A.logits, aOff: ch.r0 + s0, sam: V, sak: 1,
          q: { buf: ch.buf, rb: W.head.rb }, bmode: W.head.q8 ? 2 : 0, b: W.head.q8 ? null : ch.buf,
          bOff: W.head.q8 ? s0 : s0 * C, sbk: C, sbn: 1, c: A.headPart, cOff: i * n * C, ldc: C }));
        // dC rows k0.. += each slice's partial (elementwise mode 5 with offsets), in slice order
        headSlices.forEach((_, i) => op('elementwise', [n * C, 5, 0, 0, 0, F(0), F(1), i * n * C, k0 * C, 0, 0, 0],
          [A.headPart, A.dC, A.dummy], grid1(n * C)));
      }
    }
    if (!training || lowest >= L) return;
    // backward (gpt2.c lpl_gpt2_backward / block_backward)
    clear(A.d3C, maxT * 3 * C * 4);
    op('rows', [nScored, C, 1, idsOff + 2 * maxT], [A.dC, A.d3C, A.ids], [nScored, 1, 1]);
    clear(A.dres, maxT * C * 4);
    ln(1, T, A.resid[L], W.lnf_w, W.lnf_b, A.dres, A.lnfS, A.d3C);
    for (let l = L - 1; l >= lowest; l--) {
      const b = W.blocks[l];
      ln(0, T, A.res2[l], b.ln2_w, b.ln2_b, A.lnBuf, A.ln2[l]);
      ew(3, T * 4 * C, A.fch[l], A.gelu);
      let dY = A.dres;
      if (residOn) { ew(1, T * C, A.dres, A.d3C, null, dres(3, l)); dY = A.d3C; }
      siteBwd(l, 3, A.d4a, dY, A.gelu, T, lkey);
      ew(4, T * 4 * C, A.fch[l], A.d4b, A.d4a);
      siteBwd(l, 2, A.dC, A.d4b, A.lnBuf, T, lkey);
      ln(1, T, A.res2[l], b.ln2_w, b.ln2_b, A.dres, A.ln2[l], A.dC);
      dY = A.dres;
      if (residOn) { ew(1, T * C, A.dres, A.d3C, null, dres(2, l)); dY = A.d3C; }
      siteBwd(l, 1, A.dC, dY, A.atty[l], T, lkey);
      attn(1, T, l, dOn ? bkey : null, A.dC);
      attn(2, T, l, dOn ? bkey : null, A.dC);
      ln(0, T, A.resid[l], b.ln1_w, b.ln1_b, A.lnBuf, A.ln1[l]);
      siteBwd(l, 0, A.dC, A.d3C, A.lnBuf, T, lkey);
      ln(1, T, A.resid[l], b.ln1_w, b.ln1_b, A.dres, A.ln1[l], A.dC);
    }
  }

  function checkExample(e, i) {
    const T = e.tokens.length;
    if (T < 1 || T > maxT) throw new Error(`WebGPU: example ${i} has ${T} tokens (1..maxT ${maxT})`);
    if (e.targets.length !== T || (e.mask && e.mask.length !== T)) throw new Error(`WebGPU: example ${i}: tokens, targets and mask lengths differ`);
    for (let t = 0; t < T; t++) {
      if (e.tokens[t] < 0 || e.tokens[t] >= V) throw new Error(`WebGPU: example ${i}: token id ${e.tokens[t]} at position ${t} is out of range [0, ${V})`);
      if ((!e.mask || e.mask[t]) && (e.targets[t] < 0 || e.targets[t] >= V)) throw new Error(`WebGPU: example ${i}: target id ${e.targets[t]} at position ${t} is out of range [0, ${V})`);
    }
  }
  // ids of the examples -> A.ids; returns per example {T, n, off}
  function stageIds(examples) {
    if (examples.length > maxBatch) throw new Error(`WebGPU: ${examples.length} examples in a batch (maxBatch ${maxBatch})`);
    const ids = new Uint32Array(examples.length * 3 * maxT);
    return { ids, list: examples.map((e, i) => {
      checkExample(e, i);
      const T = e.tokens.length, off = i * 3 * maxT;
      let n = 0;
      for (let t = 0; t < T; t++) {
        ids[off + t] = e.tokens[t];
        if (!e.mask || e.mask[t]) { ids[off + maxT + n] = e.targets[t]; ids[off + 2 * maxT + n] = t; n++; }
      }
      return { T, n, off };
    }) };
  }
  async function readStats() {
    await readBuf.mapAsync(GPUMapMode.READ);
    const s = new Float32Array(readBuf.getMappedRange().slice(0));
    readBuf.unmap();
    return s;
  }
  let chain = Promise.resolve();
  function serial(fn) { // one readback buffer: steps resolve in order
    const p = chain.then(fn);
    chain = p.catch(() => {});
    return p;
  }
  async function guarded(p) {
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    const v = p();
    const e1 = await device.popErrorScope(), e2 = await device.popErrorScope();
    if (e1) throw new Error(`WebGPU out of memory: ${e1.message}`);
    if (e2) throw new Error(`WebGPU error: ${e2.message}`);
    return v;
  }
  function check() { if (lostReason) throw new Error(lostReason); }
  const lossLimit = 2 * Math.log(V);

  let lastGradsValid = false;
  let evalNll = null, evalRead = null; // per-position eval losses, made on the first evalTokens
  const trainer = {
    nParams,
    subgroups, // true when the reductions use subgroup operations
    /** Bytes of the GPU buffers the trainer uses: the model's (shared or its own) and its
     *  own (adapters, moments, activations, the uniform arena once a step ran). */
    get bufferBytes() { return model.bytes + buffers.reduce((a, b) => a + (b.size || 0), 0); },
    /** With train.profile: per kernel class {kernel, ns, flops, dispatches} summed over
     *  the steps and evals since the last reset (GPU timestamps). */
    profile() { return [...profTotals.values()].map((e) => ({ ...e })); },
    resetProfile() { profTotals.clear(); },
    /** One optimizer step on a batch of examples with learning rate lr. */
    step(batch, lr) {
      check();
      const { ids, list } = stageIds(batch);
      const total = list.reduce((a, e) => a + e.n, 0);
      const run = () => {
        device.queue.writeBuffer(A.ids, 0, ids);
        begin();
        clear(A.stats, 16);
        clear(G, nParams * 4);
        list.forEach((e) => {
          const bkey = drop.embd > 0 || drop.attn > 0 || drop.resid > 0 ? baseNext : null;
          if (bkey !== null) baseNext = advance(baseNext);
          const lkey = loraP > 0 ? loraNext : null;
          if (lkey !== null) loraNext = advance(loraNext);
          if (e.n > 0) sequence(e.T, e.n, e.off, true, 1 / total, bkey, lkey);
        });
        t += 1;
        // lpl_adamw_step: pow((double)beta, t) of the float betas
        const bc1 = 1 - Math.pow(Math.fround(adam.beta1), t), bc2 = 1 - Math.pow(Math.fround(adam.beta2), t);
        const stepSize = Math.fround(lr / bc1), bc2Sqrt = Math.fround(Math.sqrt(bc2));
        const decay = Math.fround(1 - Math.fround(Math.fround(lr) * Math.fround(adam.weightDecay)));
        const ou = [nParams, 0, F(gradClip), F(lossLimit), F(adam.beta1), F(adam.beta2), F(adam.eps), F(stepSize), F(bc2Sqrt), F(decay), 0, 0];
        op('optim', ou, [P, G, Mm, Vm, A.stats], [1, 1, 1]);
        op('optim', [nParams, 1, ...ou.slice(2)], [P, G, Mm, Vm, A.stats], grid1(nParams));
        submit((enc) => enc.copyBufferToBuffer(A.stats, 0, readBuf, 0, 16));
      };
      return serial(async () => {
        check();
        await guarded(run);
        const s = await readStats();
        if (prof) await collectProfile();
        check();
        lastGradsValid = true;
        const skipped = s[3] !== 0;
        if (skipped) t -= 1;
        return { loss: s[1] ? s[0] / s[1] : 0, nllSum: s[0], nScored: s[1], gradNorm: s[2], skipped };
      });
    },
    /** Loss over examples with no dropout and no update. */
    evalLoss(examples) {
      return trainer.evalTokens(examples).then(({ loss, nllSum, nScored }) => ({ loss, nllSum, nScored }));
    },
    /** evalLoss with the loss of every scored position: nll holds, example by example
     * in order, the losses of its scored positions in position order (what the C core's
     * lpl_run_host_record_eval reduces as a CPU eval). */
    evalTokens(examples) {
      check();
      const out = { nllSum: 0, nScored: 0 };
      const chunks = [];
      for (let i = 0; i < examples.length; i += maxBatch) chunks.push(examples.slice(i, i + maxBatch));
      return serial(async () => {
        if (!evalNll) {
          evalNll = f32buf(maxBatch * maxT, 'eval nll');
          evalRead = buf(maxBatch * maxT * 4, 'eval nll readback', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
        }
        const parts = [];
        for (const ch of chunks) {
          const { ids, list } = stageIds(ch);
          device.queue.writeBuffer(A.ids, 0, ids);
          await guarded(() => {
            begin();
            clear(A.stats, 16);
            list.forEach((e, i) => {
              if (e.n > 0) sequence(e.T, e.n, e.off, false, 0, null, null, { buf: evalNll, off: i * maxT });
            });
            submit((enc) => {
              enc.copyBufferToBuffer(A.stats, 0, readBuf, 0, 16);
              enc.copyBufferToBuffer(evalNll, 0, evalRead, 0, maxBatch * maxT * 4);
            });
          });
          const s = await readStats();
          if (prof) await collectProfile();
          await evalRead.mapAsync(GPUMapMode.READ);
          const all = new Float32Array(evalRead.getMappedRange().slice(0));
          evalRead.unmap();
          check();
          list.forEach((e, i) => parts.push(all.slice(i * maxT, i * maxT + e.n)));
          out.nllSum += s[0]; out.nScored += s[1];
        }
        const nll = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
        let o = 0;
        for (const p of parts) { nll.set(p, o); o += p.length; }
        return { loss: out.nScored ? out.nllSum / out.nScored : 0, ...out, nll };
      });
    },
    async readBuffer(b, n) {
      const rb = device.createBuffer({ size: Math.max(16, n * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(b, 0, rb, 0, n * 4);
      device.queue.submit([enc.finish()]);
      await rb.mapAsync(GPUMapMode.READ);
      const out = new Float32Array(rb.getMappedRange().slice(0, n * 4));
      rb.destroy();
      return out;
    },
    grads() { return serial(() => trainer.readBuffer(G, nParams)); },
    readAdapters() { return serial(() => trainer.readBuffer(P, nParams)); },
    writeAdapters(params) { device.queue.writeBuffer(P, 0, params); },
    readState() {
      return serial(async () => ({ t, m: await trainer.readBuffer(Mm, nParams), v: await trainer.readBuffer(Vm, nParams), baseNext, loraNext }));
    },
    /** Test hook: runs one raw op list (see tests/gpu). */
    _internals: { A, W, mods, begin, submit, op, mm, ew, ln, attn, F },
    destroy() { al.destroy(); if (ownModel) model.destroy(); },
  };
  return trainer;
}
