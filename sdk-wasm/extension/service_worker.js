// mykey card bridge: passes a page's card request to the native host `jp.mykey.bridge`, with
// the page's origin as the browser reports it (never as the page claims it). Only https pages,
// and http pages on this computer, are served.
'use strict';
const HOST = 'jp.mykey.bridge';
const COMMANDS = new Set(['list_readers', 'read_certificate', 'pin_tries_left', 'authenticate']);

function allowed(origin) {
  try {
    const u = new URL(origin);
    if (u.protocol === 'https:') return true;
    return u.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  } catch {
    return false;
  }
}

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  const id = msg && msg.id;
  const origin = sender.origin;
  if (!allowed(origin)) {
    sendResponse({ id, error: { code: 'bad_origin', message: 'the card signs only for https sites' } });
    return false;
  }
  const request = msg.request || {};
  if (!COMMANDS.has(request.command)) {
    sendResponse({ id, error: { code: 'bad_request', message: 'unknown command' } });
    return false;
  }
  // The origin goes last so that nothing the page sent can replace it.
  const message = Object.assign({}, request, { id, origin });
  chrome.runtime.sendNativeMessage(HOST, message, (response) => {
    if (chrome.runtime.lastError) {
      sendResponse({
        id,
        error: {
          code: 'no_reader',
          message: 'the mykey bridge host is not installed (run mykey-bridge-host install): ' + chrome.runtime.lastError.message,
        },
      });
    } else {
      sendResponse(response);
    }
  });
  return true;
});
