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
