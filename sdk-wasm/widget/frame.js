// The widget inside its iframe, on the points cloud's own origin. `kind=checkout`: shows the
// order, signs the resident in without a cookie (the card through the SDK's bridges in the
// frame; MyKey ID and password in a window of the points cloud's own, see `startPopup`), shows
// the points usable at this store, and confirms. `kind=link`: shows
// the partner's member ID, signs the resident in the same way, and confirms the link.
// `kind=coupon`: checks a typed (or passed) code as it is typed, signs the resident in, shows
// what the code gives, redeems it and lets the resident assign the reserved points now. It
// talks to its parent page only at the registered origins (`view.origins`).
//
// The same script runs the password window (`/widget/sign-in`): a top-level page whose address
// bar shows the points cloud, so residents learn to type their password only there, never into
// a frame inside someone else's page. It talks to the frame that opened it and to no one else.
//
// The SDK (118 KB of wasm) is fetched only when the card is about to be used, or for the
// coupon widget, which checks codes as they are typed.

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
    couponTitle: (p) => `${p} のクーポンを自治体ポイントに`, code: 'クーポンコード（16文字）', next: '次へ',
    codeOk: 'クーポンコードの形式は正しいです。', codeErr: { length: 'クーポンコードは16文字です。', character: '使えない文字があります（0〜9とI・L・O・U以外の英字）。', check: '入力ミスがあります。クーポンと見比べてください。' },
    noId: 'マイキーIDがない方は', create: 'マイキーIDを作成（新しいタブ）', createBack: '作成したら、ここに戻ってサインインしてください。',
    gives: (p, d) => `このクーポンで ${p} の留保ポイントを受け取れます（有効期限 ${d}）。`, redeem: '受け取る',
    redeemed: (p, total, d) => `${p} を受け取りました。留保ポイントは合計 ${total} です。${d} までに自治体を選ばないと、基本自治体のポイントになります。`,
    assignTitle: '今すぐ自治体を選ぶ', assignTo: '移行先の自治体', assignAmount: '移行するポイント数', assign: '移行する',
    assigned: (p, m) => `${p} を ${m} のポイントにしました。`, used: 'このクーポンは使用済みです。', expired: 'このクーポンは有効期限が切れています。', another: '別のクーポンを使う',
    date: (iso) => new Date(iso).toLocaleDateString('ja-JP'),
    linkTitle: 'マイキーIDと連携', linkWhat: (name, id) => `${name} の会員ID ${id} をあなたのマイキーIDと連携します。`,
    linkAs: (id) => `${id} と連携`, linkConfirm: '連携する', linked: '連携しました。ポイントの移行などに使われます。', back2: '元のサイトに戻る',
    mandateTitle: '継続支払いの許可', mandateWhat: (shop) => `連携すると、${shop} はこの範囲で、あなたがその場にいなくても自治体ポイントから支払いを受けられます。支払いのたびにメールでお知らせし、マイページでいつでも取り消せます。`,
    mandateShop: '支払先', mandatePerCharge: '1回あたりの上限', mandatePerMonth: '1か月あたりの上限', mandateEnds: '有効期限',
    mandateConfirm: '連携して支払いを許可する', mandateGranted: '連携し、継続支払いを許可しました。',
    passwordHow: 'パスワードは、自治体ポイントのサイトが開く別のウィンドウで入力します。この枠の中では入力しません。',
    openWindow: 'サインイン用のウィンドウを開く', waiting: '開いたウィンドウでサインインしてください。',
    popupTitle: 'マイキーIDでサインイン',
    popupFor: { checkout: (n) => `${n} へのお支払いのためにサインインします。`, link: (n) => `${n} との連携のためにサインインします。`, coupon: (n) => `${n} のクーポンを受け取るためにサインインします。` },
    checkAddress: (o) => `アドレス欄が ${o} であることを確かめてから入力してください。`, close: '閉じる',
    errors: {
      'insufficient-points': 'ポイントが足りません。使うポイントを減らしてください。',
      'checkout-not-open': 'このお支払いは完了済みか、期限が切れています。ストアでもう一度お試しください。',
      'link-not-open': 'この連携は完了済みか、期限が切れています。元のサイトでもう一度お試しください。',
      'coupon-invalid': 'このクーポンコードは使えません。入力ミスがないか確認してください。',
      'coupon-expired': 'このクーポンは有効期限が切れています。',
      'coupon-used': 'このクーポンは別の方が使用済みです。',
      'coupon-elsewhere': 'これは別の会社のクーポンです。自治体ポイントナビのマイページで使えます。',
      'not-found': 'このサイトは登録されていません。',
      'service-id-taken': 'この会員IDは別のマイキーIDと連携済みです。そのマイキーIDで連携を解除してください。',
      'login-failed': 'マイキーIDまたはパスワードが違います。',
      'rate-limited': '試行回数が多すぎます。しばらくしてからもう一度お試しください。',
      'card-rejected': 'カードの証明書を確認できませんでした。',
      'nonce-invalid': '認証の有効期限が切れました。もう一度お試しください。',
      unauthenticated: 'もう一度サインインしてください。',
      forbidden: 'このカードにはまだマイキーIDがありません。自治体ポイントナビで作成してください。',
      wrong_pin: (left) => `暗証番号が違います。あと ${left} 回間違えるとロックされます。`,
      pin_blocked: '暗証番号がロックされています。市区町村の窓口で初期化してください。',
      no_card: 'カードが見つかりません。カードをリーダーに置いてください。',
      not_allowed: 'カードの利用が許可されませんでした。mykey 拡張機能の画面で許可してください。',
      network: '通信できませんでした。接続を確認してもう一度お試しください。',
      origin: 'このページではお支払いできません（登録されていないサイトです）。',
      other: 'お支払いできませんでした。',
      hidden: 'この枠が隠れているか透けているため、確定できません。枠全体が見える状態で、もう一度押してください。',
      popup_blocked: 'サインイン用のウィンドウを開けないか、このページの設定によりウィンドウと連絡できません。このサイトのポップアップを許可するか、カードでサインインしてください。',
      no_opener: 'このウィンドウは、お支払いや連携の画面とつながっていません。その画面の「サインイン用のウィンドウを開く」から開くか、カードでサインインしてください。',
      opener_gone: '元の画面が閉じられたか、読み込み直されました。お支払いや連携の画面からやり直してください。',
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
    couponTitle: (p) => `Turn your ${p} coupon into municipal points`, code: 'Coupon code (16 characters)', next: 'Next',
    codeOk: 'The coupon code looks right.', codeErr: { length: 'A coupon code has 16 characters.', character: 'It has a character coupon codes do not use (0-9 and A-Z without I, L, O, U).', check: 'It has a typo. Check it against the coupon.' },
    noId: 'No MyKey ID yet?', create: 'Create a MyKey ID (new tab)', createBack: 'Then come back here and sign in.',
    gives: (p, d) => `This coupon gives ${p} as reserved points (valid until ${d}).`, redeem: 'Redeem',
    redeemed: (p, total, d) => `You received ${p}. Your reserved points total ${total}. Unless you choose a municipality by ${d}, they go to your home municipality.`,
    assignTitle: 'Choose a municipality now', assignTo: 'Municipality', assignAmount: 'Points to move', assign: 'Move',
    assigned: (p, m) => `${p} moved to ${m}.`, used: 'This coupon was already used.', expired: 'This coupon has expired.', another: 'Use another coupon',
    date: (iso) => new Date(iso).toLocaleDateString('en-GB'),
    linkTitle: 'Link with your MyKey ID', linkWhat: (name, id) => `Link your member ID ${id} at ${name} to your MyKey ID.`,
    linkAs: (id) => `Linking to ${id}`, linkConfirm: 'Link', linked: 'Linked. It is used to bring points in.', back2: 'Back to the site',
    mandateTitle: 'Permission to charge', mandateWhat: (shop) => `With the link, ${shop} may take your municipal points within these limits, without you being there. You get an e-mail for every charge and can revoke it on your my page at any time.`,
    mandateShop: 'Store', mandatePerCharge: 'Most per charge', mandatePerMonth: 'Most per month', mandateEnds: 'Until',
    mandateConfirm: 'Link and allow charges', mandateGranted: 'Linked, and charges allowed.',
    passwordHow: 'You type your password in a separate window of the municipal points site, never inside this box.',
    openWindow: 'Open the sign-in window', waiting: 'Sign in in the window that opened.',
    popupTitle: 'Sign in with your MyKey ID',
    popupFor: { checkout: (n) => `Sign in to pay ${n}.`, link: (n) => `Sign in to link with ${n}.`, coupon: (n) => `Sign in to redeem a ${n} coupon.` },
    checkAddress: (o) => `Check that the address bar shows ${o} before you type.`, close: 'Close',
    errors: {
      'insufficient-points': 'Not enough points. Use fewer points.',
      'checkout-not-open': 'This payment is already complete or has expired. Please start again at the store.',
      'link-not-open': 'This link is already complete or has expired. Please start again on the site.',
      'coupon-invalid': 'This coupon code cannot be used. Check it for typos.',
      'coupon-expired': 'This coupon has expired.',
      'coupon-used': 'Someone else already used this coupon.',
      'coupon-elsewhere': 'This is another company\'s coupon. Use it on your point-navi page.',
      'not-found': 'This site is not registered.',
      'service-id-taken': 'This member ID is linked to another MyKey ID. Cut that link first.',
      'login-failed': 'The MyKey ID or the password is wrong.',
      'rate-limited': 'Too many tries. Please wait a while and try again.',
      'card-rejected': 'The card\'s certificate could not be accepted.',
      'nonce-invalid': 'The sign-in expired. Please try again.',
      unauthenticated: 'Please sign in again.',
      forbidden: 'This card has no MyKey ID yet. Create one on point-navi.',
      wrong_pin: (left) => `Wrong PIN. ${left} more wrong tries lock it.`,
      pin_blocked: 'The PIN is locked. Your municipal office can reset it.',
      no_card: 'No card found. Put the card on the reader.',
      not_allowed: 'Using the card was not allowed. Allow it in the mykey extension\'s window.',
      network: 'Could not connect. Check the connection and try again.',
      origin: 'Payment is not possible on this page (the site is not registered).',
      other: 'The payment could not be made.',
      hidden: 'This box is covered or see-through, so nothing was confirmed. With the whole box in view, press again.',
      popup_blocked: 'The sign-in window could not open, or this page keeps it from talking to the payment box. Allow pop-ups for this site, or sign in with the card.',
      no_opener: 'This window is not connected to a payment or link box. Open it with "Open the sign-in window" there, or sign in with the card.',
      opener_gone: 'The box that opened this window has closed or reloaded. Start again from the payment or link box.',
    },
  },
};

