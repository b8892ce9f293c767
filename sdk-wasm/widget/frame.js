// The checkout widget inside its iframe, on the points cloud's own origin: shows the order,
// signs the resident in (card through the SDK's bridges, or MyKey ID and password) without a
// cookie, shows the points usable at this store, and confirms. It talks to its parent page
// only at the store's registered origins (`view.origins`).

import initSdk, { listBridges, connect } from '/app/sdk/mykey_sdk.js';

const T = {
  ja: {
    title: 'ポイントで支払う', order: 'ご注文', item: '商品', qty: '数量', amount: '金額', total: '合計',
    yen: (n) => `${n.toLocaleString('ja-JP')}円`, pt: (n) => `${n.toLocaleString('ja-JP')}ポイント`,
    signIn: 'マイキーIDでサインイン', card: 'マイナンバーカード', password: 'マイキーIDとパスワード',
    mykeyId: 'マイキーID（半角英数字8文字）', pass: 'パスワード', pin: '利用者証明用電子証明書の暗証番号（数字4桁）',
    signInButton: 'サインイン', cardButton: 'カードで認証', reader: 'カードの読み取り方法',
    bridge: { 'native-messaging': 'カードリーダー（mykey 拡張機能）', webusb: 'PaSoRi（WebUSB）', virtual: 'デモ：仮想カード（本物のカードではありません）' },
    demoPin: 'デモの仮想カードの暗証番号は 1234 です。',
    payer: (id) => `${id} としてお支払い`, use: '使うポイント', points: (max) => `使うポイント数（1〜${max}）`,
    municipal: '自治体ポイント', due: (n) => `残り ${n} はストアの他のお支払い方法で`,
    confirm: (n) => `${n} を使って支払う`, cancel: 'キャンセル', paid: 'お支払いが完了しました。',
    authorized: 'ポイントを確保しました。発送時にストアが確定します。', back: 'ストアに戻る', none: 'このストアで使えるポイントがありません。',
    busy: '処理中…', loading: '読み込み中…',
    errors: {
      'insufficient-points': 'ポイントが足りません。使うポイントを減らしてください。',
      'checkout-not-open': 'このお支払いは完了済みか、期限が切れています。ストアでもう一度お試しください。',
      'login-failed': 'マイキーIDまたはパスワードが違います。',
      'rate-limited': '試行回数が多すぎます。しばらくしてからもう一度お試しください。',
      'card-rejected': 'カードの証明書を確認できませんでした。',
      'nonce-invalid': '認証の有効期限が切れました。もう一度お試しください。',
      unauthenticated: 'もう一度サインインしてください。',
      forbidden: 'このカードにはまだマイキーIDがありません。自治体ポイントナビで作成してください。',
      wrong_pin: (left) => `暗証番号が違います。あと ${left} 回間違えるとロックされます。`,
      pin_blocked: '暗証番号がロックされています。市区町村の窓口で初期化してください。',
      no_card: 'カードが見つかりません。カードをリーダーに置いてください。',
      network: '通信できませんでした。接続を確認してもう一度お試しください。',
      origin: 'このページではお支払いできません（登録されていないサイトです）。',
      other: 'お支払いできませんでした。',
    },
  },
  en: {
    title: 'Pay with points', order: 'Your order', item: 'Item', qty: 'Qty', amount: 'Amount', total: 'Total',
    yen: (n) => `¥${n.toLocaleString('en-US')}`, pt: (n) => `${n.toLocaleString('en-US')} points`,
    signIn: 'Sign in with your MyKey ID', card: 'My Number Card', password: 'MyKey ID and password',
    mykeyId: 'MyKey ID (8 letters and digits)', pass: 'Password', pin: 'Card PIN (4 digits)',
    signInButton: 'Sign in', cardButton: 'Sign in with the card', reader: 'How to read the card',
    bridge: { 'native-messaging': 'Card reader (mykey extension)', webusb: 'PaSoRi (WebUSB)', virtual: 'Demo: virtual card (not a real card)' },
    demoPin: 'The demo virtual card\'s PIN is 1234.',
    payer: (id) => `Paying as ${id}`, use: 'Points to use', points: (max) => `Points to use (1 to ${max})`,
    municipal: 'Municipal points', due: (n) => `The remaining ${n} is paid another way at the store`,
    confirm: (n) => `Pay with ${n}`, cancel: 'Cancel', paid: 'Payment complete.',
    authorized: 'Your points are reserved; the store takes them when it ships.', back: 'Back to the store', none: 'You have no points usable at this store.',
    busy: 'Working…', loading: 'Loading…',
    errors: {
      'insufficient-points': 'Not enough points. Use fewer points.',
      'checkout-not-open': 'This payment is already complete or has expired. Please start again at the store.',
      'login-failed': 'The MyKey ID or the password is wrong.',
      'rate-limited': 'Too many tries. Please wait a while and try again.',
      'card-rejected': 'The card\'s certificate could not be accepted.',
      'nonce-invalid': 'The sign-in expired. Please try again.',
      unauthenticated: 'Please sign in again.',
      forbidden: 'This card has no MyKey ID yet. Create one on point-navi.',
      wrong_pin: (left) => `Wrong PIN. ${left} more wrong tries lock it.`,
      pin_blocked: 'The PIN is locked. Your municipal office can reset it.',
      no_card: 'No card found. Put the card on the reader.',
      network: 'Could not connect. Check the connection and try again.',
      origin: 'Payment is not possible on this page (the site is not registered).',
      other: 'The payment could not be made.',
    },
  },
};

