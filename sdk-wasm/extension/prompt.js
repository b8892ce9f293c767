// The extension's own window: the user answers a question the service worker asked. A page
// cannot draw or click this window, so its answer is the user's.
'use strict';
const params = new URLSearchParams(location.search);
const ticket = params.get('ticket');
const kind = params.get('kind') === 'last-try' ? 'last-try' : 'origin';
document.getElementById('ask-' + kind).hidden = false;
for (const el of document.querySelectorAll('[data-origin]')) el.textContent = params.get('origin') || '';
const allow = document.getElementById('allow');
allow.textContent = kind === 'origin' ? '許可する / Allow' : '暗証番号を送る / Send the PIN';
const answer = (value) => chrome.runtime.sendMessage({ mykey: 'decision', ticket, allow: value });
allow.addEventListener('click', () => answer(true));
document.getElementById('deny').addEventListener('click', () => answer(false));