const popupMode = location.pathname === '/widget/sign-in';
const params = new URLSearchParams(location.search);
const session = params.get('session') || '';
const kind = ['link', 'coupon'].includes(params.get('kind')) ? params.get('kind') : 'checkout';
const base = { checkout: `/v1/checkout/sessions/${session}`, link: `/v1/link-sessions/${session}`, coupon: '/v1/coupon-widget' }[kind];
const publishableKey = params.get('pk') || '';
// The fragment: a session's client secret, or a coupon code passed in (`code=…`).
const fragment = decodeURIComponent(location.hash.slice(1));
const clientSecret = kind === 'coupon' ? '' : fragment;
const passedCode = kind === 'coupon' && fragment.startsWith('code=') ? fragment.slice(5) : '';
// The password window's part of the frame's state (`startPopup`): what authorises it.
let context = null;
/** What authorises the widget's requests: the session's client secret, or the partner's key. */
const auth = () => (popupMode ? context.auth
  : kind === 'coupon' ? { publishable_key: publishableKey } : { client_secret: clientSecret });
// The coupon widget has no session: its card challenges are limited per frame (and per
// address), so one page asking too often blocks itself, not the partner's other residents.
const instance = crypto.randomUUID();
const frameInstance = () => (popupMode ? context.instance : kind === 'coupon' ? { instance } : {});
// The secret stays in memory only: out of the address bar, history and any later referrer.
history.replaceState(null, '', location.pathname + location.search);
let locale = params.get('locale') === 'en' ? 'en' : 'ja';
let t = T[locale];
const root = document.getElementById('widget');
let view = null;
let parentOrigin = null;
let signedIn = null;
// The password window this frame opened, which alone may hand it a sign-in (`onOpenPopup`).
let popup = null;
let sdk = null;
// The SDK's module once loaded (the coupon widget checks codes with it as they are typed).
let sdkModule = null;
/** The SDK (its wasm fetched once, when first needed). */
function loadSdk() {
  if (!sdk) sdk = import('/app/sdk/mykey_sdk.js').then(async (m) => { await m.default(); return m; });
  return sdk;
}

