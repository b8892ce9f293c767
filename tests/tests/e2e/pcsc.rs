//! The real PC/SC path: pcscd with vsmartcard's vpcd, the virtual My Number Card connected
//! to it, then (1) OpenSC's JPKI driver reading the card's certificate, and (2) headless
//! Chromium with the mykey extension, the native host `mykey-bridge-host`, and a page using
//! the SDK from `pkg/`: read the certificate, count tries, a wrong PIN, log in, register.
//! Both use the one vpcd reader, so nextest runs them one at a time (`.config/nextest.toml`).

use std::path::{Path, PathBuf};
use std::process::Command;

use mykey_server::testing::TestDb;
use mykey_tests::webdriver::Browser;
use mykey_tests::{insert_virtual_card, run, server_bin, sibling_bin, temp_dir, test_site, Server};
use serde_json::Value;

const EXTENSION_ID: &str = "poidifdoelgogolidnenodicnjkfhicm";

/// A demo CA and a card from it (PIN 1234) in `dir`.
fn issue_card(dir: &Path) -> (PathBuf, PathBuf) {
    let (ca, card) = (dir.join("ca.json"), dir.join("card.json"));
    run(Command::new(server_bin()).arg("virtual-card").arg("--demo-ca-file").arg(&ca).arg("--out").arg(&card)).unwrap();
    (ca, card)
}

/// Chromium's arguments for a profile in `dir` with the mykey extension, and the native host's
/// manifest installed in that profile.
fn with_extension(dir: &Path) -> Vec<String> {
    let profile = dir.join("profile");
    run(Command::new(sibling_bin("mykey-bridge-host"))
        .args(["install", "--extension-id", EXTENSION_ID, "--manifest-dir"])
        .arg(profile.join("NativeMessagingHosts")))
    .unwrap();
    let extension = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-wasm/extension").canonicalize().unwrap();
    vec![
        format!("--user-data-dir={}", profile.display()),
        format!("--load-extension={}", extension.display()),
        format!("--disable-extensions-except={}", extension.display()),
    ]
}

