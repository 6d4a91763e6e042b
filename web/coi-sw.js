// Service worker of the deployed site (scripts/site): on a static host that cannot
// send COOP/COEP, it adds them to every same-origin response, so the page becomes
// cross-origin isolated after one reload and the threaded wasm build can run
// (SharedArrayBuffer needs isolation). Cross-origin requests (the Hugging Face Hub)
// pass untouched: they are CORS requests, which COEP require-corp accepts.
// boot.js registers it; scripts/serve sends the headers itself and never uses it.
'use strict';

const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (new URL(req.url).origin !== self.location.origin) return;
  // Chromium throws on this combination (a devtools quirk); let the browser handle it.
  if (req.cache === 'only-if-cached' && req.mode !== 'same-origin') return;
  event.respondWith(isolated(req));
});

// The response as the host sent it, plus the isolation headers. Opaque responses and
// redirects of navigations cannot be rebuilt and go back as they are.
async function isolated(req) {
  const res = await fetch(req);
  if (res.status === 0 || res.type === 'opaque' || res.type === 'opaqueredirect') return res;
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(ISOLATION)) headers.set(k, v);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}
