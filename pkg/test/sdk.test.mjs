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