#[test]
fn pcsc_opensc_reads_the_virtual_cards_certificate() {
    let dir = temp_dir("opensc");
    let (_, card_file) = issue_card(&dir);
    let _card = insert_virtual_card(&card_file).unwrap();
    let name = run(Command::new("opensc-tool").arg("-n")).unwrap();
    assert_eq!(name.trim(), "jpki", "OpenSC recognises the JPKI card by its ATR");
    let listed = run(Command::new("pkcs15-tool").arg("--list-certificates")).unwrap();
    assert!(listed.contains("User Authentication Certificate"), "{listed}");
    let pem = run(Command::new("pkcs15-tool").args(["--read-certificate", "01"])).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let card: Value = serde_json::from_slice(&std::fs::read(&card_file).unwrap()).unwrap();
    assert_eq!(b64, card["auth_certificate"].as_str().unwrap(), "pkcs15-tool read the card's auth certificate");
    let pins = run(Command::new("pkcs15-tool").arg("--list-pins")).unwrap();
    assert!(pins.contains("User Authentication PIN") && pins.contains("Tries left     : 3"), "{pins}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pcsc_card_bridge_in_chromium_logs_in_and_registers() {
    let dir = temp_dir("bridge");
    let (ca, card_file) = issue_card(&dir);
    let _card = insert_virtual_card(&card_file).unwrap();

    let web = test_site(&dir);
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &ca, &web).unwrap();

    let browser = Browser::start(&with_extension(&dir)).unwrap();
    browser.goto(&format!("{}/app/card-login.html?pin=1234&last-try=1", server.base)).unwrap();
    // The extension asks before the site may read the card, and names the site.
    let asked = browser.answer_extension_window("#allow").unwrap();
    assert!(asked.contains(&server.base), "{asked}");
    // Two wrong PINs leave one try: the next PIN goes to the card only if the user confirms.
    let asked = browser.answer_extension_window("#deny").unwrap();
    assert!(asked.contains("1 回") && asked.contains(&server.base), "{asked}");
    browser.answer_extension_window("#allow").unwrap();
    let out = browser.page_result().unwrap();
    assert!(out.get("error").is_none(), "{out:#}");
    assert_eq!(out["bridges"][0]["kind"], "native-messaging");
    assert_eq!(out["bridges"][0]["available"], true, "{out:#}");
    assert_eq!(out["bridges"][0]["readers"][0]["card"], true, "{out:#}");
    let card: Value = serde_json::from_slice(&std::fs::read(&card_file).unwrap()).unwrap();
    assert_eq!(out["certificate"], card["auth_certificate"]);
    assert_eq!(out["triesBefore"]["left"], 3);
    assert_eq!(out["wrongPin"]["code"], "wrong_pin", "{out:#}");
    assert_eq!(out["wrongPin"]["triesLeft"], 2);
    assert_eq!(out["secondWrong"]["triesLeft"], 1, "{out:#}");
    assert_eq!(out["lastTryRefused"]["code"], "not_allowed", "{out:#}");
    assert_eq!(out["triesAfterRefusal"]["left"], 1, "the refused PIN never reached the card: {out:#}");
    assert_eq!(out["login"]["status"], 200, "{out:#}");
    assert_eq!(out["login"]["body"]["mykey_id"], Value::Null);
    assert_eq!(out["registered"]["status"], 201, "{out:#}");
    assert_eq!(out["me"]["mykey_id"], out["registered"]["body"]["mykey_id"]);
    println!("authenticate() to token over native messaging: {:.0} ms", out["authenticateMs"].as_f64().unwrap());

    // The answer is remembered for this site: the same page again asks nothing more.
    browser.goto(&format!("{}/app/card-login.html?pin=1234", server.base)).unwrap();
    let out = browser.page_result().unwrap();
    assert_eq!(out["triesBefore"]["left"], 3, "{out:#}");
    assert_eq!(out["login"]["status"], 200, "{out:#}");
    // The extension's options page lists the site and takes it back at once.
    browser.goto(&format!("chrome-extension://{EXTENSION_ID}/options.html")).unwrap();
    browser.wait_text("#sites", &server.base).unwrap();
    assert_eq!(browser.axe_violations().unwrap(), Vec::<String>::new());
    browser.click("#sites button").unwrap();
    browser
        .wait_for("return document.getElementById('none').hidden ? null : true;", std::time::Duration::from_secs(10))
        .unwrap();
    // Not allowed any more: a refusal in the extension's window reaches the page as `not_allowed`.
    browser.goto(&format!("{}/app/card-login.html?pin=1234", server.base)).unwrap();
    browser.answer_extension_window("#deny").unwrap();
    let out = browser.page_result().unwrap();
    assert_eq!(out["error"]["code"], "not_allowed", "{out:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The demo points cloud with a card from its CA in pcscd's reader, and the resident whose
/// MyKey ID is bound to that card.
struct CardDemo {
    dir: PathBuf,
    _card: mykey_tests::Process,
    _db: TestDb,
    server: Server,
    keys: mykey_server::demo::DemoKeys,
    resident: i64,
    /// The resident's MyKey ID (password `abc123!x`).
    mykey_id: String,
}

fn card_demo(name: &str) -> CardDemo {
    let dir = temp_dir(name);
    let (ca, card_file) = issue_card(&dir);
    let card = insert_virtual_card(&card_file).unwrap();
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &ca, &mykey_tests::web_dist()).unwrap();
    let keys = serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let (mykey_id, resident) = crate::checkout::register(&server.base, &dir);
    CardDemo { dir, _card: card, _db: db, server, keys, resident, mykey_id }
}

/// The card in the checkout widget: a resident whose MyKey ID is bound to the virtual card in
/// pcscd's reader pays the example store in full, signing in inside the widget's iframe on
/// the points cloud's origin through the extension and the native host (third-party cookies
/// blocked; the store is another site).
#[test]
fn pcsc_a_resident_pays_a_store_with_the_card_in_the_widget() {
    use crate::checkout::{balance, grant, start_store};
    let CardDemo { dir, _card, _db, server, keys, resident, .. } = card_demo("checkout-card");
    grant(&server.base, &keys, resident, 20000);
    let (_store, store) = start_store(&server.base, &dir);

    let b = Browser::start_blocking_third_party_cookies(&with_extension(&dir)).unwrap();
    for product in [2, 3] {
        b.goto(&format!("{store}/products/{product}")).unwrap();
        b.click("#add-to-cart").unwrap();
        b.wait_text("h1", "カート").unwrap();
    }
    b.click("#to-checkout").unwrap();
    b.enter_frame("#pay iframe").unwrap();
    b.wait_text("h1", "ポイントで支払う").unwrap();
    b.click("input[name=bridge][value=native-messaging]").unwrap();
    b.type_text("#pin", "1234").unwrap();
    b.click("#panel-card button[type=submit]").unwrap();
    // The card is used from the points cloud's frame: the extension asks about that origin.
    assert!(b.answer_extension_window("#allow").unwrap().contains(&server.base));
    b.enter_frame("#pay iframe").unwrap();
    if let Err(e) = b.wait_for(
        "return document.querySelector('input[name=account]') ? true : null;",
        std::time::Duration::from_secs(30),
    ) {
        panic!("{e}: the widget shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    let total: i64 = b.eval("return Number(document.querySelector('#points').value);").unwrap().as_i64().unwrap();
    // The extension's window covered the page a moment ago.
    b.wait_confirmable().unwrap();
    b.click("form button.primary").unwrap();
    b.leave_frames().unwrap();
    b.wait_for(
        "const e = document.getElementById('order-state'); return e && e.dataset.state === 'completed' ? true : null;",
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(balance(&server.base, &keys, resident), 20000 - total, "the whole order was paid with points");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The card in the partner's coupon widget: a member of the example card company's site
/// exchanges card points, and the resident whose MyKey ID is bound to the virtual card in
/// pcscd's reader redeems the code inside the widget's iframe through the extension and the
/// native host (third-party cookies blocked; the member site is another site).
#[test]
fn pcsc_a_member_redeems_a_partners_coupon_with_the_card_in_the_widget() {
    use crate::partners::{reserved, start_partner};
    let CardDemo { dir, _card, _db, server, keys, resident, .. } = card_demo("coupon-card");
    let (_site, site) = start_partner(&server.base, &dir);

    let b = Browser::start_blocking_third_party_cookies(&with_extension(&dir)).unwrap();
    b.goto(&format!("{site}/")).unwrap();
    b.type_text("#number", "M0002").unwrap();
    b.type_text("#password", "member-test").unwrap();
    b.click("main form button[type=submit]").unwrap();
    b.wait_text("#card-points", "5000").unwrap();
    b.type_text("#card-points-input", "4000").unwrap();
    b.click("#exchange").unwrap();
    b.wait_text("#code", "-").unwrap();
    b.enter_frame("#widget iframe").unwrap();
    b.wait_text("#code-hint", "正しい").unwrap();
    b.click("form button.primary").unwrap();
    b.wait_text("h2", "サインイン").unwrap();
    b.click("input[name=bridge][value=native-messaging]").unwrap();
    b.type_text("#pin", "1234").unwrap();
    b.click("#panel-card button[type=submit]").unwrap();
    assert!(b.answer_extension_window("#allow").unwrap().contains(&server.base));
    b.enter_frame("#widget iframe").unwrap();
    if let Err(e) = b.wait_text("main", "2,000ポイント") {
        panic!("{e}: the widget shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    b.wait_confirmable().unwrap();
    b.click("form button.primary").unwrap();
    b.wait_text("[role=status]", "受け取りました").unwrap();
    b.leave_frames().unwrap();
    assert_eq!(reserved(&server.base, &keys, resident), 2000, "the code's points arrived as reserved points");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The counter terminal: the shop makes a pairing code, the terminal page enrols this browser
/// (a WebCrypto key it cannot export), staff type the amount, the resident's card in pcscd's
/// reader signs a balance read and then the payment through the extension and the native host,
/// in this counter's context; the screen shows the points usable here, then what is left and
/// the receipt. axe finds nothing on any screen; screenshots of each.
#[test]
fn pcsc_a_shop_enrols_a_counter_terminal_and_takes_a_card_payment() {
    use crate::checkout::{balance, grant};
    use mykey_tests::{no_placeholders, no_violations, shoot};
    let CardDemo { dir, _card, _db, server, keys, resident, mykey_id } = card_demo("terminal");
    grant(&server.base, &keys, resident, 3000);
    let http = reqwest::blocking::Client::new();
    let shop = keys.ids.shop;
    // What the shop's server reads with its store key.
    let by_store = |path: &str| -> serde_json::Value {
        http.get(format!("{}{path}", server.base)).bearer_auth(&keys.store).send().unwrap().json().unwrap()
    };
    let code: serde_json::Value = http
        .post(format!("{}/v1/shops/{shop}/pairing-codes", server.base))
        .bearer_auth(&keys.store)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let code = code["code"].as_str().unwrap();

    let b = Browser::start(&with_extension(&dir)).unwrap();
    b.goto(&format!("{}/app/terminal", server.base)).unwrap();
    b.wait_text("h2", "端末の登録").unwrap();
    let screen = |name: &str| {
        no_violations(&b, name);
        no_placeholders(&b, name);
        shoot(&b, name);
    };
    screen("terminal-enrol");
    // A wrong code first: a sentence, and nothing enrolled.
    b.type_text("#code", "2345-6789").unwrap();
    b.type_text("#name", "レジ1").unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_text("#term-error", "ペアリングコード").unwrap();
    screen("terminal-enrol-refused");
    // What was typed stays after a refusal: only the code is typed again.
    assert_eq!(b.eval("return document.getElementById('name').value;").unwrap(), "レジ1");
    b.type_text("#code", code).unwrap();
    b.click("form button[type=submit]").unwrap();
    if let Err(e) = b.wait_text("h2", "お支払い金額") {
        panic!("{e}: the terminal shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    b.wait_text("#term-device", "レジ1").unwrap();
    screen("terminal-amount");
    // Enrolled for good: a reload keeps the device.
    b.goto(&format!("{}/app/terminal", server.base)).unwrap();
    b.wait_text("h2", "お支払い金額").unwrap();

    b.type_text("#amount", "1.5").unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_text("#term-error", "整数").unwrap();
    b.type_text("#amount", "1200").unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_text("h2", "かざして").unwrap();
    b.wait_for(
        "const e = document.getElementById('bridge-native-messaging'); return e && !e.disabled ? true : null;",
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    screen("terminal-card");
    b.click("#bridge-native-messaging").unwrap();
    b.wait_text("h2", "暗証番号").unwrap();
    screen("terminal-pin");
    b.type_text("#pin", "1234").unwrap();
    b.click("form button[type=submit]").unwrap();
    assert!(b.answer_extension_window("#allow").unwrap().contains(&server.base));
    if let Err(e) =
        b.wait_for("return document.getElementById('usable') ? true : null;", std::time::Duration::from_secs(30))
    {
        panic!("{e}: the terminal shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    b.wait_text("#usable", "自治体ポイント: 3,000ポイント").unwrap();
    screen("terminal-confirm");
    b.click("#term-pay").unwrap();
    if let Err(e) =
        b.wait_for("return document.getElementById('receipt') ? true : null;", std::time::Duration::from_secs(30))
    {
        panic!("{e}: the terminal shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    b.wait_text("#paid-points", "1,200").unwrap();
    b.wait_text("#left-points", "1,800").unwrap();
    screen("terminal-paid");
    assert_eq!(balance(&server.base, &keys, resident), 1800, "the ledger holds what the screen says");

    // The receipt as a 58 mm and an 80 mm printer get it (the print CSS): the amounts, the
    // transaction and a QR code that opens the page checking it against the log; nothing of
    // the screen's buttons.
    let tx = b.eval("return document.getElementById('receipt-id').textContent;").unwrap();
    let tx = tx.as_str().unwrap().to_owned();
    let mut receipt_url = String::new();
    for width_mm in [58, 80] {
        let (text, url) = printed_receipt(&b, &dir, width_mm);
        // A narrow roll may break the transaction id over two lines.
        let joined: String = text.split_whitespace().collect();
        assert!(joined.contains("1,200") && joined.contains("1,800") && joined.contains(&tx), "{width_mm} mm: {text}");
        assert!(!text.contains("次のお客様") && !text.contains("レシートを印刷"), "{width_mm} mm: {text}");
        assert!(url.starts_with(&format!("{}/app/receipt#mykey-receipt:1:{tx}:", server.base)), "{url}");
        receipt_url = url;
    }
    b.click("#term-next").unwrap();
    b.wait_text("h2", "お支払い金額").unwrap();
    // The resident's phone opens it: the SDK checks the log's signed checkpoint and the
    // transaction's inclusion proof.
    b.goto(&receipt_url).unwrap();
    b.wait_text("#receipt-status", "記録されています").unwrap();
    b.wait_text("#receipt-transaction", &tx).unwrap();
    screen("receipt-checked");
    // The same receipt with another position in the log: the proof does not lead to the root.
    let fragment = receipt_url.split_once('#').unwrap().1;
    let parts: Vec<&str> = fragment.split(':').collect();
    let index: u64 = parts[3].parse().unwrap();
    let altered = format!("mykey-receipt:1:{}:{}:{}", parts[2], index - 1, parts[4]);
    b.type_text("#receipt-text", &altered).unwrap();
    b.click("section[aria-labelledby=receipt-title] button[type=submit]").unwrap();
    b.wait_for(
        "return document.querySelector('#receipt-status[data-slug=not-in-log]') ? true : null;",
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    b.wait_text("#receipt-status", "改ざん").unwrap();
    screen("receipt-altered");
    b.type_text("#receipt-text", "hello").unwrap();
    b.click("section[aria-labelledby=receipt-title] button[type=submit]").unwrap();
    b.wait_text("#receipt-status", "レシートの記録として読み取れません").unwrap();

    // The card step once the bridges are listed: the extension's bridge, the PIN.
    let card_and_pin = |b: &Browser| {
        b.wait_for(
            "const e = document.getElementById('bridge-native-messaging'); return e && !e.disabled ? true : null;",
            std::time::Duration::from_secs(30),
        )
        .unwrap();
        b.click("#bridge-native-messaging").unwrap();
        b.wait_text("h2", "暗証番号").unwrap();
        b.type_text("#pin", "1234").unwrap();
        b.click("form button[type=submit]").unwrap();
    };

    // A refund of part of the payment: the receipt's QR code typed by a scanner, then the card
    // that paid signs the refund's terms at this counter.
    b.goto(&format!("{}/app/terminal", server.base)).unwrap();
    b.wait_text("h2", "お支払い金額").unwrap();
    b.click("#term-refund").unwrap();
    b.wait_text("h2", "返金").unwrap();
    screen("terminal-refund");
    b.type_text("#refund-payment", "1200").unwrap();
    b.type_text("#refund-amount", "200").unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_text("#term-error", "取引番号として読み取れません").unwrap();
    b.type_text("#refund-payment", &receipt_url).unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_text("#term-amount", "返金するポイント: 200ポイント").unwrap();
    card_and_pin(&b);
    // The extension remembers that this site may use the card: no question this time.
    if let Err(e) = b.wait_text("#refunded-points", "200") {
        panic!("{e}: the terminal shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    screen("terminal-refunded");
    assert_eq!(balance(&server.base, &keys, resident), 2000, "the ledger gave back what the screen says");
    assert!(
        b.eval("return !!document.querySelector('#receipt-qr svg');").unwrap() == true,
        "the refund's receipt has its QR code"
    );
    b.click("#term-next").unwrap();
    b.wait_text("h2", "お支払い金額").unwrap();

    // The day's close on the terminal: the payment and the refund by this terminal beside
    // what else the shop took today (the demo's own), and the net the ledger holds.
    let close = by_store(&format!("/v1/shops/{shop}/daily-close"));
    let net = close["net_points"].as_i64().unwrap();
    let net = format!("{},{:03}", net / 1000, net % 1000);
    b.click("#term-close").unwrap();
    if let Err(e) = b.wait_text("#close-total", net.trim_start_matches("0,")) {
        panic!("{e}: the terminal shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    b.wait_text("#close-lines", "前橋市").unwrap();
    let rows = b
        .eval("return [...document.querySelectorAll('#close-lines tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' ').trim());")
        .unwrap();
    let rows: Vec<String> = serde_json::from_value(rows).unwrap();
    assert!(rows.contains(&"前橋市 レジ1 お支払い 1 1,200".to_owned()), "{rows:?}");
    assert!(rows.contains(&"前橋市 レジ1 返金 1 -200".to_owned()), "{rows:?}");
    screen("terminal-close");
    let (text, _) = printed(&b, &dir, 80);
    assert!(text.contains("レジ1") && !text.contains("CSV"), "{text}");
    b.click("#close-back").unwrap();
    b.wait_text("h2", "お支払い金額").unwrap();

    // Facility mode: the shop registers its card service; the card links a patron number,
    // then a card read shows it.
    let res = http
        .put(format!("{}/v1/facilities/{shop}/service", server.base))
        .bearer_auth(&keys.store)
        .json(&serde_json::json!({"name": "前橋市立図書館 利用者カード", "kind": "library"}))
        .send()
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().unwrap_or_default());
    b.click("#term-facility").unwrap();
    b.wait_text("h2", "施設の利用者番号").unwrap();
    screen("terminal-facility");
    b.type_text("#patron-number", "LIB 0001").unwrap();
    b.click("#fac-link").unwrap();
    b.wait_text("#term-error", "64文字").unwrap();
    b.type_text("#patron-number", "LIB-0001").unwrap();
    b.click("#fac-link").unwrap();
    card_and_pin(&b);
    if let Err(e) = b.wait_text("#patron", "LIB-0001") {
        panic!("{e}: the terminal shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    b.wait_text("h2", "ひも付けました").unwrap();
    screen("terminal-patron-linked");
    b.click("#term-next").unwrap();
    b.click("#term-facility").unwrap();
    b.click("#fac-lookup").unwrap();
    card_and_pin(&b);
    b.wait_text("#patron", "利用者番号: LIB-0001").unwrap();
    screen("terminal-patron");
    b.click("#term-next").unwrap();
    b.wait_text("h2", "お支払い金額").unwrap();
    // A point voucher of 500 points: the card and PIN consent; the screen shows the points held
    // and what is left; the voucher prints with its number and signed QR code.
    b.click("#term-voucher-issue").unwrap();
    b.wait_text("h2", "ポイント券発行").unwrap();
    screen("terminal-voucher-amount");
    b.type_text("#voucher-amount", "500").unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_text("#term-amount", "500ポイント").unwrap();
    card_and_pin(&b);
    if let Err(e) = b.wait_text("#voucher-after", "1,500") {
        panic!("{e}: the terminal shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    b.wait_text("#voucher-held", "2,000").unwrap();
    screen("terminal-voucher-confirm");
    b.click("#voucher-issue").unwrap();
    if let Err(e) = b.wait_text("#voucher-points", "500") {
        panic!("{e}: the terminal shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    screen("terminal-voucher-issued");
    assert_eq!(balance(&server.base, &keys, resident), 1500, "the voucher's points left the account");
    let number = b.eval("return document.getElementById('voucher-number').textContent;").unwrap();
    let number = number.as_str().unwrap().to_owned();
    let mut ticket = String::new();
    for width_mm in [58, 80] {
        let (text, code) = printed_receipt(&b, &dir, width_mm);
        let joined: String = text.split_whitespace().collect();
        assert!(joined.contains("前橋市ポイントポイント券") && joined.contains("500ポイント"), "{width_mm} mm: {text}");
        assert!(joined.contains(&number.replace(' ', "")) && joined.contains("有効期間"), "{width_mm} mm: {text}");
        assert!(!text.contains("次のお客様") && !text.contains("発行後"), "{width_mm} mm: {text}");
        assert!(code.starts_with("mykey-voucher:1:"), "{code}");
        ticket = code;
    }
    b.click("#term-next").unwrap();
    // A second voucher, to be spent by its typed number.
    b.click("#term-voucher-issue").unwrap();
    b.type_text("#voucher-amount", "100").unwrap();
    b.click("form button[type=submit]").unwrap();
    card_and_pin(&b);
    b.wait_text("#voucher-after", "1,400").unwrap();
    b.click("#voucher-issue").unwrap();
    b.wait_text("#voucher-points", "100").unwrap();
    let second = b.eval("return document.getElementById('voucher-number').textContent;").unwrap();
    let second = second.as_str().unwrap().to_owned();
    b.click("#term-next").unwrap();
    b.wait_text("h2", "お支払い金額").unwrap();

    // Another shop of 前橋市 (the online store's counter), a browser of its own: it checks the
    // scanned code's signature itself, refuses an altered one without asking, takes the voucher
    // once by its code, and the second by its typed number (a typo first).
    let online = keys.ids.online_store;
    let code: serde_json::Value = http
        .post(format!("{}/v1/shops/{online}/pairing-codes", server.base))
        .bearer_auth(&keys.online_store)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let other = Browser::start(&[]).unwrap();
    other.goto(&format!("{}/app/terminal", server.base)).unwrap();
    other.wait_text("h2", "端末の登録").unwrap();
    other.type_text("#code", code["code"].as_str().unwrap()).unwrap();
    other.type_text("#name", "店頭").unwrap();
    other.click("form button[type=submit]").unwrap();
    other.wait_text("h2", "お支払い金額").unwrap();
    let other_screen = |name: &str| {
        no_violations(&other, name);
        no_placeholders(&other, name);
        shoot(&other, name);
    };
    other.click("#term-voucher-pay").unwrap();
    other.wait_text("h2", "ポイント券で支払").unwrap();
    other_screen("terminal-voucher-redeem");
    let altered = ticket.replace(":500:", ":5000:");
    other.type_text("#voucher-input", &altered).unwrap();
    other.click("form button[type=submit]").unwrap();
    other.wait_text("#term-error", "偽造").unwrap();
    other_screen("terminal-voucher-forged");
    other.type_text("#voucher-input", &ticket).unwrap();
    other.click("form button[type=submit]").unwrap();
    if let Err(e) = other.wait_text("#paid-points", "500") {
        panic!("{e}: the terminal shows {}", other.eval("return document.querySelector('main').textContent;").unwrap());
    }
    other.wait_text("#voucher-redeemed", "ポイント券").unwrap();
    other_screen("terminal-voucher-redeemed");
    other.click("#term-next").unwrap();
    other.click("#term-voucher-pay").unwrap();
    other.type_text("#voucher-input", &ticket).unwrap();
    other.click("form button[type=submit]").unwrap();
    other.wait_text("#term-error", "使用済み").unwrap();
    other_screen("terminal-voucher-spent");
    let mut typo: Vec<char> = second.chars().collect();
    typo[5] = if typo[5] == '0' { '1' } else { '0' };
    other.type_text("#voucher-input", &typo.into_iter().collect::<String>()).unwrap();
    other.click("form button[type=submit]").unwrap();
    other.wait_text("#term-error", "読み取れません").unwrap();
    other.type_text("#voucher-input", &second).unwrap();
    other.click("form button[type=submit]").unwrap();
    other.wait_text("#paid-points", "100").unwrap();
    assert_eq!(balance(&server.base, &keys, resident), 1400, "spent vouchers do not come back");
    let close = by_store(&format!("/v1/shops/{shop}/daily-close"));
    assert!(close["lines"].as_array().unwrap().iter().all(|l| l["kind"] != "voucher_redemption"), "{close}");
    let res = http
        .get(format!("{}/v1/shops/{online}/daily-close", server.base))
        .bearer_auth(&keys.online_store)
        .send()
        .unwrap();
    let online_close: serde_json::Value = res.json().unwrap();
    assert!(
        online_close["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "voucher_redemption" && l["points"] == 600),
        "{online_close}"
    );

    // A third, left unspent: at its expiry (the scheduled jobs as of then) its points come
    // back, and my page says so.
    b.click("#term-voucher-issue").unwrap();
    b.type_text("#voucher-amount", "50").unwrap();
    b.click("form button[type=submit]").unwrap();
    card_and_pin(&b);
    b.wait_text("#voucher-after", "1,350").unwrap();
    b.click("#voucher-issue").unwrap();
    b.wait_text("#voucher-points", "50").unwrap();
    assert_eq!(balance(&server.base, &keys, resident), 1350);
    other.goto(&format!("{}/app/mypage", server.base)).unwrap();
    other.type_text("#login-id", &mykey_id).unwrap();
    other.type_text("#login-password", "abc123!x").unwrap();
    other.click("main form button[type=submit]").unwrap();
    other.wait_text("#vouchers", "未使用").unwrap();
    other.wait_text("#vouchers", "使用済み").unwrap();
    other.eval("document.getElementById('vouchers-title').scrollIntoView(); return true;").unwrap();
    other_screen("mypage-vouchers");
    let expires = chrono::Utc::now() + chrono::Duration::days(4);
    let jobs: serde_json::Value = http
        .post(format!("{}/v1/jobs/run", server.base))
        .bearer_auth(&keys.operator)
        .json(&serde_json::json!({"now": expires}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(jobs["returned_vouchers"], 1, "{jobs}");
    assert_eq!(balance(&server.base, &keys, resident), 1400, "the unspent 50 came back");
    other.goto(&format!("{}/app/mypage", server.base)).unwrap();
    other.wait_text("#vouchers", "期限切れ").unwrap();
    other.eval("document.getElementById('vouchers-title').scrollIntoView(); return true;").unwrap();
    other_screen("mypage-vouchers-returned");

    // The shop sees the device, seen just now.
    let devices = by_store(&format!("/v1/shops/{shop}/devices"));
    assert_eq!(devices[0]["name"], "レジ1", "{devices}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The page printed on paper `width_mm` wide (its print CSS), as text and the one QR code on
/// it, read from the PDF Chromium makes (poppler's pdftotext and pdftoppm, then rqrr). The
/// rendering is kept with the screenshots.
fn printed_receipt(b: &Browser, dir: &Path, width_mm: u32) -> (String, String) {
    let (text, png) = printed(b, dir, width_mm);
    let image = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let codes: Vec<String> = prepared.detect_grids().iter().map(|g| g.decode().unwrap().1).collect();
    assert_eq!(codes.len(), 1, "{width_mm} mm: one QR code on the receipt");
    (text, codes.into_iter().next().unwrap())
}

/// The page printed on paper `width_mm` wide (its print CSS): its text and its first page as
/// PNG, kept with the screenshots.
fn printed(b: &Browser, dir: &Path, width_mm: u32) -> (String, Vec<u8>) {
    let title = b.eval("return document.querySelector('main h2').textContent;").unwrap();
    let title = title.as_str().unwrap_or_default();
    let title = if title.contains("日計") {
        "close"
    } else if title.contains("ポイント券") {
        "voucher"
    } else {
        "receipt"
    };
    let pdf = dir.join(format!("{title}-{width_mm}.pdf"));
    std::fs::write(&pdf, b.print_pdf(f64::from(width_mm) / 10.0, 20.0).unwrap()).unwrap();
    let text = run(Command::new("pdftotext").args(["-layout"]).arg(&pdf).arg("-")).unwrap();
    let png = dir.join(format!("{title}-{width_mm}"));
    run(Command::new("pdftoppm").args(["-r", "300", "-png", "-singlefile", "-f", "1", "-l", "1"]).arg(&pdf).arg(&png))
        .unwrap();
    let png = std::fs::read(png.with_extension("png")).unwrap();
    if let Ok(out) = std::env::var("MYKEY_SCREENSHOTS") {
        std::fs::write(Path::new(&out).join(format!("terminal-{title}-print-{width_mm}mm.png")), &png).unwrap();
    }
    (text, png)
}
