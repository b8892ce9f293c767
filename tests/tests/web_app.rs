//! The resident web app in headless Chromium against the demo server, with the demo's
//! virtual card: create a MyKey ID through every candidate rule (three generations; an own
//! choice taken three times), the PIN and password rules, then my page; axe-core finds no
//! WCAG A/AA violations on any page; screenshots at phone and desktop width go to
//! `docs/screenshots/` when `MYKEY_SCREENSHOTS` is set.

use std::path::Path;
use std::time::Duration;

use mykey_server::testing::TestDb;
use mykey_tests::webdriver::Browser;
use mykey_tests::{temp_dir, Server};

fn dist() -> std::path::PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-app/dist");
    assert!(d.join("mykey_web_bg.wasm").exists(), "build the web app first: scripts/build-web");
    d
}

fn no_violations(b: &Browser, page: &str) {
    let v = b.axe_violations().unwrap();
    assert!(v.is_empty(), "axe-core on {page}: {v:#?}");
}

fn shoot(b: &Browser, name: &str) {
    let Ok(dir) = std::env::var("MYKEY_SCREENSHOTS") else { return };
    for (label, w, h) in [("phone", 390, 844), ("desktop", 1280, 900)] {
        b.resize(w, h).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(Path::new(&dir).join(format!("{name}-{label}.png")), b.screenshot().unwrap()).unwrap();
    }
}

/// Starts the card step: the virtual card, a wrong PIN (tries left shown), then the right one.
fn log_in_with_a_new_virtual_card(b: &Browser, base: &str) {
    b.goto(&format!("{base}/app/create")).unwrap();
    b.wait_for(
        "const e = document.getElementById('bridge-virtual'); return e && !e.disabled ? true : null;",
        Duration::from_secs(30),
    )
    .unwrap();
    b.click("#bridge-virtual").unwrap();
    b.wait_text("#tries", "3").unwrap();
    b.type_text("#pin", "0000").unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_text("#step-error", "残り回数：2").unwrap();
    b.type_text("#pin", "1234").unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_for("return document.getElementById('generate') ? true : null;", Duration::from_secs(30)).unwrap();
}

/// Password (its rules shown as typed), home municipality, confirmation, registration.
fn finish_registration(b: &Browser) -> String {
    b.click("#to-form").unwrap();
    b.type_text("#password", "abc").unwrap();
    b.wait_for(
        "return document.querySelectorAll('#password-rules .ok').length === 1 ? true : null;",
        Duration::from_secs(10),
    )
    .unwrap();
    b.type_text("#password", "abc123!x").unwrap();
    b.type_text("#password2", "abc123!x").unwrap();
    b.wait_for(
        "return document.querySelectorAll('#password-rules .ok').length === 3 ? true : null;",
        Duration::from_secs(10),
    )
    .unwrap();
    // No home municipality yet: refused with a message, nothing sent.
    b.click("#to-confirm").unwrap();
    b.wait_text("#step-error", "基本自治体").unwrap();
    for select in ["#prefecture", "#municipality"] {
        b.wait_for(
            &format!("const s = document.querySelector('{select}'); return s && !s.disabled && s.options.length > 1 ? true : null;"),
            Duration::from_secs(10),
        )
        .unwrap();
        b.eval(&format!(
            "const s = document.querySelector('{select}'); s.selectedIndex = 1; s.dispatchEvent(new Event('change', {{ bubbles: true }})); return true;"
        ))
        .unwrap();
    }
    b.click("#to-confirm").unwrap();
    b.click("#register").unwrap();
    b.wait_for(
        "const e = document.getElementById('done-id'); return e ? e.textContent : null;",
        Duration::from_secs(30),
    )
    .unwrap()
    .as_str()
    .unwrap()
    .to_owned()
}