const params = new URLSearchParams(location.search);
const session = params.get('session') || '';
const clientSecret = decodeURIComponent(location.hash.slice(1));
// The secret stays in memory only: out of the address bar, history and any later referrer.
history.replaceState(null, '', location.pathname + location.search);
let locale = params.get('locale') === 'en' ? 'en' : 'ja';
let t = T[locale];
const root = document.getElementById('widget');
let view = null;
let parentOrigin = null;
let signedIn = null;
let sdk = null;

const appearance = { colorPrimary: '--primary', colorText: '--text', colorBackground: '--bg', fontFamily: '--font', borderRadius: '--radius' };
for (const [k, v] of Object.entries(appearance)) {
  const value = params.get(k);
  if (value && /^[#(),.%\w\s"'-]{1,100}$/.test(value)) document.documentElement.style.setProperty(v, value);
}

/** Tells the store's page, at its registered origin only. */
function tell(type, detail) {
  if (parentOrigin) parent.postMessage({ mykey: 'checkout', type, detail }, parentOrigin);
}

new ResizeObserver(() => tell('resize', { height: Math.ceil(document.documentElement.getBoundingClientRect().height) })).observe(document.body);

window.addEventListener('message', (ev) => {
  if (ev.source !== parent || !view || !view.origins.includes(ev.origin)) return;
  if (ev.data && ev.data.mykey === 'checkout' && ev.data.type === 'locale' && T[ev.data.locale]) {
    locale = ev.data.locale;
    t = T[locale];
    document.documentElement.lang = locale;
    render();
  }
});

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children.flat().filter((c) => c != null));
  return e;
}

