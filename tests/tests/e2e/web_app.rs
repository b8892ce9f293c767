//! The resident web app in headless Chromium against the demo server, with the demo's
//! virtual card: create a MyKey ID through every candidate rule (three generations; an own
//! choice taken three times), the PIN and password rules, then my page (a chosen notice
//! arrives through a real SMTP server); axe-core finds no
//! WCAG A/AA violations on any page; screenshots at phone and desktop width go to
//! `docs/screenshots/` when `MYKEY_SCREENSHOTS` is set.

use std::time::Duration;

use mykey_server::testing::{Smtp, TestDb};
use mykey_tests::webdriver::Browser;
use mykey_tests::{csp_violations, no_violations, shoot, temp_dir, web_dist as dist, Server};

/// No page broke the policy; and the page in front still has it: a style attribute set by a
/// script is refused and reported (a page answered without the policy, as revalidated pages
/// were, fails here).
fn no_csp_violations(b: &Browser, base: &str) {
    // Reports go out on their own time; let them arrive.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(csp_violations(base), 0, "the app's pages broke their Content-Security-Policy");
    let seen = b
        .eval_async(
            "const done = arguments[arguments.length - 1]; \
             document.addEventListener('securitypolicyviolation', e => done(e.violatedDirective)); \
             document.documentElement.setAttribute('style', 'color: red'); \
             setTimeout(() => done('no violation at ' + location.href), 3000);",
        )
        .unwrap();
    assert_eq!(seen, "style-src-attr", "the page in front has the app's policy");
    for _ in 0..100 {
        if csp_violations(base) > 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the violation was not reported to /csp-reports");
}

/// Starts the card step: the virtual card, a wrong PIN (tries left shown), then the right one.
fn log_in_with_a_new_virtual_card(b: &Browser, base: &str) {
    b.goto(&format!("{base}/app/create")).unwrap();
    choose_virtual_card(b);
    b.type_text("#pin", "0000").unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_text("#step-error", "残り回数：2").unwrap();
    b.type_text("#pin", "1234").unwrap();
    b.click("form button[type=submit]").unwrap();
    b.wait_for("return document.getElementById('generate') ? true : null;", Duration::from_secs(30)).unwrap();
}

/// On a card step: chooses the demo's virtual card (a new card each time) and waits for the
/// PIN step with its three tries.
fn choose_virtual_card(b: &Browser) {
    b.wait_for(
        "const e = document.getElementById('bridge-virtual'); return e && !e.disabled ? true : null;",
        Duration::from_secs(30),
    )
    .unwrap();
    b.click("#bridge-virtual").unwrap();
    b.wait_text("#tries", "3").unwrap();
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

/// The page is revalidated on every load; the files it names carry their content's hash, come
/// precompressed and are kept for a year; a name no build has is 404, never the page; the
/// SDK and widget files, whose names integrators use, are revalidated.
fn cache_rules(base: &str) {
    let http = reqwest::blocking::Client::new();
    let page = http.get(format!("{base}/app/")).send().unwrap();
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let html = page.text().unwrap();
    let mut names: Vec<String> = html
        .split("\"/app/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|n| !n.starts_with("favicon"))
        .map(str::to_owned)
        .collect();
    assert_eq!(names.len(), 3, "style, module, start script: {html}");
    // The module names its WebAssembly.
    let module = names.iter().find(|n| n.starts_with("mykey_web.")).expect("the module").clone();
    let js = http.get(format!("{base}/app/{module}")).send().unwrap().text().unwrap();
    let wasm = js
        .match_indices("mykey_web_bg.")
        .find_map(|(i, found)| {
            let rest = &js[i + found.len()..];
            let hash = rest.get(..16)?;
            (hash.bytes().all(|b| b.is_ascii_hexdigit()) && rest[16..].starts_with(".wasm"))
                .then(|| format!("mykey_web_bg.{hash}.wasm"))
        })
        .expect("the module names its wasm");
    names.push(wasm);
    for name in names {
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(parts[parts.len() - 2].len(), 16, "a content hash in {name}");
        let res = http.get(format!("{base}/app/{name}")).header("accept-encoding", "br, gzip").send().unwrap();
        assert_eq!(res.status(), 200, "{name}");
        assert_eq!(res.headers()["cache-control"], "public, max-age=31536000, immutable", "{name}");
        assert_eq!(res.headers()["content-encoding"], "br", "{name}");
    }
    let gone = http.get(format!("{base}/app/mykey_web.0123456789abcdef.js")).send().unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(gone.headers()["cache-control"], "no-cache");
    // The loader keeps its name (stores import it) and is revalidated; the widget's page names
    // its script and style by hash, the script the SDK, the SDK its wasm: all kept for a year.
    let loader = http.get(format!("{base}/app/sdk/checkout.js")).send().unwrap();
    assert_eq!(loader.headers()["cache-control"], "no-cache");
    let frame = http.get(format!("{base}/app/sdk/frame.html")).send().unwrap();
    assert_eq!(
        frame.headers()["content-security-policy"],
        "frame-ancestors 'none'",
        "the built page is framed only at /widget/frame"
    );
    let frame = frame.text().unwrap();
    // The first `prefix<16 hex digits>ext` in `text`.
    let hashed = |text: &str, prefix: &str, ext: &str| -> String {
        text.match_indices(prefix)
            .find_map(|(at, _)| {
                let name = text.get(at..at + prefix.len() + 16 + ext.len())?;
                let hash = &name[prefix.len()..prefix.len() + 16];
                (hash.bytes().all(|b| b.is_ascii_hexdigit()) && name.ends_with(ext)).then(|| name.to_owned())
            })
            .unwrap_or_else(|| panic!("no hashed {prefix}…{ext} named"))
    };
    let immutable = |name: &str| {
        // Asked for plainly (the client takes no compression): the text, to read names from.
        let res = http.get(format!("{base}/app/sdk/{name}")).send().unwrap();
        assert_eq!(res.status(), 200, "{name}");
        assert_eq!(res.headers()["cache-control"], "public, max-age=31536000, immutable", "{name}");
        String::from_utf8_lossy(&res.bytes().unwrap()).into_owned()
    };
    immutable(&hashed(&frame, "frame.", ".css"));
    let script = immutable(&hashed(&frame, "frame.", ".js"));
    let module = immutable(&hashed(&script, "mykey_sdk.", ".js"));
    immutable(&hashed(&module, "mykey_sdk_bg.", ".wasm"));
}

#[test]
fn residents_create_mykey_ids_in_the_web_app_with_the_virtual_card() {
    let dir = temp_dir("web-app");
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let mail = Smtp::start().unwrap();
    let server = Server::demo_mailing(&db.url, &dir, &dir.join("ca.json"), &dist(), Some(&mail.url())).unwrap();
    cache_rules(&server.base);
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

    // My page shows the new MyKey ID and its reserved account; each sub-page of its own
    // navigation passes axe.
    b.click("main button.primary").unwrap();
    b.wait_text("#me-id", &first).unwrap();
    b.wait_text("table", "留保ポイント").unwrap();
    no_violations(&b, "my page: balances");
    for (sub, shown) in [
        ("history", "#points-history-title"),
        ("coupons", "#coupon"),
        ("links", "#links-title"),
        ("settings", "#settings-email"),
        ("id", "#usage"),
    ] {
        my_page(&b, sub);
        b.wait_for(&format!("return document.querySelector({shown:?}) ? true : null;"), Duration::from_secs(10))
            .unwrap();
        no_violations(&b, &format!("my page: {sub}"));
    }
    b.wait_text("#usage", "マイキーIDを登録").unwrap();
    my_page(&b, "coupons");

    // A partner's coupon link (URL delivery) fills the code in; a typo is caught on the page.
    let keys: mykey_server::demo::DemoKeys =
        serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let batch: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{}/v1/partners/{}/coupons", server.base, keys.ids.coupon_partner))
        .bearer_auth(&keys.coupon_partner)
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
    // Assign 250 of them to the first municipality.
    choose_first_option(&b, "assign-to");
    b.type_text("#assign-amount", "250").unwrap();
    b.click("section[aria-labelledby=assign-title] button[type=submit]").unwrap();
    b.wait_text("#assign-msg", "250").unwrap();
    my_page(&b, "");
    b.wait_text("table", "350").unwrap();
    b.wait_text("table", "250").unwrap();
    // ID linkage: link the JAL mileage number, then JAL's conversion for it arrives.
    let mykey_id = me_id(&b);
    link_by_session(
        &server.base,
        &keys.partner,
        &format!("/v1/partners/{}/embedding", keys.ids.partner),
        serde_json::json!({"partner": keys.ids.partner}),
        "JAL-7654321",
        &mykey_id,
    );
    my_page(&b, "links");
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
    // Cutting the link asks for the password again; then JAL's conversions stop.
    my_page(&b, "links");
    b.click("#links button").unwrap();
    b.wait_text("#link-msg", "パスワード").unwrap();
    b.type_text("#unlink-password", "abc123!x").unwrap();
    b.click("#links button").unwrap();
    b.wait_text("#link-msg", "連携を解除しました").unwrap();
    no_violations(&b, "my page: links");
    let res = reqwest::blocking::Client::new()
        .post(format!("{}/v1/partners/{}/linked-conversions", server.base, keys.ids.partner))
        .bearer_auth(&keys.partner)
        .json(&serde_json::json!({"reference": "jal-e2e-2", "service_id": "JAL-7654321", "partner_points": "1000", "rate": "1"}))
        .send()
        .unwrap();
    assert_eq!(res.status(), 422);
    my_page(&b, "id");
    b.wait_text("#usage", "サービスIDを連携").unwrap();
    // E-mail and notices, then the password (its rules checked on the page first).
    my_page(&b, "settings");
    b.type_text("#settings-email", "hanako@example.jp").unwrap();
    b.type_text("#settings-email2", "hanako@example.jp").unwrap();
    b.click("#setting-0").unwrap();
    b.type_text("#settings-password", "abc123!x").unwrap();
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
    // The notice chosen (points granted) arrives by e-mail through the SMTP server once a
    // municipality grants points; the password change (not chosen) is not mailed.
    let me = b
        .eval_async("const done = arguments[arguments.length - 1]; fetch('/v1/me').then(r => r.json()).then(done);")
        .unwrap();
    let grant = serde_json::json!({"id": uuid::Uuid::new_v4(), "resident": me["resident"], "municipality": keys.ids.municipality, "amount": 100});
    let res = reqwest::blocking::Client::new()
        .post(format!("{}/v1/grants", server.base))
        .bearer_auth(&keys.municipality)
        .json(&grant)
        .send()
        .unwrap();
    assert_eq!(res.status(), 201);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mails = loop {
        let got = mail.arrived();
        if got.iter().any(|m| m.1.contains("ポイントが付与されました")) || std::time::Instant::now() > deadline
        {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let granted: Vec<_> = mails.iter().filter(|m| m.1.contains("ポイントが付与されました")).collect();
    assert_eq!(granted.len(), 1, "{mails:?}");
    assert_eq!(granted[0].0, "hanako@example.jp");
    assert!(granted[0].2.contains("100ポイント"), "{mails:?}");
    assert!(!mails.iter().any(|m| m.1.contains("設定が変更されました")), "{mails:?}");
    my_page(&b, "");
    b.wait_text("table", "前橋市").unwrap();
    no_violations(&b, "my page with points");
    shoot(&b, "mypage");
    b.click("#logout").unwrap();
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
    b.goto(&format!("{}/app/mypage/id", server.base)).unwrap();
    b.wait_text("#me-id", &second).unwrap();
    b.click("#logout").unwrap();
    b.type_text("#login-id", &second).unwrap();
    b.type_text("#login-password", "wrong-pass1").unwrap();
    b.click("main form button[type=submit]").unwrap();
    b.wait_text("#login-error", "パスワードが違います").unwrap();
    shoot(&b, "mypage-login");
    b.type_text("#login-password", "abc123!x").unwrap();
    b.click("main form button[type=submit]").unwrap();
    b.wait_text("#me-id", &second).unwrap();

    // Revocation (the address asked for, /app/mypage/id, is kept through the login): a wrong
    // password is refused; then the ID is gone and cannot log in.
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
    no_csp_violations(&b, &server.base);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The MyKey ID my page shows.
fn me_id(b: &Browser) -> String {
    my_page(b, "id");
    b.wait_for("return document.getElementById('me-id')?.textContent || null;", Duration::from_secs(10)).unwrap();
    b.eval("return document.getElementById('me-id').textContent;").unwrap().as_str().unwrap().to_owned()
}

/// A proven link: the partner's (or online store's) server registers its origin and opens a
/// link session, and the resident confirms it with the password through the widget's API,
/// sent as the widget's page on the points cloud sends it (the widget itself runs in
/// Chromium in the checkout and partner tests).
fn link_by_session(
    base: &str,
    key: &str,
    settings: &str,
    target: serde_json::Value,
    service_id: &str,
    mykey_id: &str,
) -> serde_json::Value {
    let http = reqwest::blocking::Client::new();
    let res = http
        .put(format!("{base}{settings}"))
        .bearer_auth(key)
        .json(&serde_json::json!({"origins": ["http://127.0.0.3:8100"]}))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = serde_json::json!({"id": uuid::Uuid::new_v4(), "service_id": service_id});
    body.as_object_mut().unwrap().extend(target.as_object().unwrap().clone());
    let opened: serde_json::Value =
        http.post(format!("{base}/v1/link-sessions")).bearer_auth(key).json(&body).send().unwrap().json().unwrap();
    let (id, secret) = (opened["session"]["id"].as_str().unwrap(), opened["client_secret"].as_str().unwrap());
    let signed: serde_json::Value = http
        .post(format!("{base}/v1/link-sessions/{id}/sign-in"))
        .header("origin", base)
        .json(&serde_json::json!({"client_secret": secret, "password": {"mykey_id": mykey_id, "password": "abc123!x"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let res = http
        .post(format!("{base}/v1/link-sessions/{id}/confirm"))
        .header("origin", base)
        .json(&serde_json::json!({"client_secret": secret, "grant": signed["grant"]}))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().unwrap_or_default());
    http.get(format!("{base}/v1/link-sessions/{id}")).bearer_auth(key).send().unwrap().json().unwrap()
}

/// Opens my page's sub-page `sub` (`""` for balances) from its navigation.
fn my_page(b: &Browser, sub: &str) {
    let href = if sub.is_empty() { "/app/mypage".to_owned() } else { format!("/app/mypage/{sub}") };
    b.click(&format!("nav.subnav a[href='{href}']")).unwrap();
    b.wait_for(
        &format!("return location.pathname === {href:?} && document.querySelector('nav.subnav [aria-current=page]') ? true : null;"),
        Duration::from_secs(10),
    )
    .unwrap();
}

/// Opens my page's card section `id` (its button has that id) and reads a new virtual card,
/// typing the password first when the section asks for it.
fn read_virtual_card_in(b: &Browser, id: &str) {
    b.click(&format!("#{id}")).unwrap();
    if b.eval(&format!("return !!document.getElementById('{id}-password');")).unwrap() == true {
        b.type_text(&format!("#{id}-password"), "abc123!x").unwrap();
    }
    choose_virtual_card(b);
    b.type_text("#pin", "1234").unwrap();
    b.click(&format!("section[aria-labelledby={id}-title] form button[type=submit]")).unwrap();
}

/// My page's points history of the municipal points of `place`, one kind of transaction.
fn show_history(b: &Browser, place: &str, kind: &str) {
    // The accounts are named once the municipalities have loaded.
    let account = b
        .wait_for(
            &format!(
                "const o = [...document.querySelectorAll('#history-account option')].find(o => o.textContent.includes({place:?})); return o ? o.value : null;"
            ),
            Duration::from_secs(10),
        )
        .unwrap();
    set_value(b, "history-account", account.as_str().unwrap(), "change");
    set_value(b, "history-kind", kind, "change");
    b.click("section[aria-labelledby=points-history-title] button[type=submit]").unwrap();
}

/// Chooses the first real option of a select (the one after "choose").
fn choose_first_option(b: &Browser, id: &str) {
    b.eval(&format!(
        "const s = document.getElementById({id:?}); s.selectedIndex = 1; s.dispatchEvent(new Event('change', {{ bubbles: true }})); return true;"
    ))
    .unwrap();
}

/// Sets a select's or an input's value as the resident would, with the event Yew listens to.
fn set_value(b: &Browser, id: &str, value: &str, event: &str) {
    b.eval(&format!(
        "const e = document.getElementById({id:?}); e.value = {value:?}; e.dispatchEvent(new Event({event:?}, {{ bubbles: true }})); return true;"
    ))
    .unwrap();
}

/// Point-navi's top page and the search for usable points (map and free words), then my page's
/// points history with filters, an online shop's member ID charged by the shop, changing the
/// MyKey ID and re-binding a renewed card.
#[test]
fn residents_find_usable_points_and_manage_their_mykey_id() {
    let dir = temp_dir("web-app-2");
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &dir.join("ca.json"), &dist()).unwrap();
    let b = Browser::start(&[format!("--user-data-dir={}", dir.join("profile").display())]).unwrap();
    let keys: mykey_server::demo::DemoKeys =
        serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();

    // The top page: recommended points, set-up municipalities, libraries, FAQ.
    b.goto(&format!("{}/app/", server.base)).unwrap();
    b.wait_text("#usable-shops", "前橋市ポイント").unwrap();
    b.wait_text("#usable-online", "小国町ポイント").unwrap();
    b.wait_text("#library-list", "東京都 豊島区").unwrap();
    b.wait_text("main", "よくある質問").unwrap();
    no_violations(&b, "top with the directory");

    // The map: 群馬 lists 前橋市's services and products.
    b.click("nav a[href='/app/search']").unwrap();
    b.wait_for("return document.querySelector('svg.japan a.set-up') ? true : null;", Duration::from_secs(30)).unwrap();
    assert_eq!(b.eval("return document.querySelectorAll('svg.japan a').length;").unwrap(), 47);
    b.click("svg.japan a[data-pref='10']").unwrap();
    b.wait_text("#prefecture", "前橋市").unwrap();
    b.wait_text("#prefecture", "ぐるぐるウイナーギフト").unwrap();
    b.wait_text("#prefecture", "商店等").unwrap();
    assert!(b.eval("return location.search;").unwrap().as_str().unwrap().contains("pref=10"));
    no_violations(&b, "search: prefecture");
    shoot(&b, "search");
    // The same choice from the list: 宮崎 lists 都城市 with its library.
    set_value(&b, "prefecture-select", "45", "change");
    b.wait_text("#prefecture", "都城市").unwrap();
    b.wait_text("#prefecture", "図書館").unwrap();
    // Free words: a product by a word of its name and its municipality; nothing for nonsense.
    b.type_text("#free-word", "和牛 都城").unwrap();
    b.wait_text("#search-results", "黒毛和牛カタルースライス").unwrap();
    b.wait_text("#search-results", "宮崎県 都城市").unwrap();
    b.type_text("#free-word", "存在しない品物").unwrap();
    b.wait_text("#search-results", "検索結果：0").unwrap();
    no_violations(&b, "search: free words");

    // A new MyKey ID; 前橋市 grants points, 500 of them expiring in 10 days.
    log_in_with_a_new_virtual_card(&b, &server.base);
    b.click("#generate").unwrap();
    b.wait_for("return document.getElementById('candidate') ? true : null;", Duration::from_secs(10)).unwrap();
    finish_registration(&b);
    b.click("main button.primary").unwrap();
    b.wait_text("#me-id", "").unwrap();
    let me = b
        .eval_async("const done = arguments[arguments.length - 1]; fetch('/v1/me').then(r => r.json()).then(done);")
        .unwrap();
    let resident = me["resident"].as_i64().unwrap();
    let http = reqwest::blocking::Client::new();
    let soon = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    for (amount, expires) in [(500, Some(soon)), (300, None)] {
        let grant = serde_json::json!({"id": uuid::Uuid::new_v4(), "resident": resident,
            "municipality": keys.ids.municipality, "amount": amount, "expires_at": expires, "memo": "清掃ボランティア"});
        let res = http
            .post(format!("{}/v1/grants", server.base))
            .bearer_auth(&keys.municipality)
            .json(&grant)
            .send()
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    b.goto(&format!("{}/app/mypage", server.base)).unwrap();
    b.wait_text("table", "800").unwrap();
    b.wait_text("table", "500 pt").unwrap();

    // The points history of 前橋市's points: both grants; a period after today shows none.
    my_page(&b, "history");
    show_history(&b, "前橋市", "grant");
    if let Err(e) = b.wait_for(
        "return document.querySelectorAll('#points-history tbody tr').length === 2 ? true : null;",
        Duration::from_secs(10),
    ) {
        let seen = b.eval("return document.querySelector('section[aria-labelledby=points-history-title]').innerText;");
        panic!("{e}; the history section shows {seen:?}");
    }
    b.wait_text("#points-history", "清掃ボランティア").unwrap();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d").to_string();
    set_value(&b, "history-from", &tomorrow, "input");
    b.click("section[aria-labelledby=points-history-title] button[type=submit]").unwrap();
    b.wait_text("section[aria-labelledby=points-history-title]", "該当する履歴はありません").unwrap();
    set_value(&b, "history-from", "", "input");

    // The online shop: link the member ID with a standing mandate, then the shop charges the
    // points under it (the link alone would charge nothing).
    let mykey_id = me_id(&b);
    let settings = format!("/v1/shops/{}/checkout", keys.ids.online_store);
    let ends_on = (chrono::Utc::now() + chrono::Duration::days(60)).format("%Y-%m-%d").to_string();
    let session = link_by_session(
        &server.base,
        &keys.online_store,
        &settings,
        serde_json::json!({"online_service": keys.ids.online_shop,
                           "mandate": {"max_per_charge": 500, "max_per_month": 1000, "ends_on": ends_on}}),
        "MC-E2E-0001",
        &mykey_id,
    );
    let mandate = session["mandate_id"].as_str().unwrap().to_owned();
    let charge = |reference: &str| {
        http.post(format!("{}/v1/shops/{}/mandate-charges", server.base, keys.ids.online_store))
            .bearer_auth(&keys.online_store)
            .json(&serde_json::json!({"reference": reference, "mandate": mandate, "amount": "120", "memo": "ぐるぐるウイナーギフト"}))
            .send()
            .unwrap()
    };
    let res = charge("order-e2e-1");
    assert_eq!(res.status(), 201, "{}", res.text().unwrap_or_default());
    my_page(&b, "links");
    b.wait_text("#links", "めいぶつチョイス：MC-E2E-0001").unwrap();
    b.wait_text("#mandates", "120ポイント").unwrap();
    no_violations(&b, "my page: links and permissions to charge");
    b.eval("document.getElementById('mandates-title').scrollIntoView(); return true;").unwrap();
    shoot(&b, "mypage-mandates");
    // Revoked from my page: the shop charges nothing more.
    b.click("#mandates button").unwrap();
    b.wait_text("#mandates", "取り消し済み").unwrap();
    assert_eq!(charge("order-e2e-2").status(), 409);
    b.goto(&format!("{}/app/mypage", server.base)).unwrap();
    b.wait_text("table", "680").unwrap();
    my_page(&b, "history");
    show_history(&b, "前橋市", "payment");
    b.wait_text("#points-history", "ぐるぐるウイナーギフト").unwrap();
    no_violations(&b, "my page: history and links");

    // A new MyKey ID by a generated candidate, confirmed with the password.
    my_page(&b, "id");
    b.click("#generate").unwrap();
    b.wait_for("return document.getElementById('candidate') ? true : null;", Duration::from_secs(10)).unwrap();
    let candidate = b.eval("return document.getElementById('candidate').textContent;").unwrap();
    b.type_text("#change-id-password", "abc123!x").unwrap();
    b.click("#change-id").unwrap();
    b.wait_text("#change-id-msg", "マイキーIDを変更しました").unwrap();
    b.wait_text("#me-id", candidate.as_str().unwrap()).unwrap();

    // A renewed card (the virtual bridge issues a new one) takes over the MyKey ID.
    read_virtual_card_in(&b, "rebind");
    b.wait_text("#rebind-msg", "新しいカードを登録しました").unwrap();
    no_violations(&b, "my page: ID changed, card re-bound");
    shoot(&b, "mypage-manage");

    // Card login on my page: the virtual bridge brings yet another new card, which has no
    // MyKey ID, and the page says so.
    b.click("#logout").unwrap();
    read_virtual_card_in(&b, "card-login");
    b.wait_text("#card-login-msg", "マイキーIDがありません").unwrap();
    no_violations(&b, "my page: card login");
    no_csp_violations(&b, &server.base);
    let _ = std::fs::remove_dir_all(&dir);
}
