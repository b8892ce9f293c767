// mykey card bridge: relays card requests between the page and the extension. The page never
// names an origin; the service worker takes it from the browser.
'use strict';
window.addEventListener('message', (ev) => {
  if (ev.source !== window || !ev.data || ev.data.mykey !== 'request') return;
  const { id, request } = ev.data;
  if (typeof id !== 'number' || typeof request !== 'object' || request === null) return;
  chrome.runtime.sendMessage({ id, request }, (response) => {
    const failed = chrome.runtime.lastError;
    const answer = failed
      ? { id, error: { code: 'reader', message: 'the mykey extension failed: ' + failed.message } }
      : response;
    window.postMessage({ mykey: 'response', id, response: answer }, window.location.origin);
  });
});
