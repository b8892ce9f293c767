// The payment page: mounts the points cloud's checkout widget with the store's publishable
// key and this order's client secret, then follows the order when the widget says it is paid.
// The order page itself turns paid when the points cloud's signed webhook reaches the store.
const el = document.getElementById('pay');
const status = document.getElementById('pay-status');
const { mountCheckout } = await import(`${el.dataset.points}/app/sdk/checkout.js`);
mountCheckout(el, {
  publishableKey: el.dataset.pk,
  clientSecret: el.dataset.secret,
  locale: document.documentElement.lang === 'en' ? 'en' : 'ja',
  appearance: { colorPrimary: '#7a2e0e', borderRadius: '6px' },
  onReady: () => { status.textContent = ''; },
  onSuccess: () => { location.href = el.dataset.order; },
  onCancel: () => { location.href = '/cart'; },
  onError: (e) => { status.textContent = e.message; },
});
