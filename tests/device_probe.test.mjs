// The page's WebGPU probe (web/device.js) and the engine's device request
// (web/gpu/engine.js requestGpuDevice) on stand-in navigator.gpu objects: no WebGPU, no
// adapter, an adapter below a limit the engine needs (the message names the limit),
// SwiftShader (usable, not proposed: emulation) and a real GPU (proposed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probeWebGpu, deviceNote, GPU_LIMITS } from '../web/device.js';
import { requestGpuDevice } from '../web/gpu/engine.js';

const LIMITS = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30, maxComputeWorkgroupStorageSize: 32768,
  maxComputeInvocationsPerWorkgroup: 256, maxStorageBuffersPerShaderStage: 10, maxComputeWorkgroupsPerDimension: 65535 };
function fakeGpu(info, limits = {}) {
  const requested = [];
  const adapter = { info, limits: { ...LIMITS, ...limits }, features: new Set(['timestamp-query']),
    requestDevice: async (d) => { requested.push(d); return { limits: d.requiredLimits, lost: new Promise(() => {}) }; } };
  return { requestAdapter: async () => adapter, requested };
}
const swiftshader = { vendor: 'google', architecture: 'swiftshader', device: '', description: '' };
const nvidia = { vendor: 'nvidia', architecture: 'ampere', device: '', description: '' };

test('no navigator.gpu, no adapter: the CPU, saying why', async () => {
  const none = await probeWebGpu(undefined);
  assert.equal(none.usable, false);
  assert.match(deviceNote(none), /^Runs on the CPU: this browser has no WebGPU \(navigator.gpu is missing/);
  const noAdapter = await probeWebGpu({ requestAdapter: async () => null });
  assert.equal(noAdapter.usable, false);
  assert.equal(deviceNote(noAdapter), 'Runs on the CPU: WebGPU gave no adapter (no usable GPU or driver).');
  await assert.rejects(requestGpuDevice({ requestAdapter: async () => null }), /^Error: WebGPU: no adapter$/);
  await assert.rejects(requestGpuDevice(undefined), /navigator.gpu is not available/);
});

test('an adapter below a limit the engine needs: the message names the limit', async () => {
  for (const [k, min] of Object.entries(GPU_LIMITS)) {
    const small = k === 'maxStorageBufferBindingSize' ? 64 * 2 ** 20 : min / 2;
    const p = await probeWebGpu(fakeGpu(nvidia, { [k]: small }));
    assert.equal(p.usable, false, k);
    assert.equal(p.propose, false, k);
    assert.equal(deviceNote(p), `Runs on the CPU: the WebGPU adapter's ${k} is ${small}, below the ${min} the GPU engine needs.`);
    await assert.rejects(requestGpuDevice(fakeGpu(nvidia, { [k]: small })),
      new RegExp(`^Error: WebGPU: the adapter's ${k} is ${small}, the engine needs at least ${min}$`));
  }
});

test('SwiftShader is usable but not proposed; a real GPU is proposed; the device asks for the adapter\'s own limits', async () => {
  const sw = await probeWebGpu(fakeGpu(swiftshader));
  assert.deepEqual([sw.usable, sw.propose, sw.emulation], [true, false, true]);
  assert.match(deviceNote(sw), /^WebGPU adapter: google swiftshader\. Runs on the CPU by default: .*SwiftShader, a CPU emulator \(emulation\)/);
  const gpu = await probeWebGpu(fakeGpu(nvidia));
  assert.deepEqual([gpu.usable, gpu.propose, gpu.emulation], [true, true, false]);
  assert.equal(deviceNote(gpu), 'WebGPU adapter: nvidia ampere: training steps can run on the GPU.');
  const g = fakeGpu(nvidia, { maxBufferSize: 3 * 2 ** 30, maxStorageBufferBindingSize: 2 ** 31 });
  const d = await requestGpuDevice(g);
  assert.equal(g.requested[0].requiredLimits.maxBufferSize, 3 * 2 ** 30);
  assert.equal(g.requested[0].requiredLimits.maxStorageBufferBindingSize, 2 ** 31);
  assert.deepEqual(g.requested[0].requiredFeatures, ['timestamp-query'], 'only the features the adapter has');
  assert.deepEqual(d.adapterInfo, nvidia);
  assert.deepEqual(d.limits, g.requested[0].requiredLimits);
});
