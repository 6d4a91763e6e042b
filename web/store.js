// Completed placements kept in IndexedDB until the user clears them, so a reload
// (or a crashed worker) loses no finished work: the result object, the curves and
// the adapter files.

const DB = 'loralab';
const STORE = 'placements';

function open() {
  return new Promise((resolve, reject) => {
    if (!self.indexedDB) return reject(new Error('IndexedDB is not available'));
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore(STORE, { keyPath: 'key', autoIncrement: true });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function tx(mode, f) {
  return open().then((db) => new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const out = f(t.objectStore(STORE));
    t.oncomplete = () => { db.close(); resolve(out && 'result' in out ? out.result : undefined); };
    t.onerror = () => { db.close(); reject(t.error); };
    t.onabort = () => { db.close(); reject(t.error || new Error('IndexedDB transaction aborted')); };
  }));
}

/**
 * Saves one completed placement: {runId, model, name, index, result, curves,
 * adapter (Uint8Array), adapterConfig (string), experiment}. Resolves to its key.
 */
export function savePlacement(rec) {
  return tx('readwrite', (s) => s.add({ ...rec, savedAt: Date.now() }));
}

/** Adds (or replaces) fields of a saved placement, e.g. its adapter arriving later. */
export function updatePlacement(key, fields) {
  return open().then((db) => new Promise((resolve, reject) => {
    const t = db.transaction(STORE, 'readwrite');
    const s = t.objectStore(STORE);
    const g = s.get(key);
    g.onsuccess = () => { if (g.result) s.put({ ...g.result, ...fields }); };
    t.oncomplete = () => { db.close(); resolve(); };
    t.onerror = () => { db.close(); reject(t.error); };
  }));
}

/** Every saved placement, oldest first. */
export function listPlacements() {
  return tx('readonly', (s) => s.getAll());
}

export function clearPlacements() {
  return tx('readwrite', (s) => s.clear());
}
