// The page's side of the worker protocol (README.md, "Worker protocol"): numbered
// calls that resolve with the worker's answer, and unsolicited messages handed to
// onEvent. restart() replaces a crashed worker; calls in flight fail with a message.

export class Engine {
  constructor() {
    this.onEvent = () => {};
    this.nextId = 1;
    this.pending = new Map();
    this.start();
  }

  start() {
    this.worker = new Worker(new URL('worker.js', import.meta.url));
    this.worker.onmessage = (e) => this.receive(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.failAll(`the worker failed: ${e.message || 'script error'}`);
      this.onEvent({ type: 'crash', message: `The worker failed to run (${e.message || 'script error'}).` });
    };
    this.worker.onmessageerror = () => this.onEvent({ type: 'warning', message: 'a worker message could not be read' });
  }

  receive(msg) {
    if (msg && msg.id && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.ok) resolve(msg.result);
      else reject(new Error(msg.error));
      return;
    }
    this.onEvent(msg);
  }

  /** Posts {id, cmd, ...payload}; resolves with the result, rejects with the worker's error. */
  call(cmd, payload = {}, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, cmd, ...payload }, transfer);
    });
  }

  cancel() { this.worker.postMessage({ cmd: 'cancel' }); }
  /** Test hook (?test=1): the worker destroys its GPU device mid-run. */
  loseGpuForTest() { this.worker.postMessage({ cmd: 'loseGpuForTest' }); }

  failAll(message) {
    for (const { reject } of this.pending.values()) reject(new Error(message));
    this.pending.clear();
  }

  restart() {
    this.worker.terminate();
    this.failAll('the worker was restarted');
    this.start();
  }
}

/** The one worker of the page. */
export const engine = new Engine();
