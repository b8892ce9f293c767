// The widget page: mounts the points cloud's coupon widget (with the issued code, or empty for
// the member to type one) or the link widget (with this link session's client secret).
const el = document.getElementById('widget');
const status = document.getElementById('widget-status');
const { mountCoupon, mountLink } = await import(`${el.dataset.points}/app/sdk/checkout.js`);
const common = {
  publishableKey: el.dataset.pk,
  locale: document.documentElement.lang === 'en' ? 'en' : 'ja',
  appearance: { colorPrimary: '#0b4f6c', borderRadius: '6px' },
  onReady: () => { status.textContent = ''; },
  onError: (e) => { status.textContent = e.message; },
  onCancel: () => { location.href = '/'; },
};
if (el.dataset.kind === 'link') {
  mountLink(el, { ...common, clientSecret: el.dataset.secret, onSuccess: () => { status.textContent = '連携しました。'; } });
} else {
  mountCoupon(el, {
    ...common,
    code: el.dataset.code || undefined,
    onSuccess: (e) => { status.textContent = `${e.points} ポイントを受け取りました。`; },
    onAssigned: (e) => { status.textContent = `${e.points} ポイントを自治体ポイントにしました。`; },
  });
}
