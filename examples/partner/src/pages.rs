//! The member site's pages (server-rendered HTML; the only script is the widget page's, which
//! mounts the coupon or link widget), its webhook endpoint and its webhook log.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use uuid::Uuid;

use crate::cloud::{Pushed, RATE};
use crate::members::Member;
use crate::Site;

type S = State<Arc<Site>>;

const SESSION_COOKIE: &str = "member";
/// Card points per exchange: at least this many, in steps of it (whole municipal points).
const STEP: i64 = 100;

/// Every route of the site.
pub fn router(site: Arc<Site>) -> Router {
    let csp = format!(
        "default-src 'self'; script-src 'self' {p}; frame-src {p}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        p = site.cloud.base
    );
    let csp = HeaderValue::from_str(&csp).expect("an ASCII origin");
    Router::new()
        .route("/", get(home))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/exchange", post(exchange))
        .route("/exchanges/{id}", get(exchanged))
        .route("/redeem", get(redeem))
        .route("/link", post(link))
        .route("/webhooks", post(webhook))
        .route("/admin/events", get(events))
        .route(
            "/static/site.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], include_str!("../static/site.css")) }),
        )
        .route(
            "/static/widget.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], include_str!("../static/widget.js")) }),
        )
        .layer(axum::middleware::from_fn(move |req, next: axum::middleware::Next| {
            let csp = csp.clone();
            async move {
                let mut res = next.run(req).await;
                res.headers_mut().entry(header::CONTENT_SECURITY_POLICY).or_insert(csp);
                res.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                res
            }
        }))
        .with_state(site)
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(site: &Site, title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} | {n} 会員サイト</title><link rel=\"stylesheet\" href=\"/static/site.css\"></head><body>\
         <header><a href=\"/\" class=\"brand\">{n} 会員サイト</a></header><main>{body}</main>\
         <footer><p>カードのポイントを自治体ポイントに交換できます（例示用のサイトです）</p></footer></body></html>",
        t = esc(title),
        n = esc(&site.cloud.name)
    ))
}

fn refused(site: &Site, status: StatusCode, text: &str) -> Response {
    (
        status,
        page(
            site,
            "エラー",
            &format!("<h1>エラー</h1><p role=\"alert\">{}</p><p><a href=\"/\">会員トップへ</a></p>", esc(text)),
        ),
    )
        .into_response()
}

/// A form post must come from the site's own pages.
fn same_origin(site: &Site, headers: &HeaderMap) -> bool {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) == Some(site.origin.as_str())
}

async fn member(site: &Site, jar: &CookieJar) -> Option<Member> {
    let token = jar.get(SESSION_COOKIE)?.value().to_owned();
    site.members.by_session(&token).await.ok().flatten()
}

fn sign_in_page(site: &Site, error: Option<&str>) -> Html<String> {
    let alert = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    page(
        site,
        "ログイン",
        &format!(
            "<h1>会員ログイン</h1>{alert}<form method=\"post\" action=\"/sign-in\">\
             <label for=\"number\">会員番号</label><input id=\"number\" name=\"number\" autocomplete=\"username\" required maxlength=\"16\">\
             <label for=\"password\">パスワード</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"64\">\
             <button type=\"submit\">ログイン</button></form>"
        ),
    )
}

async fn home(State(site): S, jar: CookieJar) -> Response {
    let Some(m) = member(&site, &jar).await else { return sign_in_page(&site, None).into_response() };
    let rate = RATE.normalize();
    let link = if m.linked {
        "<p id=\"link-state\">マイキーIDと連携済みです。交換したポイントは直接、留保ポイントとして届きます。</p>"
            .to_owned()
    } else {
        "<p id=\"link-state\">マイキーIDとは連携していません。交換するとクーポンコードを発行します。</p>\
         <form method=\"post\" action=\"/link\"><button type=\"submit\" id=\"link\">マイキーIDと連携する</button></form>"
            .to_owned()
    };
    page(
        &site,
        "会員トップ",
        &format!(
            "<h1>{name} 様</h1><p>会員番号 {number}</p><p>カードポイント残高 <strong id=\"card-points\">{points}</strong> ポイント</p>\
             <h2>自治体ポイントに交換</h2><p>交換レート：カードポイント 1 ＝ 自治体ポイント {rate}</p>\
             <form method=\"post\" action=\"/exchange\"><label for=\"card-points-input\">交換するカードポイント（{STEP} ポイント単位）</label>\
             <input id=\"card-points-input\" name=\"card_points\" type=\"number\" min=\"{STEP}\" step=\"{STEP}\" max=\"{points}\" required>\
             <button type=\"submit\" id=\"exchange\">交換する</button></form>\
             <h2>マイキーID</h2>{link}<p><a href=\"/redeem\">お持ちのクーポンコードを使う</a></p>\
             <form method=\"post\" action=\"/sign-out\"><button type=\"submit\" class=\"secondary\">ログアウト</button></form>",
            name = esc(&m.name),
            number = esc(&m.number),
            points = m.card_points,
        ),
    )
    .into_response()
}