#[test]
fn residents_create_mykey_ids_in_the_web_app_with_the_virtual_card() {
    let dir = temp_dir("web-app");
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &dir.join("ca.json"), &dist()).unwrap();
    let b = Browser::start(&[format!("--user-data-dir={}", dir.join("profile").display())]).unwrap();

    // The top page: municipalities from the server, and / leads to the app.
    b.goto(&format!("{}/", server.base)).unwrap();
    b.wait_text("dl.municipalities", "前橋市").unwrap();
    no_violations(&b, "top");
    shoot(&b, "top");
    b.click("header button[aria-pressed=false]").unwrap(); // English
    b.wait_text("h1", "Municipal Points Navi").unwrap();
    no_violations(&b, "top (English)");
    b.click("header button[aria-pressed=false]").unwrap(); // back to 日本語
    b.wait_text("h1", "自治体ポイントナビ").unwrap();

    // Three generations: the third is final and is registered.
    log_in_with_a_new_virtual_card(&b, &server.base);
    no_violations(&b, "create: candidate");
    shoot(&b, "create-candidate");
    let mut seen = vec![];
    for left in ["2", "1", "0"] {
        b.click("#generate").unwrap();
        b.wait_text("#generate", &format!("残り回数 {left}")).unwrap();
        let id = b.eval("return document.getElementById('candidate').textContent;").unwrap();
        seen.push(id.as_str().unwrap().to_owned());
    }
    b.wait_text("main", "3回目の自動生成").unwrap();
    assert_eq!(b.eval("return document.getElementById('generate').disabled;").unwrap(), true);
    assert_eq!(
        b.eval("return document.getElementById('own') === null;").unwrap(),
        true,
        "no own choice after the final one"
    );
    let first = finish_registration(&b);
    assert_eq!(first, seen[2], "the third generated ID is registered");
    no_violations(&b, "create: done");

    // My page shows the new MyKey ID and its reserved account.
    b.click("main button.primary").unwrap();
    b.wait_text("#me-id", &first).unwrap();
    b.wait_text("table", "留保ポイント").unwrap();
    b.wait_text("#usage", "マイキーIDを登録").unwrap();
    no_violations(&b, "my page");

    // A partner's coupon link (URL delivery) fills the code in; a typo is caught on the page.
    let keys: mykey_server::demo::DemoKeys =
        serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let batch: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{}/v1/partners/{}/coupons", server.base, keys.ids.partner))
        .bearer_auth(&keys.partner)
        .json(&serde_json::json!({
            "id": uuid::Uuid::new_v4(), "count": 1, "partner_points": "600", "rate": "1",
            "expires_at": "2099-01-01T00:00:00Z", "delivery": "url"
        }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let code = batch["codes"][0].as_str().unwrap().to_owned();
    let wrong_check = if code.ends_with('X') { 'Y' } else { 'X' };
    b.type_text("#coupon", &format!("{}{wrong_check}", &code[..code.len() - 1])).unwrap();
    b.click("#coupon ~ button").unwrap();
    b.wait_text("#coupon-msg", "入力誤り").unwrap();
    b.goto(batch["urls"][0].as_str().unwrap()).unwrap();
    b.wait_for(
        &format!(
            "const e = document.getElementById('coupon'); return e && e.value === {:?} ? true : null;",
            code.replace('-', "")
        ),
        Duration::from_secs(30),
    )
    .unwrap();
    b.click("#coupon ~ button").unwrap();
    b.wait_text("#coupon-msg", "600").unwrap();
    b.wait_text("table", "600").unwrap();
    // Assign 250 of them to the first municipality.
    b.eval("const s = document.getElementById('assign-to'); s.selectedIndex = 1; s.dispatchEvent(new Event('change', { bubbles: true })); return true;")
        .unwrap();
    b.type_text("#assign-amount", "250").unwrap();
    b.click("section[aria-labelledby=assign-title] button[type=submit]").unwrap();
    b.wait_text("#assign-msg", "250").unwrap();
    b.wait_text("table", "350").unwrap();
    b.wait_text("table", "250").unwrap();
    // ID linkage: link the JAL mileage number, then JAL's conversion for it arrives.
    b.eval("const s = document.getElementById('link-partner'); s.selectedIndex = 1; s.dispatchEvent(new Event('change', { bubbles: true })); return true;")
        .unwrap();
    b.type_text("#link-service-id", "JAL-7654321").unwrap();
    b.click("section[aria-labelledby=links-title] button[type=submit]").unwrap();
    b.wait_text("#links", "JAL-7654321").unwrap();
    let res = reqwest::blocking::Client::new()
        .post(format!("{}/v1/partners/{}/linked-conversions", server.base, keys.ids.partner))
        .bearer_auth(&keys.partner)
        .json(&serde_json::json!({"reference": "jal-e2e-1", "service_id": "JAL-7654321", "partner_points": "1000", "rate": "1"}))
        .send()
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().unwrap_or_default());
    b.goto(&format!("{}/app/mypage", server.base)).unwrap();
    b.wait_text("table", "1350").unwrap();
    b.wait_text("#usage", "サービスIDを連携").unwrap();
    // E-mail and notices, then the password (its rules checked on the page first).
    b.type_text("#settings-email", "hanako@example.jp").unwrap();
    b.type_text("#settings-email2", "hanako@example.jp").unwrap();
    b.click("#setting-0").unwrap();
    b.click("section[aria-labelledby=settings-title] button[type=submit]").unwrap();
    b.wait_text("#settings-msg", "保存しました").unwrap();
    b.type_text("#current-password", "abc123!x").unwrap();
    b.type_text("#new-password", "short").unwrap();
    b.type_text("#new-password2", "short").unwrap();
    b.click("section[aria-labelledby=password-title] button[type=submit]").unwrap();
    b.wait_text("#password-msg", "条件を満たしていません").unwrap();
    b.type_text("#new-password", "new-pass1").unwrap();
    b.type_text("#new-password2", "new-pass1").unwrap();
    b.click("section[aria-labelledby=password-title] button[type=submit]").unwrap();
    b.wait_text("#password-msg", "パスワードを変更しました").unwrap();
    no_violations(&b, "my page with points");
    shoot(&b, "mypage");
    b.click("main > button").unwrap(); // log out
    b.wait_for("return document.getElementById('login-id') ? true : null;", Duration::from_secs(10)).unwrap();
    no_violations(&b, "my page login");

    // Another card: its own choice is taken three times, then a candidate is generated.
    log_in_with_a_new_virtual_card(&b, &server.base);
    b.type_text("#own", "abc").unwrap();
    b.click("#own ~ button").unwrap();
    b.wait_text("#step-error", "8文字").unwrap();
    for _ in 0..3 {
        b.type_text("#own", &first).unwrap();
        b.click("#own ~ button").unwrap();
        b.wait_text("#step-error", "既に使われています").unwrap();
        b.eval("document.getElementById('step-error').remove(); return true;").unwrap();
    }
    b.wait_text("main", "自動生成しました").unwrap();
    let generated = b.eval("return document.getElementById('candidate').textContent;").unwrap();
    let second = finish_registration(&b);
    assert_eq!(second, generated.as_str().unwrap());
    assert_ne!(second, first);

    // My page after a reload, then a password login (a wrong password first).
    b.goto(&format!("{}/app/mypage", server.base)).unwrap();
    b.wait_text("#me-id", &second).unwrap();
    b.click("main > button").unwrap();
    b.type_text("#login-id", &second).unwrap();
    b.type_text("#login-password", "wrong-pass1").unwrap();
    b.click("main form button[type=submit]").unwrap();
    b.wait_text("#login-error", "パスワードが違います").unwrap();
    shoot(&b, "mypage-login");
    b.type_text("#login-password", "abc123!x").unwrap();
    b.click("main form button[type=submit]").unwrap();
    b.wait_text("#me-id", &second).unwrap();

    // Revocation: a wrong password is refused; then the ID is gone and cannot log in.
    b.type_text("#revoke-password", "nope-nope1").unwrap();
    b.click("section[aria-labelledby=revoke-title] button[type=submit]").unwrap();
    b.wait_text("#revoke-msg", "パスワードが違います").unwrap();
    b.type_text("#revoke-password", "abc123!x").unwrap();
    b.click("section[aria-labelledby=revoke-title] button[type=submit]").unwrap();
    b.wait_for("return document.getElementById('login-id') ? true : null;", Duration::from_secs(10)).unwrap();
    b.type_text("#login-id", &second).unwrap();
    b.type_text("#login-password", "abc123!x").unwrap();
    b.click("main form button[type=submit]").unwrap();
    b.wait_text("#login-error", "パスワードが違います").unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
