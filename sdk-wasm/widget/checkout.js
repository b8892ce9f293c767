// mykey widget loader: mounts the points cloud's checkout widget into a store's page, or a
// partner's link confirmation (`mountLink`, the same options) or coupon redemption
// (`mountCoupon`) into its member page.
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
// error ({ code, message }); `frame_refused` when the frame loaded but never started (this
// page's origin is not registered).

const EVENTS = ['ready', 'resize', 'success', 'cancel', 'error', 'assigned'];
// A frame that loaded but said nothing within this long was refused (a page whose origin the
// store or partner did not register): the page hears `error` with code `frame_refused`.
const READY_GRACE_MS = 3000;
const APPEARANCE = ['colorPrimary', 'colorText', 'colorBackground', 'fontFamily', 'borderRadius'];

/** Mounts a checkout into `element`; returns `{ on, off, unmount, frame }`. */
export function mountCheckout(element, options) {
  return mount('checkout', 'mountCheckout', element, options);
}

/**
 * Mounts a partner's link confirmation into `element` (the client secret of a link session
 * the partner's server opened for its signed-in member); events as for a checkout, `success`
 * with `{ session, state: 'linked' }`.
 */
export function mountLink(element, options) {
  return mount('link', 'mountLink', element, options);
}

/**
 * Mounts a partner's coupon redemption into `element`: `{ publishableKey, code? }`, the code
 * typed by the member or passed in (from a redemption URL or a QR code). `success` carries
 * `{ code, points }`; `assigned` `{ municipality, points }`.
 */
export function mountCoupon(element, options) {
  return mount('coupon', 'mountCoupon', element, options);
}

/**
 * The points cloud's origin: where this loader was loaded from, or `cloudOrigin` when the page
 * bundles the loader itself (the npm package). Only an origin, https (http on loopback only).
 */
function cloudOrigin(name, given) {
  if (given == null) return new URL(import.meta.url).origin;
  let url;
  try { url = new URL(String(given)); } catch { url = null; }
  const loopback = url && (url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\./.test(url.hostname));
  if (!url || url.origin !== String(given) || !(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) {
    throw new TypeError(`${name}: cloudOrigin must be the points cloud's origin, like https://points.example`);
  }
  return url.origin;
}

function mount(kind, name, element, options) {
  if (typeof Element === 'undefined' || !(element instanceof Element)) throw new TypeError(`${name}: element must be a DOM element`);
  const { publishableKey, clientSecret, code } = options || {};
  if (!/^pk_[0-9a-f]{64}$/.test(publishableKey || '')) throw new TypeError(`${name}: publishableKey must be a pk_ key`);
  const query = new URLSearchParams({ kind, pk: publishableKey, locale: options.locale === 'en' ? 'en' : 'ja' });
  let fragment = '';
  if (kind === 'coupon') {
    if (code != null && !/^[0-9A-Za-z -]{1,40}$/.test(code)) throw new TypeError(`${name}: code must be a coupon code`);
    fragment = code ? `code=${code}` : '';
  } else {
    const match = /^([0-9a-f-]{36})_secret_[0-9a-f]{64}$/.exec(clientSecret || '');
    if (!match) throw new TypeError(`${name}: clientSecret must be the session's client secret`);
    query.set('session', match[1]);
    fragment = clientSecret;
  }
  const cloud = cloudOrigin(name, options.cloudOrigin);
  for (const k of APPEARANCE) {
    const v = options.appearance && options.appearance[k];
    if (typeof v === 'string' && v.length <= 100) query.set(k, v);
  }
  const frame = document.createElement('iframe');
  frame.src = `${cloud}/widget/frame?${query}#${encodeURIComponent(fragment)}`;
  const titles = {
    checkout: ['自治体ポイントで支払う', 'Pay with municipal points'],
    link: ['マイキーIDと連携', 'Link with your MyKey ID'],
    coupon: ['クーポンを自治体ポイントに', 'Redeem a coupon for municipal points'],
  };
  frame.title = titles[kind][options.locale === 'en' ? 1 : 0];
  // WebUSB card readers work inside the frame only when the page grants it.
  frame.allow = 'usb';
  frame.style.cssText = 'width:100%;border:0;display:block;height:320px;color-scheme:normal';
  const handlers = new Map(EVENTS.map((e) => [e, new Set()]));
  for (const e of EVENTS) {
    const name = 'on' + e[0].toUpperCase() + e.slice(1);
    if (typeof options[name] === 'function') handlers.get(e).add(options[name]);
  }
  let heard = false;
  const emit = (type, detail) => { for (const h of handlers.get(type)) h(detail); };
  frame.addEventListener('load', () => setTimeout(() => {
    if (!heard) emit('error', { code: 'frame_refused', message: `the widget did not start: is ${location.origin} registered for this store or partner?` });
  }, READY_GRACE_MS));
  const onMessage = (ev) => {
    if (ev.origin !== cloud || ev.source !== frame.contentWindow) return;
    const m = ev.data;
    if (!m || m.mykey !== 'checkout' || !handlers.has(m.type)) return;
    heard = true;
    // The frame says its content's height in the event's detail: the iframe follows it.
    const height = m.detail && m.detail.height;
    if (m.type === 'resize' && Number.isFinite(height)) frame.style.height = Math.max(120, Math.min(4000, height)) + 'px';
    emit(m.type, m.detail || {});
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