async function api(path, body) {
  let res;
  try {
    res = await fetch(`/v1/checkout/sessions/${session}/${path}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), credentials: 'omit',
    });
  } catch {
    throw { code: 'network' };
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const slug = (data.type || '').replace('urn:mykey:problem:', '');
    throw { code: slug || 'other', problem: data };
  }
  return data;
}

function message(err) {
  const m = t.errors[err.code];
  if (typeof m === 'function') return m(err.triesLeft ?? '?');
  return m || t.errors.other;
}

let state = { step: 'loading', error: null, busy: false, method: 'card' };
function set(changes) {
  state = { ...state, ...changes };
  render();
}

function fail(err) {
  set({ busy: false, error: message(err) });
  tell('error', { code: err.code, message: message(err) });
}

function orderTable() {
  const rows = view.line_items.map((i) => el('tr', {}, el('td', {}, i.name), el('td', { class: 'num' }, String(i.quantity)), el('td', { class: 'num' }, t.yen(Number(i.unit_amount) * i.quantity))));
  return el('table', {},
    el('caption', { class: 'sr-only' }, t.order),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, t.item), el('th', { scope: 'col', class: 'num' }, t.qty), el('th', { scope: 'col', class: 'num' }, t.amount))),
    el('tbody', {}, rows),
    el('tfoot', {}, el('tr', {}, el('th', { scope: 'row', colspan: '2' }, t.total), el('td', { class: 'num' }, t.yen(view.amount)))));
}

function errorBox() {
  return state.error ? el('p', { class: 'error', role: 'alert' }, state.error) : null;
}

function signInForm() {
  const tab = (id, label) => el('button', {
    type: 'button', role: 'tab', id: `tab-${id}`, 'aria-selected': String(state.method === id), 'aria-controls': `panel-${id}`,
    onclick: () => set({ method: id, error: null }),
  }, label);
  const panel = state.method === 'password'
    ? el('form', { id: 'panel-password', role: 'tabpanel', 'aria-labelledby': 'tab-password', onsubmit: onPassword },
      el('label', { for: 'mykey-id' }, t.mykeyId),
      // Kept across re-renders (a refused password is typed again, the ID is not).
      el('input', { id: 'mykey-id', name: 'mykey_id', autocomplete: 'username', required: true, maxlength: '8', inputmode: 'latin', value: state.mykeyId || '', oninput: (e) => { state.mykeyId = e.target.value; } }),
      el('label', { for: 'password' }, t.pass),
      el('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: '256' }),
      el('button', { class: 'primary', type: 'submit', disabled: state.busy }, state.busy ? t.busy : t.signInButton))
    : el('form', { id: 'panel-card', role: 'tabpanel', 'aria-labelledby': 'tab-card', onsubmit: onCard },
      el('fieldset', { class: 'bridges' }, el('legend', {}, t.reader),
        ['native-messaging', 'webusb', 'virtual'].map((k) => el('label', { class: k === 'virtual' ? 'demo' : '' },
          el('input', { type: 'radio', name: 'bridge', value: k, checked: (state.bridge || 'virtual') === k, onchange: () => { state.bridge = k; } }), ' ', t.bridge[k]))),
      (state.bridge || 'virtual') === 'virtual' ? el('p', { class: 'demo' }, t.demoPin) : null,
      el('label', { for: 'pin' }, t.pin),
      el('input', { id: 'pin', name: 'pin', type: 'password', inputmode: 'numeric', autocomplete: 'off', required: true, pattern: '[0-9]{4}', maxlength: '4' }),
      el('button', { class: 'primary', type: 'submit', disabled: state.busy }, state.busy ? t.busy : t.cardButton));
  return [el('h2', {}, t.signIn), el('div', { class: 'tabs', role: 'tablist' }, tab('card', t.card), tab('password', t.password)), panel];
}

function payForm() {
  const usable = signedIn.usable.filter((u) => u.available > 0);
  if (usable.length === 0) return [el('p', {}, t.payer(signedIn.mykey_id)), el('p', { class: 'error', role: 'alert' }, t.none)];
  const choice = state.choice ?? 0;
  const max = Math.min(view.amount, usable[choice].available);
  return [
    el('p', {}, t.payer(signedIn.mykey_id)),
    el('form', { onsubmit: onConfirm },
      el('fieldset', {}, el('legend', {}, t.use),
        usable.map((u, i) => el('label', {}, el('input', { type: 'radio', name: 'account', value: String(i), checked: i === choice, onchange: () => set({ choice: i }) }),
          ` ${u.event ? u.name : t.municipal}: ${t.pt(u.available)}`))),
      view.partial_points
        ? [el('label', { for: 'points' }, t.points(max)), el('input', { id: 'points', name: 'points', type: 'number', min: '1', max: String(max), value: String(max), required: true, inputmode: 'numeric' })]
        : null,
      el('button', { class: 'primary', type: 'submit', disabled: state.busy }, state.busy ? t.busy : t.confirm(t.pt(view.partial_points ? max : view.amount)))),
  ];
}

function render() {
  document.documentElement.lang = locale;
  if (state.step === 'loading') {
    root.replaceChildren(el('p', { class: 'status' }, t.loading));
    return;
  }
  if (state.step === 'fatal') {
    root.replaceChildren(el('h1', {}, t.title), el('p', { class: 'error', role: 'alert' }, state.error));
    return;
  }
  const head = [el('h1', {}, `${view.shop_name} — ${t.title}`), orderTable()];
  if (state.step === 'done') {
    const text = state.result.state === 'authorized' ? t.authorized : t.paid;
    const back = view.return_url ? el('a', { href: view.return_url, target: '_top' }, t.back) : null;
    root.replaceChildren(...head, el('p', { class: 'ok', role: 'status' }, text, ' ', t.pt(state.result.points)),
      state.result.points < view.amount ? el('p', {}, t.due(t.yen(view.amount - state.result.points))) : null, back);
    return;
  }
  const body = state.step === 'sign-in' ? signInForm() : payForm();
  root.replaceChildren(...head, errorBox(), ...body,
    el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', onclick: () => tell('cancel', {}) }, t.cancel)));
}

async function onPassword(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  set({ busy: true, error: null });
  try {
    signedIn = await api('sign-in', { client_secret: clientSecret, password: { mykey_id: f.get('mykey_id').trim().toUpperCase(), password: f.get('password') } });
    set({ step: 'pay', busy: false });
    root.querySelector('input[name=account]')?.focus();
  } catch (e) {
    fail(e);
  }
}

async function onCard(ev) {
  ev.preventDefault();
  const pin = new FormData(ev.target).get('pin');
  set({ busy: true, error: null });
  try {
    if (!sdk) sdk = initSdk();
    await sdk;
    const bridge = await connect(state.bridge || 'virtual', {});
    const tries = await bridge.pinTriesLeft();
    if (tries.status === 'blocked') throw { code: 'pin_blocked' };
    const { nonce } = await api('nonce', { client_secret: clientSecret });
    const token = await bridge.authenticate(nonce, pin);
    signedIn = await api('sign-in', { client_secret: clientSecret, card: { nonce, token } });
    set({ step: 'pay', busy: false });
  } catch (e) {
    fail(e && e.code ? e : { code: 'other' });
  }
}

async function onConfirm(ev) {
  ev.preventDefault();
  const usable = signedIn.usable.filter((u) => u.available > 0);
  const chosen = usable[state.choice ?? 0];
  const f = new FormData(ev.target);
  const points = view.partial_points ? Number(f.get('points')) : view.amount;
  set({ busy: true, error: null });
  try {
    const done = await api('confirm', { client_secret: clientSecret, grant: signedIn.grant, points, event: chosen.event });
    set({ step: 'done', busy: false, result: { state: done.state, points: done.points } });
    tell('success', { session, state: done.state, points: done.points });
  } catch (e) {
    fail(e);
  }
}

async function start() {
  try {
    view = await api('view', { client_secret: clientSecret });
  } catch (e) {
    set({ step: 'fatal', error: message(e) });
    return;
  }
  // The frame may only be shown by the store's pages (the server's frame-ancestors says so
  // too); its messages go to that origin and nowhere else.
  const ancestor = (location.ancestorOrigins && location.ancestorOrigins[0])
    || (document.referrer ? new URL(document.referrer).origin : null);
  parentOrigin = view.origins.includes(ancestor) ? ancestor : null;
  if (!parentOrigin) {
    set({ step: 'fatal', error: t.errors.origin });
    return;
  }
  if (view.state !== 'open') {
    set({ step: 'fatal', error: t.errors['checkout-not-open'] });
    tell('error', { code: 'checkout-not-open', message: t.errors['checkout-not-open'] });
    return;
  }
  set({ step: 'sign-in' });
  tell('ready', {});
  // Ready for the card without waiting for it.
  sdk = initSdk();
}

start();
