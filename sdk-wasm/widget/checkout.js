// mykey checkout loader: mounts the points cloud's checkout widget into a store's page.
//
//   import { mountCheckout } from 'https://points.example/app/sdk/checkout.js';
//   const checkout = mountCheckout(document.getElementById('pay'), {
//     publishableKey: 'pk_...', clientSecret: '<from your server>', locale: 'ja',
//     appearance: { colorPrimary: '#0b5394', fontFamily: 'sans-serif', borderRadius: '8px' },
//   });
//   checkout.on('success', (e) => { location.href = '/orders/' + order; });
//
// The widget is an iframe from the points cloud's own origin: the store's page never sees the
// resident's password, PIN or card token. Messages are accepted only from that iframe and that
// origin; the client secret travels in the iframe address's fragment, which is never sent to a
// server. Events: ready, resize ({ height }), success ({ session, state, points }), cancel,
// error ({ code, message }).

const EVENTS = ['ready', 'resize', 'success', 'cancel', 'error'];
const APPEARANCE = ['colorPrimary', 'colorText', 'colorBackground', 'fontFamily', 'borderRadius'];

/** Mounts a checkout into `element`; returns `{ on, off, unmount, frame }`. */
export function mountCheckout(element, options) {
  if (typeof Element === 'undefined' || !(element instanceof Element)) throw new TypeError('mountCheckout: element must be a DOM element');
  const { publishableKey, clientSecret } = options || {};
  if (!/^pk_[0-9a-f]{64}$/.test(publishableKey || '')) throw new TypeError('mountCheckout: publishableKey must be a pk_ key');
  const match = /^([0-9a-f-]{36})_secret_[0-9a-f]{64}$/.exec(clientSecret || '');
  if (!match) throw new TypeError('mountCheckout: clientSecret must be the session\'s client secret');
  const cloud = new URL(options.cloudOrigin || import.meta.url).origin;
  const query = new URLSearchParams({ pk: publishableKey, session: match[1], locale: options.locale === 'en' ? 'en' : 'ja' });
  for (const k of APPEARANCE) {
    const v = options.appearance && options.appearance[k];
    if (typeof v === 'string' && v.length <= 100) query.set(k, v);
  }
  const frame = document.createElement('iframe');
  frame.src = `${cloud}/checkout/frame?${query}#${encodeURIComponent(clientSecret)}`;
  frame.title = options.locale === 'en' ? 'Pay with municipal points' : '自治体ポイントで支払う';
  // WebUSB card readers work inside the frame only when the page grants it.
  frame.allow = 'usb';
  frame.style.cssText = 'width:100%;border:0;display:block;height:320px;color-scheme:normal';
  const handlers = new Map(EVENTS.map((e) => [e, new Set()]));
  for (const e of EVENTS) {
    const name = 'on' + e[0].toUpperCase() + e.slice(1);
    if (typeof options[name] === 'function') handlers.get(e).add(options[name]);
  }
  const onMessage = (ev) => {
    if (ev.origin !== cloud || ev.source !== frame.contentWindow) return;
    const m = ev.data;
    if (!m || m.mykey !== 'checkout' || !handlers.has(m.type)) return;
    if (m.type === 'resize' && Number.isFinite(m.height)) frame.style.height = Math.max(120, Math.min(4000, m.height)) + 'px';
    for (const h of handlers.get(m.type)) h(m.detail || {});
  };
  window.addEventListener('message', onMessage);
  element.replaceChildren(frame);
  return {
    frame,
    on(type, h) { handlers.get(type)?.add(h); return this; },
    off(type, h) { handlers.get(type)?.delete(h); return this; },
    /** Tells the widget to switch language. */
    setLocale(locale) { frame.contentWindow?.postMessage({ mykey: 'checkout', type: 'locale', locale }, cloud); },
    unmount() { window.removeEventListener('message', onMessage); frame.remove(); },
  };
}