#[derive(Deserialize)]
struct SignIn {
    number: String,
    password: String,
}

async fn sign_in(State(site): S, headers: HeaderMap, jar: CookieJar, Form(f): Form<SignIn>) -> Response {
    if !same_origin(&site, &headers) {
        return refused(&site, StatusCode::FORBIDDEN, "このページからは送信できません。");
    }
    match site.members.sign_in(f.number.trim(), &f.password).await {
        Ok(Some(token)) => {
            let cookie = Cookie::build((SESSION_COOKIE, token)).path("/").http_only(true).same_site(SameSite::Lax);
            (jar.add(cookie), Redirect::to("/")).into_response()
        }
        Ok(None) => (StatusCode::UNAUTHORIZED, sign_in_page(&site, Some("会員番号またはパスワードが違います。")))
            .into_response(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "signing in failed");
            refused(&site, StatusCode::INTERNAL_SERVER_ERROR, "ただいまログインできません。")
        }
    }
}

async fn sign_out(State(site): S, headers: HeaderMap, jar: CookieJar) -> Response {
    if !same_origin(&site, &headers) {
        return refused(&site, StatusCode::FORBIDDEN, "このページからは送信できません。");
    }
    if let Some(c) = jar.get(SESSION_COOKIE) {
        let _ = site.members.sign_out(c.value()).await;
    }
    (jar.remove(Cookie::from(SESSION_COOKIE)), Redirect::to("/")).into_response()
}

#[derive(Deserialize)]
struct ExchangeForm {
    card_points: i64,
}

/// Takes the card points, then pushes the conversion (a linked member) or issues a code and
/// shows it in the coupon widget; gives the card points back if the points cloud refuses.
async fn exchange(State(site): S, headers: HeaderMap, jar: CookieJar, Form(f): Form<ExchangeForm>) -> Response {
    if !same_origin(&site, &headers) {
        return refused(&site, StatusCode::FORBIDDEN, "このページからは送信できません。");
    }
    let Some(m) = member(&site, &jar).await else { return Redirect::to("/").into_response() };
    if f.card_points < STEP || f.card_points % STEP != 0 {
        return refused(
            &site,
            StatusCode::BAD_REQUEST,
            &format!("交換するポイントは {STEP} ポイント単位で指定してください。"),
        );
    }
    let id = Uuid::new_v4();
    match site.members.take(id, &m.number, f.card_points).await {
        Ok(true) => {}
        Ok(false) => return refused(&site, StatusCode::UNPROCESSABLE_ENTITY, "カードポイントが足りません。"),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "taking card points failed");
            return refused(&site, StatusCode::INTERNAL_SERVER_ERROR, "ただいま交換できません。");
        }
    }
    let outcome = async {
        if m.linked {
            if let Pushed::Converted = site.cloud.push(id, &m.number, f.card_points).await? {
                return Ok::<_, anyhow::Error>(None);
            }
        }
        let code = site.cloud.issue_code(id, f.card_points).await?;
        site.members.set_code(id, &code).await?;
        Ok(Some(code))
    }
    .await;
    match outcome {
        Ok(_) => Redirect::to(&format!("/exchanges/{id}")).into_response(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "the exchange failed; card points given back");
            let _ = site.members.give_back(id).await;
            refused(
                &site,
                StatusCode::BAD_GATEWAY,
                "自治体ポイントに交換できませんでした。カードポイントは戻しました。",
            )
        }
    }
}

/// The widget's mount point: `kind` coupon (with a code, or none to type one) or link.
fn widget(site: &Site, kind: &str, secret: &str, code: &str) -> String {
    format!(
        "<div id=\"widget\" data-kind=\"{kind}\" data-points=\"{}\" data-pk=\"{}\" data-secret=\"{}\" data-code=\"{}\"></div>\
         <p id=\"widget-status\" role=\"status\"></p><script type=\"module\" src=\"/static/widget.js\"></script>",
        esc(&site.cloud.base),
        esc(&site.cloud.publishable_key),
        esc(secret),
        esc(code)
    )
}

