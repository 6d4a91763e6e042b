// Entry of the deployed site (scripts/site puts it in place of app.js in index.html).
// Threads need the page to be cross-origin isolated. If the host sent COOP/COEP, or
// the page is already controlled by coi-sw.js, start the lab. Otherwise register
// coi-sw.js and reload once, so that the service worker supplies the headers. Where
// service workers are unavailable (plain http on another host, blocked by policy or
// the user, private modes) or the reload did not help, start anyway: the worker then
// runs the single-thread build. The outcome is left in
// document.documentElement.dataset.isolation for the page and the tests.
'use strict';

(function boot() {
  const RELOADED = 'lpl-coi-reloaded';
  const root = document.documentElement;
  const start = (how) => {
    root.dataset.isolation = how;
    return import('./app.js');
  };
  const fallback = (why) => {
    console.warn(`LoRA Placement Lab: not cross-origin isolated (${why}); using the single-thread build`);
    return start(`single-thread: ${why}`);
  };

  if (self.crossOriginIsolated) {
    sessionStorage.removeItem(RELOADED);
    return start(navigator.serviceWorker && navigator.serviceWorker.controller ? 'service-worker' : 'headers');
  }
  if (!window.isSecureContext) return fallback('service workers need https or localhost');
  if (!('serviceWorker' in navigator)) return fallback('this browser has no service workers');
  if (sessionStorage.getItem(RELOADED)) {
    sessionStorage.removeItem(RELOADED);
    return fallback('the service worker did not take effect after a reload');
  }

  let settled = false;
  const settle = (fn) => { if (!settled) { settled = true; fn(); } };
  const reload = () => settle(() => { sessionStorage.setItem(RELOADED, '1'); location.reload(); });
  // A worker that never takes control must not leave the page blank.
  setTimeout(() => settle(() => fallback('the service worker did not take control within 10 s')), 10000);
  navigator.serviceWorker.register(new URL('coi-sw.js', document.baseURI).href)
    .then(() => navigator.serviceWorker.ready)
    .then(() => {
      // Reload once the worker controls this page (clients.claim in coi-sw.js).
      if (navigator.serviceWorker.controller) return reload();
      navigator.serviceWorker.addEventListener('controllerchange', reload, { once: true });
    })
    .catch((e) => settle(() => fallback(`the service worker could not be registered: ${e && e.message ? e.message : e}`)));
}());
