// The npm package as an integrator loads it: the generated ES module and the .wasm file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { initSync, checkMykeyId, checkPoints, mykeyIdFromRandom, readProblem } from "../dist/mykey_sdk.js";

initSync({ module: readFileSync(new URL("../dist/mykey_sdk_bg.wasm", import.meta.url)) });

test("MyKey IDs are checked with the server's rules", () => {
  assert.equal(checkMykeyId("AB12CD34"), "AB12CD34");
  assert.throws(() => checkMykeyId("ab12cd34"), /upper-case/);
  assert.throws(() => checkMykeyId("AB12"), /exactly 8/);
  assert.match(mykeyIdFromRandom(new Uint8Array(8).fill(200)), /^[A-HJ-NP-Z2-9]{8}$/);
});

test("coupon codes are checked by their check symbol before they are sent", async () => {
  const { checkCouponCode } = await import("../dist/mykey_sdk.js");
  // 15 zeros and the check symbol 0 (the Luhn mod 32 sum of zeros is zero).
  assert.equal(checkCouponCode("0000 0000 0000 000o"), "0000-0000-0000-0000");
  assert.throws(() => checkCouponCode("0000-0000-0000-0001"), /^Error: check$/);
  assert.throws(() => checkCouponCode("0000-0000-0000"), /^Error: length$/);
  assert.throws(() => checkCouponCode("0000-0000-0000-000U"), /^Error: character$/);
});

test("point amounts must be whole and positive", () => {
  assert.equal(checkPoints("120"), 120);
  assert.throws(() => checkPoints("1.5"), /whole numbers/);
  assert.throws(() => checkPoints("0"), /greater than zero/);
});

test("problem bodies are read into stable slugs", () => {
  const p = readProblem(JSON.stringify({
    type: "urn:mykey:problem:insufficient-points", title: "Not enough available points",
    status: 422, detail: "account 5 has 3 points available, 10 are needed", available: 3,
  }));
  assert.deepEqual(p, { slug: "insufficient-points", status: 422, detail: "account 5 has 3 points available, 10 are needed" });
});

test("receipts verify against the Certificate Transparency reference tree", async () => {
  const { verifyInclusion, verifyConsistency } = await import("../dist/mykey_sdk.js");
  const b64 = (hex) => Buffer.from(hex, "hex").toString("base64");
  // Leaf 5 ("40414243") of the 8-leaf reference tree; its leaf hash is SHA-256(0x00 || leaf).
  const { createHash } = await import("node:crypto");
  const leaf = createHash("sha256").update(Buffer.from("0040414243", "hex")).digest("base64");
  const proof = [
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  ].map(b64);
  const root8 = b64("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
  verifyInclusion(5, 8, leaf, proof, root8);
  assert.throws(() => verifyInclusion(4, 8, leaf, proof, root8), /root|length|range/);
  const root6 = b64("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef");
  verifyConsistency(6, 8, [
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  ].map(b64), root6, root8);
});

test("the card bridges are typed for TypeScript users", () => {
  const dts = readFileSync(new URL("../dist/mykey_sdk.d.ts", import.meta.url), "utf8");
  assert.match(dts, /export function listBridges\(\): Promise<BridgeInfo\[\]>/);
  assert.match(dts, /export function connect\(kind: "native-messaging" \| "webusb" \| "virtual", options: ConnectOptions\): Promise<CardBridge>/);
  // The card signs where it is: the web when no context is named, a widget, or a counter.
  assert.match(dts, /authenticate\(nonce: string, pin: string, context\?: object \| null\): Promise<AuthToken>/);
  assert.match(dts, /checkReceipt\(server: string, text: string, logKey: string, witnessKeys: string\[\], quorum: number\): Promise<ReceiptChecked>/);
  assert.match(dts, /export interface ReceiptError extends Error \{ slug: "not-a-receipt"/);
  assert.match(dts, /export type SigningContext = \{ kind: "web" \} \| \{ kind: "widget" \} \| \{ kind: "counter"; shop: number; device: string \}/);
  assert.match(dts, /pinTriesLeft\(\): Promise<PinTries>/);
  assert.match(dts, /export interface CardError extends Error/);
  // No method signs a caller's hash.
  assert.doesNotMatch(dts, /sign\w*\(/i);
});

test("a receipt is read, and the keys checked, before the log is asked", async () => {
  const { checkReceipt } = await import("../dist/mykey_sdk.js");
  // Port 9 (discard) is never asked: each of these fails before any request.
  await assert.rejects(checkReceipt("http://127.0.0.1:9", "hello", "", [], 0), (e) => e.slug === "not-a-receipt");
  const text = `mykey-receipt:1:2ba93722-2841-43c1-8e19-6c7ebe49542d:13:${Buffer.alloc(32, 7).toString("base64")}`;
  await assert.rejects(checkReceipt("http://127.0.0.1:9", text, "not a vkey", [], 0), (e) => e.slug === "key");
  await assert.rejects(
    checkReceipt("http://127.0.0.1:9", text.replace(":13:", ":x:"), "", [], 0),
    (e) => e.slug === "not-a-receipt" && /position/.test(e.message),
  );
});