// The host chooses colours, but may not make the widget hard to read or see through: colours
// are opaque hex (#rgb, #rrggbb), text must stand out from the background and the confirm
// button's white text from its colour by WCAG's 4.5:1, or the defaults stay.
const DEFAULTS = { colorPrimary: '#0b5394', colorText: '#1a1a1a', colorBackground: '#ffffff' };
const MIN_CONTRAST = 4.5;
function hexColour(v) {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(v || '');
  if (!m) return null;
  const h = m[1].length === 3 ? [...m[1]].map((c) => c + c).join('') : m[1];
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
}
function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => { const s = c / 255; return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}
{
  const asked = (k) => hexColour(params.get(k)) ? params.get(k) : null;
  let text = asked('colorText') || DEFAULTS.colorText;
  let bg = asked('colorBackground') || DEFAULTS.colorBackground;
  if (contrast(hexColour(text), hexColour(bg)) < MIN_CONTRAST) [text, bg] = [DEFAULTS.colorText, DEFAULTS.colorBackground];
  let primary = asked('colorPrimary') || DEFAULTS.colorPrimary;
  const white = [255, 255, 255];
  if (contrast(hexColour(primary), white) < MIN_CONTRAST || contrast(hexColour(primary), hexColour(bg)) < 3) primary = DEFAULTS.colorPrimary;
  const root = document.documentElement.style;
  root.setProperty('--text', text);
  root.setProperty('--bg', bg);
  root.setProperty('--primary', primary);
  for (const [k, v] of [['fontFamily', '--font'], ['borderRadius', '--radius']]) {
    const value = params.get(k);
    if (value && /^[#(),.%\w\s"'-]{1,100}$/.test(value)) root.setProperty(v, value);
  }
}

// Confirming works only while the frame is visible to the resident: not transparent, not covered
// by the page, on screen (IntersectionObserver v2's `isVisible` where the browser has it, else
// on screen), for at least CONFIRM_VISIBLE_MS, and only by a real click or key press.
const CONFIRM_VISIBLE_MS = 500;
let visibleSince = null;
const tracksVisibility = typeof IntersectionObserverEntry !== 'undefined' && 'isVisible' in IntersectionObserverEntry.prototype;
new IntersectionObserver((entries) => {
  const e = entries[entries.length - 1];
  const seen = tracksVisibility ? e.isVisible : e.isIntersecting;
  visibleSince = seen ? (visibleSince ?? performance.now()) : null;
  // `data-confirmable` says when a confirmation would go ahead (tests wait for it).
  delete document.body.dataset.confirmable;
  if (seen) {
    const since = visibleSince;
    setTimeout(() => { if (visibleSince === since) document.body.dataset.confirmable = 'true'; }, CONFIRM_VISIBLE_MS);
  }
}, tracksVisibility ? { trackVisibility: true, delay: 100, threshold: [0] } : { threshold: [0] }).observe(root);

/** Whether a confirmation `ev` may go ahead; else says why in the widget. */
function mayConfirm(ev) {
  const seen = visibleSince !== null && performance.now() - visibleSince >= CONFIRM_VISIBLE_MS;
  if (ev.isTrusted && seen) return true;
  set({ error: t.errors.hidden });
  return false;
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

/** Shows `nodes` in the widget; a missing part (null) is left out, never shown as "null". */
function show(...nodes) {
  root.replaceChildren(...nodes.flat().filter((n) => n != null && n !== false));
}

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
    res = await fetch(`${base}/${path}`, {
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
    ? el('div', { id: 'panel-password', role: 'tabpanel', 'aria-labelledby': 'tab-password' },
      el('p', {}, t.passwordHow),
      popup ? el('p', { class: 'status', role: 'status' }, t.waiting) : null,
      el('button', { id: 'open-sign-in', class: 'primary', type: 'button', onclick: onOpenPopup }, t.openWindow))
    : el('form', { id: 'panel-card', role: 'tabpanel', 'aria-labelledby': 'tab-card', onsubmit: onCard },
      el('fieldset', { class: 'bridges' }, el('legend', {}, t.reader),
        ['native-messaging', 'webusb', 'virtual'].map((k) => el('label', { class: k === 'virtual' ? 'demo' : '' },
          el('input', { type: 'radio', name: 'bridge', value: k, checked: (state.bridge || 'virtual') === k, onchange: () => { state.bridge = k; } }), ' ', t.bridge[k]))),
      (state.bridge || 'virtual') === 'virtual' ? el('p', { class: 'demo' }, t.demoPin) : null,
      el('label', { for: 'pin' }, t.pin),
      el('input', { id: 'pin', name: 'pin', type: 'password', inputmode: 'numeric', autocomplete: 'off', required: true, pattern: '[0-9]{4}', maxlength: '4', onfocus: loadSdk }),
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

const TITLES = {
  checkout: { ja: '自治体ポイントで支払う', en: 'Pay with municipal points' },
  link: { ja: 'マイキーIDと連携', en: 'Link with your MyKey ID' },
  coupon: { ja: 'クーポンを自治体ポイントに', en: 'Redeem a coupon for municipal points' },
};

function render() {
  document.documentElement.lang = locale;
  if (popupMode) {
    renderPopup();
    return;
  }
  document.title = TITLES[kind][locale];
  if (state.step === 'loading') {
    show(el('p', { class: 'status' }, t.loading));
    return;
  }
  if (state.step === 'fatal') {
    show(el('h1', {}, t.title), el('p', { class: 'error', role: 'alert' }, state.error));
    return;
  }
  if (kind === 'link') {
    renderLink();
    return;
  }
  if (kind === 'coupon') {
    renderCoupon();
    return;
  }
  const head = [el('h1', {}, `${view.shop_name} — ${t.title}`), orderTable()];
  if (state.step === 'done') {
    const text = state.result.state === 'authorized' ? t.authorized : t.paid;
    const back = view.return_url ? el('a', { href: view.return_url, target: '_top' }, t.back) : null;
    show(...head, el('p', { class: 'ok', role: 'status' }, text, ' ', t.pt(state.result.points)),
      state.result.points < view.amount ? el('p', {}, t.due(t.yen(view.amount - state.result.points))) : null, back);
    return;
  }
  const body = state.step === 'sign-in' ? signInForm() : payForm();
  show(...head, errorBox(), ...body,
    el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', onclick: () => tell('cancel', {}) }, t.cancel)));
}

/** The standing mandate a store asks for with the link: the store, the limits, the end. */
function mandateTerms(m) {
  const row = (label, value) => [el('dt', {}, label), el('dd', {}, value)];
  return el('section', { class: 'mandate', 'aria-labelledby': 'mandate-title' },
    el('h2', { id: 'mandate-title' }, t.mandateTitle),
    el('p', {}, t.mandateWhat(m.shop_name)),
    el('dl', {},
      row(t.mandateShop, m.shop_name),
      row(t.mandatePerCharge, t.pt(m.terms.max_per_charge)),
      row(t.mandatePerMonth, t.pt(m.terms.max_per_month)),
      row(t.mandateEnds, t.date(m.terms.ends_on))));
}

function renderLink() {
  const m = view.mandate;
  const head = [el('h1', {}, t.linkTitle), el('p', {}, t.linkWhat(view.service_name, view.service_id)), m ? mandateTerms(m) : null];
  if (state.step === 'done') {
    const back = view.return_url ? el('a', { href: view.return_url, target: '_top' }, t.back2) : null;
    show(...head, el('p', { class: 'ok', role: 'status' }, m ? t.mandateGranted : t.linked), back);
    return;
  }
  const confirm = m ? t.mandateConfirm : t.linkConfirm;
  const body = state.step === 'sign-in'
    ? signInForm()
    : [el('p', {}, t.linkAs(signedIn.mykey_id)),
      el('form', { onsubmit: onLink }, el('button', { class: 'primary', type: 'submit', disabled: state.busy }, state.busy ? t.busy : confirm))];
  show(...head, errorBox(), ...body,
    el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', onclick: () => tell('cancel', {}) }, t.cancel)));
}

async function onLink(ev) {
  ev.preventDefault();
  if (!mayConfirm(ev)) return;
  set({ busy: true, error: null });
  try {
    const done = await api('confirm', { client_secret: clientSecret, grant: signedIn.grant });
    set({ step: 'done', busy: false });
    tell('success', { session, state: done.state });
  } catch (e) {
    fail(e);
  }
}


async function onCard(ev) {
  ev.preventDefault();
  const pin = new FormData(ev.target).get('pin');
  set({ busy: true, error: null });
  try {
    const { connect } = await loadSdk();
    const bridge = await connect(state.bridge || 'virtual', {});
    const tries = await bridge.pinTriesLeft();
    if (tries.status === 'blocked') throw { code: 'pin_blocked' };
    const { nonce } = await api('nonce', { ...auth(), ...frameInstance() });
    // Signed in a widget's context: the web login and the counter refuse this signature.
    const token = await bridge.authenticate(nonce, pin, { kind: 'widget' });
    signedIn = await api('sign-in', { ...auth(), ...frameInstance(), card: { nonce, token } });
    // Signed in with the card: a password window left open has nothing more to do.
    if (popup) popup.close();
    popup = null;
    await signedInNext();
  } catch (e) {
    fail(e && e.code ? e : { code: 'other' });
  }
}

/** After signing in: pay, confirm the link, or look the coupon up. */
async function signedInNext() {
  if (kind === 'coupon') {
    await lookUp();
    return;
  }
  set({ step: 'pay', busy: false });
  root.querySelector('input[name=account]')?.focus();
}

// ----- the coupon widget -----

/** The code as typed: its display form, or the key of the sentence saying what is wrong. */
function checkCode(typed) {
  try {
    return { code: sdkModule.checkCouponCode(typed) };
  } catch (e) {
    return { problem: String(e.message || 'check') };
  }
}

function renderCoupon() {
  const head = [el('h1', {}, t.couponTitle(view.partner_name))];
  if (state.step === 'code') {
    const checked = state.typed ? checkCode(state.typed) : null;
    const hint = checked && (checked.code
      ? el('p', { id: 'code-hint', class: 'ok' }, t.codeOk)
      : el('p', { id: 'code-hint', class: 'error' }, t.codeErr[checked.problem] || t.codeErr.check));
    show(...head, errorBox(),
      el('form', { onsubmit: onCode },
        el('label', { for: 'code' }, t.code),
        el('input', {
          id: 'code', name: 'code', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', required: true, maxlength: '40',
          value: state.typed || '', 'aria-describedby': 'code-hint', 'aria-invalid': checked && !checked.code ? 'true' : false,
          oninput: (e) => { state.typed = e.target.value; const pos = e.target.selectionStart; render(); const i = root.querySelector('#code'); i.focus(); i.setSelectionRange(pos, pos); },
        }),
        hint,
        el('button', { class: 'primary', type: 'submit', disabled: !(checked && checked.code) }, t.next)));
    return;
  }
  if (state.step === 'sign-in') {
    show(...head, el('p', {}, state.code), errorBox(), ...signInForm(),
      el('p', {}, t.noId, ' ', el('a', { href: '/app/create', target: '_blank', rel: 'noopener' }, t.create), ' ', t.createBack));
    return;
  }
  if (state.step === 'preview') {
    const p = state.preview;
    const blocked = p.state !== 'issued';
    show(...head, el('p', {}, t.payer(signedIn.mykey_id)), errorBox(),
      el('p', { role: 'status' }, blocked ? (p.state === 'redeemed' ? t.used : t.expired) : t.gives(t.pt(p.points), t.date(p.expires_at))),
      blocked
        ? el('button', { type: 'button', class: 'secondary', onclick: () => set({ step: 'code', typed: '', error: null }) }, t.another)
        : el('form', { onsubmit: onRedeem }, el('button', { class: 'primary', type: 'submit', disabled: state.busy }, state.busy ? t.busy : t.redeem)));
    return;
  }
  // Redeemed: what arrived, when it moves home, and where it may go now.
  const r = state.redeemed;
  const options = r.municipalities.map((m) => el('option', { value: String(m.id) }, `${m.prefecture} ${m.name === m.prefecture ? '' : m.name}`.trim()));
  show(...head, el('p', { class: 'ok', role: 'status' }, t.redeemed(t.pt(r.points), t.pt(r.reserved), t.date(r.moves_home_at))),
    errorBox(),
    state.assigned
      ? el('p', { class: 'ok', role: 'status' }, state.assigned)
      : el('form', { onsubmit: onAssign, 'aria-labelledby': 'assign-title' },
        el('h2', { id: 'assign-title' }, t.assignTitle),
        el('label', { for: 'assign-to' }, t.assignTo), el('select', { id: 'assign-to', name: 'municipality', required: true }, options),
        el('label', { for: 'assign-amount' }, t.assignAmount),
        el('input', { id: 'assign-amount', name: 'amount', type: 'number', min: '1', max: String(r.reserved), value: String(r.reserved), required: true, inputmode: 'numeric' }),
        el('button', { class: 'primary', type: 'submit', disabled: state.busy }, state.busy ? t.busy : t.assign)),
    el('button', { type: 'button', class: 'secondary', onclick: () => set({ step: 'code', typed: '', redeemed: null, assigned: null, error: null }) }, t.another));
}

function onCode(ev) {
  ev.preventDefault();
  const checked = checkCode(state.typed || '');
  if (!checked.code) return;
  if (signedIn) {
    set({ code: checked.code, error: null, busy: true });
    lookUp();
  } else {
    set({ code: checked.code, step: 'sign-in', error: null });
  }
}

async function lookUp() {
  try {
    const preview = await api('preview', { ...auth(), grant: signedIn.grant, code: state.code });
    set({ step: 'preview', preview, busy: false });
  } catch (e) {
    if (e.code === 'unauthenticated') signedIn = null;
    set({ step: signedIn ? 'code' : 'sign-in', busy: false, error: message(e) });
    tell('error', { code: e.code, message: message(e) });
  }
}

async function onRedeem(ev) {
  ev.preventDefault();
  if (!mayConfirm(ev)) return;
  set({ busy: true, error: null });
  try {
    const redeemed = await api('redeem', { ...auth(), grant: signedIn.grant, code: state.code });
    set({ step: 'redeemed', redeemed, busy: false, assigned: null });
    tell('success', { code: redeemed.code, points: redeemed.points });
  } catch (e) {
    fail(e);
  }
}

async function onAssign(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const municipality = Number(f.get('municipality'));
  const amount = Number(f.get('amount'));
  set({ busy: true, error: null });
  try {
    await api('assign', { ...auth(), grant: signedIn.grant, id: crypto.randomUUID(), municipality, amount });
    const m = state.redeemed.municipalities.find((x) => x.id === municipality);
    set({ busy: false, assigned: t.assigned(t.pt(amount), m ? m.name : '') });
    tell('assigned', { municipality, points: amount });
  } catch (e) {
    fail(e);
  }
}

async function onConfirm(ev) {
  ev.preventDefault();
  if (!mayConfirm(ev)) return;
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
    view = await api('view', auth());
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
  if (kind === 'coupon') {
    sdkModule = await loadSdk();
    set({ step: 'code', typed: passedCode });
    tell('ready', {});
    return;
  }
  if (view.state !== 'open') {
    const code = kind === 'link' ? 'link-not-open' : 'checkout-not-open';
    set({ step: 'fatal', error: t.errors[code] });
    tell('error', { code, message: t.errors[code] });
    return;
  }
  set({ step: 'sign-in' });
  tell('ready', {});
}

// ----- password sign-in in a window of the points cloud's own -----


// Whether the open window has said hello (and been answered): once only.
let popupGreeted = false;

function onOpenPopup() {
  const q = new URLSearchParams({ kind, locale });
  if (session) q.set('session', session);
  popup = window.open(`/widget/sign-in?${q}`, `mykey-sign-in-${instance}`, 'popup,width=480,height=640');
  // None: pop-ups blocked, or the store's page cut its windows off (COOP same-origin opens
  // the window without a handle to it; it then says it is not connected).
  if (!popup) {
    fail({ code: 'popup_blocked' });
    return;
  }
  popupGreeted = false;
  set({ error: null });
  const watch = setInterval(() => {
    if (popup && !popup.closed) return;
    clearInterval(watch);
    // Closed without signing in: the button opens another.
    if (popup) {
      popup = null;
      render();
    }
  }, 500);
}

window.addEventListener('message', (ev) => {
  if (popupMode || !popup || ev.source !== popup || ev.origin !== location.origin) return;
  const m = ev.data || {};
  if (m.mykey !== 'sign-in') return;
  if (m.type === 'hello' && !popupGreeted) {
    popupGreeted = true;
    const name = { checkout: view.shop_name, link: view.service_name, coupon: view.partner_name }[kind];
    popup.postMessage({ mykey: 'sign-in', type: 'context', kind, session, auth: auth(), instance: frameInstance(), name }, location.origin);
  } else if (m.type === 'signed-in' && m.signedIn && m.signedIn.grant) {
    // Only while this frame still waits for a sign-in (not after the card signed in).
    if (state.step !== 'sign-in' || state.busy) return;
    popup.postMessage({ mykey: 'sign-in', type: 'received' }, location.origin);
    popup = null;
    signedIn = m.signedIn;
    set({ error: null });
    signedInNext().catch(fail);
  }
});

// The window's end: asks its opener (only a frame on this same origin answers) what it signs
// in for, takes the password, and hands the sign-in back.
function renderPopup() {
  document.title = t.popupTitle;
  if (state.step === 'loading') {
    show(el('p', { class: 'status' }, t.loading));
    return;
  }
  const close = el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', onclick: () => window.close() }, state.step === 'fatal' ? t.close : t.cancel));
  if (state.step === 'fatal') {
    show(el('h1', {}, t.popupTitle), el('p', { class: 'error', role: 'alert' }, state.error), close);
    return;
  }
  show(el('h1', {}, t.popupTitle),
    el('p', {}, t.popupFor[kind](context.name)),
    el('p', { class: 'address' }, t.checkAddress(location.origin)),
    errorBox(),
    el('form', { id: 'password-sign-in', onsubmit: onPassword },
      el('label', { for: 'mykey-id' }, t.mykeyId),
      // Kept across re-renders (a refused password is typed again, the ID is not).
      el('input', { id: 'mykey-id', name: 'mykey_id', autocomplete: 'username', required: true, maxlength: '8', inputmode: 'latin', value: state.mykeyId || '', oninput: (e) => { state.mykeyId = e.target.value; } }),
      el('label', { for: 'password' }, t.pass),
      el('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: '256' }),
      el('button', { class: 'primary', type: 'submit', disabled: state.busy }, state.busy ? t.busy : t.signInButton)),
    close);
}

async function onPassword(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  set({ busy: true, error: null });
  try {
    const answer = await api('sign-in', { ...auth(), ...frameInstance(), password: { mykey_id: f.get('mykey_id').trim().toUpperCase(), password: f.get('password') } });
    if (!window.opener || window.opener.closed) throw { code: 'opener_gone' };
    // Closes once the frame says it took the sign-in; a frame reloaded meanwhile says nothing.
    const received = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 3000);
      window.addEventListener('message', (m) => {
        if (m.source === window.opener && m.origin === location.origin && m.data && m.data.mykey === 'sign-in' && m.data.type === 'received') {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    window.opener.postMessage({ mykey: 'sign-in', type: 'signed-in', signedIn: answer }, location.origin);
    if (!(await received)) throw { code: 'opener_gone' };
    window.close();
  } catch (e) {
    set({ busy: false, error: message(e) });
  }
}

async function startPopup() {
  render();
  const fatal = (code) => set({ step: 'fatal', error: t.errors[code] });
  if (!window.opener || window.top !== window) {
    fatal('no_opener');
    return;
  }
  context = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), 5000);
    window.addEventListener('message', (ev) => {
      const m = ev.data || {};
      if (ev.source !== window.opener || ev.origin !== location.origin || m.mykey !== 'sign-in' || m.type !== 'context') return;
      // The answer must be for the session and kind this window was opened for.
      if (m.kind !== kind || (m.session || '') !== session) return;
      clearTimeout(timer);
      resolve({ auth: m.auth, instance: m.instance || {}, name: String(m.name || '') });
    });
    window.opener.postMessage({ mykey: 'sign-in', type: 'hello' }, location.origin);
  });
  if (!context) {
    fatal('no_opener');
    return;
  }
  set({ step: 'password' });
  root.querySelector('#mykey-id')?.focus();
}

if (popupMode) startPopup(); else start();
