// Where training steps run: "cpu" (the wasm C core, the reference) or "webgpu" (the
// worker's GPU engine, web/gpu/, driven through the hosted-step exports). The page asks
// navigator.gpu for an adapter once and proposes WebGPU only when it has the limits the
// engine needs (web/gpu/API.md) and is a real GPU: SwiftShader is a CPU emulator, usable
// on request but never proposed. Otherwise it says why it runs on the CPU.

// The engine's minimum limits (web/gpu/API.md requestGpuDevice).
export const GPU_LIMITS = {
  maxStorageBufferBindingSize: 128 * 2 ** 20,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxStorageBuffersPerShaderStage: 8,
};

/** {usable, propose, reason, info: {vendor, architecture, device, description}, emulation}. */
export async function probeWebGpu(gpu = globalThis.navigator && navigator.gpu) {
  if (!gpu) {
    return { usable: false, propose: false, reason: 'this browser has no WebGPU (navigator.gpu is missing: an ' +
      'older browser, a page not served over https or localhost, or WebGPU turned off)' };
  }
  let adapter = null;
  try { adapter = await gpu.requestAdapter(); } catch (e) { /* reported below */ }
  if (!adapter) return { usable: false, propose: false, reason: 'WebGPU gave no adapter (no usable GPU or driver)' };
  const i = adapter.info || {};
  const info = { vendor: i.vendor || '', architecture: i.architecture || '', device: i.device || '',
                 description: i.description || '' };
  for (const [k, min] of Object.entries(GPU_LIMITS)) {
    if (!(adapter.limits[k] >= min)) {
      return { usable: false, propose: false, info,
               reason: `the WebGPU adapter's ${k} is ${adapter.limits[k]}, below the ${min} the GPU engine needs` };
    }
  }
  const emulation = info.architecture === 'swiftshader';
  return { usable: true, propose: !emulation, emulation, info,
           reason: emulation ? 'the WebGPU adapter is SwiftShader, a CPU emulator (emulation): the CPU is proposed; ' +
             'choose webgpu to run on it anyway' : '' };
}

/** The note shown beside the device select. */
export function deviceNote(p) {
  const name = p.info ? [p.info.vendor, p.info.architecture].filter(Boolean).join(' ') : '';
  if (!p.usable) return `Runs on the CPU: ${p.reason}.`;
  if (p.emulation) return `WebGPU adapter: ${name}. Runs on the CPU by default: ${p.reason}.`;
  return `WebGPU adapter: ${name || 'unnamed'}: training steps can run on the GPU.`;
}
