// mykey card bridge: passes a page's card request to the native host `jp.mykey.bridge`, with
// the page's origin as the browser reports it (never as the page claims it). Only https pages,
// and http pages on this computer, are served, and only origins the user allowed in the
// extension's own window (remembered per origin; the options page takes them back). When one
// PIN try is left, a PIN goes to the card only after the user confirms in that window.
'use strict';
const HOST = 'jp.mykey.bridge';
const COMMANDS = new Set(['list_readers', 'read_certificate', 'pin_tries_left', 'authenticate']);
// Listing readers reveals no card data, so the SDK may show which bridges work before asking.
const FREE = new Set(['list_readers']);
const APPROVED = 'approved';
const OWN_ORIGIN = new URL(chrome.runtime.getURL('')).origin;

function servable(origin) {
  try {
    const u = new URL(origin);
    if (u.protocol === 'https:') return true;
    return u.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  } catch {
    return false;
  }
}

async function approvedOrigins() {
  const stored = await chrome.storage.local.get(APPROVED);
  return stored[APPROVED] || {};
}

// One window per question at a time: a page asking again waits for the same answer, so no
// page can open windows faster than the user closes them.
const open = new Map();
const answers = new Map();

function ask(kind, origin) {
  const key = kind + ' ' + origin;
  if (open.has(key)) return open.get(key);
  const ticket = crypto.randomUUID();
  const question = new Promise((resolve) => {
    const url = chrome.runtime.getURL('prompt.html') + '?' + new URLSearchParams({ ticket, kind, origin });
    chrome.windows.create({ url, type: 'popup', width: 480, height: 380, focused: true }, (win) => {
      if (chrome.runtime.lastError || !win) {
        resolve(false);
        return;
      }
      // Closing the window is a no.
      const closed = (id) => {
        if (id !== win.id) return;
        chrome.windows.onRemoved.removeListener(closed);
        answers.delete(ticket);
        resolve(false);
      };
      chrome.windows.onRemoved.addListener(closed);
      answers.set(ticket, (allow) => {
        chrome.windows.onRemoved.removeListener(closed);
        answers.delete(ticket);
        chrome.windows.remove(win.id, () => void chrome.runtime.lastError);
        resolve(allow === true);
      });
    });
  });
  open.set(key, question);
  // A service worker with no event for 30 s is stopped, which would drop the question; an
  // extension call every 20 s while one is open keeps it alive until the user answers.
  const alive = setInterval(() => chrome.runtime.getPlatformInfo(() => {}), 20000);
  question.finally(() => {
    clearInterval(alive);
    open.delete(key);
  });
  return question;
}

async function mayUse(origin) {
  if ((await approvedOrigins())[origin]) return true;
  if (!(await ask('origin', origin))) return false;
  const approved = await approvedOrigins();
  approved[origin] = new Date().toISOString();
  await chrome.storage.local.set({ [APPROVED]: approved });
  return true;
}

function native(message) {
  return new Promise((resolve) => {
    chrome.runtime.sendNativeMessage(HOST, message, (response) => {
      if (chrome.runtime.lastError) {
        resolve({
          id: message.id,
          error: {
            code: 'no_reader',
            message:
              'the mykey bridge host is not installed (run mykey-bridge-host install): ' +
              chrome.runtime.lastError.message,
          },
        });
      } else {
        resolve(response);
      }
    });
  });
}

const refused = (id, message) => ({ id, error: { code: 'not_allowed', message } });

async function serve(id, request, origin) {
  if (!FREE.has(request.command) && !(await mayUse(origin))) {
    return refused(id, 'the card may not be used on ' + origin + ': the user did not allow it in the mykey extension');
  }
  // The origin goes last so that nothing the page sent can replace it.
  const message = Object.assign({}, request, { id, origin });
  if (request.command === 'authenticate') {
    const tries = await native({ id, origin, command: 'pin_tries_left', reader: request.reader });
    const left = tries && tries.ok && tries.ok.tries;
    if (left && left.status === 'left' && left.left === 1 && !(await ask('last-try', origin))) {
      return refused(id, 'one PIN try is left and the user did not confirm trying it in the mykey extension');
    }
  }
  return native(message);
}

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  // The prompt window's answer.
  if (sender.origin === OWN_ORIGIN && msg && msg.mykey === 'decision') {
    const answer = answers.get(msg.ticket);
    if (answer) answer(msg.allow);
    return false;
  }
  const id = msg && msg.id;
  const origin = sender.origin;
  if (!servable(origin)) {
    sendResponse({ id, error: { code: 'bad_origin', message: 'the card signs only for https sites' } });
    return false;
  }
  const request = (msg && msg.request) || {};
  if (!COMMANDS.has(request.command)) {
    sendResponse({ id, error: { code: 'bad_request', message: 'unknown command' } });
    return false;
  }
  serve(id, request, origin).then(sendResponse);
  return true;
});