async fn exchanged(State(site): S, jar: CookieJar, Path(id): Path<Uuid>) -> Response {
    let Some(m) = member(&site, &jar).await else { return Redirect::to("/").into_response() };
    let Ok(Some(x)) = site.members.exchange(id, &m.number).await else {
        return refused(&site, StatusCode::NOT_FOUND, "その交換はありません。");
    };
    let body = match &x.code {
        None => format!(
            "<h1>交換しました</h1><p id=\"exchanged\">カードポイント {} をマイキーIDに送りました。留保ポイントとして届いています。</p>\
             <p><a href=\"/\">会員トップへ</a></p>",
            x.card_points
        ),
        Some(code) => format!(
            "<h1>クーポンコードを発行しました</h1><p>カードポイント {} 分のクーポンコード <strong id=\"code\">{}</strong></p>\
             <p>下で今すぐ自治体ポイントにできます（マイキーIDでサインイン）。あとで自治体ポイントナビのマイページでも使えます。</p>{}\
             <p><a href=\"/\">会員トップへ</a></p>",
            x.card_points,
            esc(code),
            widget(&site, "coupon", "", code)
        ),
    };
    page(&site, "交換", &body).into_response()
}

async fn redeem(State(site): S, jar: CookieJar) -> Response {
    if member(&site, &jar).await.is_none() {
        return Redirect::to("/").into_response();
    }
    page(&site, "クーポンを使う", &format!("<h1>クーポンコードを使う</h1>{}", widget(&site, "coupon", "", "")))
        .into_response()
}

/// Opens a link session for the signed-in member and mounts the link widget.
async fn link(State(site): S, headers: HeaderMap, jar: CookieJar) -> Response {
    if !same_origin(&site, &headers) {
        return refused(&site, StatusCode::FORBIDDEN, "このページからは送信できません。");
    }
    let Some(m) = member(&site, &jar).await else { return Redirect::to("/").into_response() };
    match site.cloud.open_link(Uuid::new_v4(), &m.number, format!("{}/", site.origin)).await {
        Ok(created) => page(
            &site,
            "マイキーIDと連携",
            &format!(
                "<h1>マイキーIDと連携</h1><p>会員番号 {} をマイキーIDと連携します。マイキーIDでサインインして確認してください。</p>{}",
                esc(&m.number),
                widget(&site, "link", &created.client_secret, "")
            ),
        )
        .into_response(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "opening a link session failed");
            refused(&site, StatusCode::BAD_GATEWAY, "ただいま連携を始められません。")
        }
    }
}

async fn webhook(State(site): S, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let signature = headers.get(mykey_core::webhook::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let event = match site.cloud.verify(signature, &body) {
        Ok(e) => e,
        Err(why) => {
            tracing::warn!(why, "a webhook was refused");
            return StatusCode::BAD_REQUEST;
        }
    };
    match site.members.apply(&event, &String::from_utf8_lossy(&body)).await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "applying an event failed; the points cloud will retry");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn admin_ok(site: &Site, headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let Some(given) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(given) else { return false };
    let expected = format!("admin:{}", site.admin_password);
    // Constant time: the password's length is no secret worth a branch.
    bytes.len() == expected.len() && bytes.iter().zip(expected.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn events(State(site): S, headers: HeaderMap) -> Response {
    if !admin_ok(&site, &headers) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"webhook log\"")], "")
            .into_response();
    }
    let Ok(list) = site.members.events(200).await else {
        return refused(&site, StatusCode::INTERNAL_SERVER_ERROR, "ログを読めませんでした。");
    };
    let rows: String = list
        .iter()
        .map(|e| {
            format!("<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>", esc(&e.at), esc(&e.kind), esc(&e.body))
        })
        .collect();
    page(
        &site,
        "Webhook ログ",
        &format!(
            "<h1>受け取ったイベント（署名を確認済み）</h1><table id=\"events\"><caption>新しい順</caption><thead><tr><th scope=\"col\">受信</th>\
             <th scope=\"col\">種類</th><th scope=\"col\">内容</th></tr></thead><tbody>{rows}</tbody></table>"
        ),
    )
    .into_response()
}
