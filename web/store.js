// Completed trainings kept in IndexedDB until the user clears them, so a reload
// (or a crashed worker) loses no finished work: the result object, the curves and
// the adapter files. Each run also has a record (its experiment, the config and
// model/data identity the engine reported, and whether it finished), so that a run
// cut short by a reload can be offered for resuming.

const DB = 'loralab';
const STORE = 'placements';  // holds trainings; the name stays so stores saved before the rename open
const RUNS = 'runs';

function open() {
  return new Promise((resolve, reject) => {
    if (!self.indexedDB) return reject(new Error('IndexedDB is not available'));
    const req = indexedDB.open(DB, 2);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: 'key', autoIncrement: true });
      if (!db.objectStoreNames.contains(RUNS)) db.createObjectStore(RUNS, { keyPath: 'runId' });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function tx(stores, mode, f) {
  return open().then((db) => new Promise((resolve, reject) => {
    const t = db.transaction(stores, mode);
    const out = f(...[].concat(stores).map((s) => t.objectStore(s)));
    t.oncomplete = () => { db.close(); resolve(out && 'result' in out ? out.result : undefined); };
    t.onerror = () => { db.close(); reject(t.error); };
    t.onabort = () => { db.close(); reject(t.error || new Error('IndexedDB transaction aborted')); };
  }));
}

/** True for the error a write gets when the browser's storage quota is used up. */
export function isQuotaError(e) {
  return !!e && (e.name === 'QuotaExceededError' || /quota/i.test(String(e.message)));
}

/**
 * Saves one completed training: {runId, model, name, placement_index, seed, result, curves,
 * adapter (Uint8Array), adapterConfig (string), experiment}. Resolves to its key.
 */
export function saveTraining(rec) {
  return tx(STORE, 'readwrite', (s) => s.add({ ...rec, savedAt: Date.now() }));
}

/** Adds (or replaces) fields of a saved training, e.g. its adapter arriving later. */
export function updateTraining(key, fields) {
  return tx(STORE, 'readwrite', (s) => {
    const g = s.get(key);
    g.onsuccess = () => { if (g.result) s.put({ ...g.result, ...fields }); };
  });
}

/** Every saved training, oldest first. */
export function listTrainings() {
  return tx(STORE, 'readonly', (s) => s.getAll());
}

/** Creates or updates (field by field) the record of run runId. */
export function saveRun(runId, fields) {
  return tx(RUNS, 'readwrite', (s) => {
    const g = s.get(runId);
    g.onsuccess = () => s.put({ ...(g.result || { runId, createdAt: Date.now() }), ...fields, runId });
  });
}

/** The record of run runId, or undefined. */
export function getRun(runId) {
  return tx(RUNS, 'readonly', (s) => s.get(runId));
}

export function clearTrainings() {
  return tx([STORE, RUNS], 'readwrite', (s, r) => { s.clear(); r.clear(); });
}
