// The checkout loader as the npm package ships it: its checks run before anything touches the
// page (the mounting itself runs in Chromium, tests/tests/e2e/checkout.rs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mountCheckout } from "../dist/checkout.js";

const pk = "pk_" + "a".repeat(64);
const secret = "0c8f6e9a-4355-4a8e-9b1f-5c2a9d107b0c_secret_" + "b".repeat(64);

test("the loader refuses what is not a page element", () => {
  assert.throws(() => mountCheckout({}, { publishableKey: pk, clientSecret: secret }), /DOM element/);
});

test("the loader refuses a secret key or a malformed client secret before mounting", () => {
  globalThis.Element = class {};
  try {
    const el = new Element();
    assert.throws(() => mountCheckout(el, { publishableKey: "mk_store_" + "a".repeat(64), clientSecret: secret }), /pk_ key/);
    assert.throws(() => mountCheckout(el, { publishableKey: pk, clientSecret: "not-a-secret" }), /client secret/);
  } finally {
    delete globalThis.Element;
  }
});

test("the link loader checks its key and client secret the same way", async () => {
  const { mountLink } = await import("../dist/checkout.js");
  globalThis.Element = class {};
  try {
    const el = new Element();
    assert.throws(() => mountLink(el, { publishableKey: "pk_short", clientSecret: secret }), /mountLink: publishableKey/);
    assert.throws(() => mountLink(el, { publishableKey: pk, clientSecret: "x" }), /mountLink: clientSecret/);
  } finally {
    delete globalThis.Element;
  }
});

test("the coupon loader needs the partner's key and takes only a code-like code", async () => {
  const { mountCoupon } = await import("../dist/checkout.js");
  globalThis.Element = class {};
  try {
    const el = new Element();
    assert.throws(() => mountCoupon(el, { publishableKey: "mk_partner_" + "a".repeat(64) }), /mountCoupon: publishableKey/);
    assert.throws(() => mountCoupon(el, { publishableKey: pk, code: "<script>" }), /mountCoupon: code/);
  } finally {
    delete globalThis.Element;
  }
});

test("the frame follows the height the widget posts in its event's detail", async () => {
  const { mountLink } = await import("../dist/checkout.js");
  const listeners = [];
  const frame = { style: {}, contentWindow: {}, addEventListener() {} };
  globalThis.Element = class { replaceChildren() {} };
  globalThis.document = { createElement: () => frame };
  globalThis.window = { addEventListener: (_, f) => listeners.push(f), removeEventListener() {} };
  try {
    const seen = [];
    const w = mountLink(new Element(), { publishableKey: pk, clientSecret: secret, cloudOrigin: "https://points.example" });
    w.on("resize", (d) => seen.push(d.height));
    const post = (data, origin = "https://points.example", source = frame.contentWindow) =>
      listeners.forEach((f) => f({ origin, source, data }));
    post({ mykey: "checkout", type: "resize", detail: { height: 787 } });
    assert.equal(frame.style.height, "787px");
    assert.deepEqual(seen, [787]);
    // Another origin or window moves nothing.
    post({ mykey: "checkout", type: "resize", detail: { height: 200 } }, "https://evil.example");
    post({ mykey: "checkout", type: "resize", detail: { height: 200 } }, "https://points.example", {});
    assert.equal(frame.style.height, "787px");
  } finally {
    delete globalThis.Element;
    delete globalThis.document;
    delete globalThis.window;
  }
});

test("cloudOrigin must be the points cloud's https origin", async () => {
  const { mountLink } = await import("../dist/checkout.js");
  globalThis.Element = class {};
  try {
    const el = new Element();
    for (const bad of ["http://points.example", "https://points.example/app", "javascript:alert(1)", "points.example"]) {
      assert.throws(() => mountLink(el, { publishableKey: pk, clientSecret: secret, cloudOrigin: bad }), /cloudOrigin/, bad);
    }
  } finally {
    delete globalThis.Element;
  }
});
