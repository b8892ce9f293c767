//! The store's pages (server-rendered HTML; the only script is the payment page's, which
//! mounts the widget), its webhook endpoint and its admin page.

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use mykey_core::api::{LineItem, LineItemName};
use serde::Deserialize;
use uuid::Uuid;

use crate::orders::Order;
use crate::Shop;

type S = State<Arc<Shop>>;

/// Every route of the store.
pub fn router(shop: Arc<Shop>) -> Router {
    let csp = format!(
        "default-src 'self'; script-src 'self' {p}; frame-src {p}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        p = shop.points.base
    );
    let csp = HeaderValue::from_str(&csp).expect("an ASCII origin");
    Router::new()
        .route("/", get(home))
        .route("/products/{n}", get(product))
        .route("/cart", get(cart).post(add_to_cart))
        .route("/checkout", post(checkout))
        .route("/orders/{id}", get(order))
        .route("/orders/{id}/pay", get(pay))
        .route("/webhooks", post(webhook))
        .route("/admin", get(admin))
        .route("/admin/orders/{id}/refund", post(refund))
        .route(
            "/static/store.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], include_str!("../static/store.css")) }),
        )
        .route(
            "/static/pay.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], include_str!("../static/pay.js")) }),
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
        .with_state(shop)
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn yen(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}{out}円", if n < 0 { "-" } else { "" })
}

fn page(title: &str, body: &str) -> Html<String> {
    page_with(title, "", body)
}

fn page_with(title: &str, head: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{head}\
         <title>{t} | めいぶつチョイス</title><link rel=\"stylesheet\" href=\"/static/store.css\"></head><body>\
         <header><a href=\"/\" class=\"brand\">めいぶつチョイス</a> <a href=\"/cart\">カート</a></header><main>{body}</main>\
         <footer><p>自治体ポイントが使えるお店（例示用のストアです）</p></footer></body></html>",
        t = esc(title)
    ))
}

fn refused(status: StatusCode, text: &str) -> Response {
    (
        status,
        page("エラー", &format!("<h1>エラー</h1><p role=\"alert\">{}</p><p><a href=\"/\">トップへ</a></p>", esc(text))),
    )
        .into_response()
}

/// A form post must come from the store's own pages (the admin's password is sent by the
/// browser on any site's request, so the origin is what keeps other sites out).
fn same_origin(shop: &Shop, headers: &HeaderMap) -> bool {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) == Some(shop.origin.as_str())
}

fn elsewhere() -> Response {
    refused(StatusCode::FORBIDDEN, "このページからは送信できません。")
}

#[derive(Deserialize)]
struct Search {
    q: Option<String>,
}

async fn home(State(shop): S, Query(s): Query<Search>) -> Html<String> {
    let q = s.q.unwrap_or_default().chars().take(100).collect::<String>();
    let found = shop.catalog.search(&q);
    let mut body = format!(
        "<h1>全国のめいぶつ</h1><form role=\"search\" action=\"/\"><label for=\"q\">商品・自治体で探す</label> \
         <input id=\"q\" name=\"q\" value=\"{}\"> <button>検索</button></form>",
        esc(&q)
    );
    let mut place = (String::new(), String::new());
    for (n, p) in &found {
        if (p.prefecture.clone(), p.municipality.clone()) != place {
            if !place.0.is_empty() {
                body.push_str("</ul>");
            }
            place = (p.prefecture.clone(), p.municipality.clone());
            body.push_str(&format!("<h2>{} {}</h2><ul class=\"products\">", esc(&p.prefecture), esc(&p.municipality)));
        }
        body.push_str(&format!("<li><a href=\"/products/{n}\">{}</a> {}</li>", esc(&p.name), yen(p.price)));
    }
    if found.is_empty() {
        body.push_str("<p>見つかりませんでした。</p>");
    } else {
        body.push_str("</ul>");
    }
    page("全国のめいぶつ", &body)
}

async fn product(State(shop): S, Path(n): Path<usize>) -> Response {
    let Some(p) = shop.catalog.get(n) else {
        return refused(StatusCode::NOT_FOUND, "その商品はありません。");
    };
    page(
        &p.name,
        &format!(
            "<h1>{}</h1><p>{} {}</p><p class=\"price\">{}（送料込み）</p>\
             <form method=\"post\" action=\"/cart\"><input type=\"hidden\" name=\"product\" value=\"{n}\">\
             <label for=\"quantity\">数量</label> <input id=\"quantity\" name=\"quantity\" type=\"number\" min=\"1\" max=\"99\" value=\"1\"> \
             <button id=\"add-to-cart\">カートに入れる</button></form><p>自治体ポイントで支払えます（1ポイント＝1円）。</p>",
            esc(&p.name),
            esc(&p.prefecture),
            esc(&p.municipality),
            yen(p.price)
        ),
    )
    .into_response()
}

/// The cart cookie: `product:quantity` pairs, at most 20.
fn read_cart(jar: &CookieJar) -> Vec<(usize, u32)> {
    jar.get("cart")
        .map(|c| {
            c.value()
                .split('.')
                .take(20)
                .filter_map(|pair| {
                    let (p, q) = pair.split_once(':')?;
                    Some((p.parse().ok()?, q.parse::<u32>().ok().filter(|q| (1..=99).contains(q))?))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_cart(jar: CookieJar, cart: &[(usize, u32)]) -> CookieJar {
    let value = cart.iter().map(|(p, q)| format!("{p}:{q}")).collect::<Vec<_>>().join(".");
    jar.add(Cookie::build(("cart", value)).path("/").http_only(true).same_site(SameSite::Lax).build())
}

#[derive(Deserialize)]
struct AddToCart {
    product: usize,
    quantity: u32,
}

async fn add_to_cart(State(shop): S, headers: HeaderMap, jar: CookieJar, Form(f): Form<AddToCart>) -> Response {
    if !same_origin(&shop, &headers) {
        return elsewhere();
    }
    if shop.catalog.get(f.product).is_none() || !(1..=99).contains(&f.quantity) {
        return refused(StatusCode::BAD_REQUEST, "商品か数量が正しくありません。");
    }
    let mut cart = read_cart(&jar);
    if let Some((_, q)) = cart.iter_mut().find(|(p, _)| *p == f.product) {
        *q = (*q + f.quantity).min(99);
    } else if cart.len() < 20 {
        cart.push((f.product, f.quantity));
    } else {
        return refused(StatusCode::BAD_REQUEST, "カートには20品目まで入ります。");
    }
    (write_cart(jar, &cart), Redirect::to("/cart")).into_response()
}

async fn cart(State(shop): S, jar: CookieJar) -> Html<String> {
    let cart = read_cart(&jar);
    if cart.is_empty() {
        return page("カート", "<h1>カート</h1><p>カートは空です。</p><p><a href=\"/\">商品を探す</a></p>");
    }
    let mut total = 0;
    let mut rows = String::new();
    for (n, q) in &cart {
        let Some(p) = shop.catalog.get(*n) else { continue };
        total += p.price * i64::from(*q);
        rows.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{q}</td><td class=\"num\">{}</td></tr>",
            esc(&p.name),
            yen(p.price * i64::from(*q))
        ));
    }
    page(
        "カート",
        &format!(
            "<h1>カート</h1><table><thead><tr><th scope=\"col\">商品</th><th scope=\"col\">数量</th><th scope=\"col\">金額</th></tr></thead>\
             <tbody>{rows}</tbody><tfoot><tr><th scope=\"row\" colspan=\"2\">合計</th><td class=\"num\" id=\"total\">{}</td></tr></tfoot></table>\
             <form method=\"post\" action=\"/checkout\"><button id=\"to-checkout\">ご注文手続きへ（自治体ポイントで支払う）</button></form>",
            yen(total)
        ),
    )
}

/// Opens the order's checkout session with the store's secret key (on this server), then
/// sends the customer to the payment page. The amount is fixed here, from the cart.
async fn checkout(State(shop): S, headers: HeaderMap, jar: CookieJar) -> Response {
    if !same_origin(&shop, &headers) {
        return elsewhere();
    }
    let cart = read_cart(&jar);
    let lines: Vec<(String, u32, i64)> =
        cart.iter().filter_map(|(n, q)| shop.catalog.get(*n).map(|p| (p.name.clone(), *q, p.price))).collect();
    if lines.is_empty() {
        return Redirect::to("/cart").into_response();
    }
    let amount = lines.iter().map(|(_, q, p)| i64::from(*q) * p).sum();
    let made = async {
        let number = shop.orders.next_number().await?;
        let id = Uuid::new_v4();
        let reference = format!("MC-{number}");
        let items = lines
            .iter()
            .map(|(name, q, p)| {
                Ok(LineItem { name: LineItemName::parse(name.clone())?, quantity: *q, unit_amount: (*p).into() })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let created = shop.points.open(id, &reference, items, amount, format!("{}/orders/{id}", shop.origin)).await?;
        let order = Order {
            id,
            reference,
            lines: lines.clone(),
            amount,
            session: created.session.id,
            client_secret: created.client_secret,
            state: "awaiting payment".into(),
            points: 0,
            refunded: 0,
        };
        shop.orders.insert(number, &order).await?;
        anyhow::Ok(id)
    };
    match made.await {
        Ok(id) => (write_cart(jar, &[]), Redirect::to(&format!("/orders/{id}/pay"))).into_response(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "opening a checkout failed");
            refused(
                StatusCode::BAD_GATEWAY,
                "お支払いの準備ができませんでした。しばらくしてからもう一度お試しください。",
            )
        }
    }
}

fn order_lines(o: &Order) -> String {
    let rows: String = o
        .lines
        .iter()
        .map(|(n, q, p)| {
            format!(
                "<tr><td>{}</td><td class=\"num\">{q}</td><td class=\"num\">{}</td></tr>",
                esc(n),
                yen(p * i64::from(*q))
            )
        })
        .collect();
    format!(
        "<table><thead><tr><th scope=\"col\">商品</th><th scope=\"col\">数量</th><th scope=\"col\">金額</th></tr></thead><tbody>{rows}</tbody>\
         <tfoot><tr><th scope=\"row\" colspan=\"2\">合計</th><td class=\"num\">{}</td></tr></tfoot></table>",
        yen(o.amount)
    )
}

/// The payment page: mounts the points cloud's widget with the publishable key and this
/// order's client secret.
async fn pay(State(shop): S, Path(id): Path<Uuid>) -> Response {
    let Ok(Some(o)) = shop.orders.get(id).await else {
        return refused(StatusCode::NOT_FOUND, "その注文はありません。");
    };
    if o.state != "awaiting payment" {
        return Redirect::to(&format!("/orders/{id}")).into_response();
    }
    page(
        "お支払い",
        &format!(
            "<h1>ご注文 {}</h1>{}<h2>自治体ポイントでのお支払い</h2>\
             <div id=\"pay\" data-points=\"{}\" data-pk=\"{}\" data-secret=\"{}\" data-order=\"/orders/{id}\"></div>\
             <p id=\"pay-status\" role=\"status\"></p><script type=\"module\" src=\"/static/pay.js\"></script>",
            esc(&o.reference),
            order_lines(&o),
            esc(&shop.points.base),
            esc(&shop.points.publishable_key),
            esc(&o.client_secret)
        ),
    )
    .into_response()
}

fn state_text(o: &Order) -> String {
    match o.state.as_str() {
        "completed" if o.points < o.amount => {
            format!(
                "ポイントでのお支払い済み（{}）。残り {} は別のお支払い方法でお願いします。",
                yen(o.points),
                yen(o.amount - o.points)
            )
        }
        "completed" => "お支払い済み".into(),
        "authorized" => "ポイントを確保済み（発送時に確定）".into(),
        "cancelled" => "キャンセル済み".into(),
        "expired" => "お支払い期限切れ".into(),
        _ => "お支払い待ち".into(),
    }
}

async fn order(State(shop): S, Path(id): Path<Uuid>) -> Response {
    let Ok(Some(o)) = shop.orders.get(id).await else {
        return refused(StatusCode::NOT_FOUND, "その注文はありません。");
    };
    let refunded =
        if o.refunded > 0 { format!("<p>返金済みポイント：{}</p>", o.refunded) } else { String::new() };
    let waiting = o.state == "awaiting payment";
    let pay = if waiting {
        format!("<p>お支払いの確認を待っています（この画面は自動で更新されます）。<a href=\"/orders/{id}/pay\">お支払いへ</a></p>")
    } else {
        String::new()
    };
    // The points cloud's event turns the order paid moments after the widget says so.
    page_with(
        "ご注文",
        if waiting { "<meta http-equiv=\"refresh\" content=\"2\">" } else { "" },
        &format!(
            "<h1>ご注文 {}</h1>{}<p>状態：<strong id=\"order-state\" data-state=\"{}\">{}</strong></p>{refunded}{pay}",
            esc(&o.reference),
            order_lines(&o),
            esc(&o.state),
            esc(&state_text(&o))
        ),
    )
    .into_response()
}

/// The points cloud's events: verified with the store's secret, applied once per event id.
async fn webhook(State(shop): S, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let signature = headers.get(mykey_core::webhook::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let event = match shop.points.verify(signature, &body) {
        Ok(e) => e,
        Err(why) => {
            tracing::warn!(why, "a webhook was refused");
            return StatusCode::BAD_REQUEST;
        }
    };
    match shop.orders.apply(&event).await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "applying an event failed; the points cloud will retry");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn admin_ok(shop: &Shop, headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let Some(given) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(given) else { return false };
    // Compared in constant time.
    let want = format!("admin:{}", shop.admin_password);
    bytes.len() == want.len() && bytes.iter().zip(want.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn ask_password() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"meibutsu admin\", charset=\"UTF-8\"")],
        "admin only",
    )
        .into_response()
}

async fn admin(State(shop): S, headers: HeaderMap) -> Response {
    if !admin_ok(&shop, &headers) {
        return ask_password();
    }
    let orders = shop.orders.all().await.unwrap_or_default();
    let mut rows = String::new();
    for o in &orders {
        let applied = shop.orders.applied(o.id).await.unwrap_or(0);
        let refundable = if o.state == "completed" { o.points - o.refunded } else { 0 };
        let form = if refundable > 0 {
            format!(
                "<form method=\"post\" action=\"/admin/orders/{id}/refund\"><input type=\"hidden\" name=\"refund_id\" value=\"{r}\">\
                 <label for=\"refund-{id}\">返金ポイント</label> <input id=\"refund-{id}\" name=\"points\" type=\"number\" min=\"1\" max=\"{refundable}\" value=\"{refundable}\"> \
                 <button>返金する</button></form>",
                id = o.id,
                r = Uuid::new_v4()
            )
        } else {
            String::new()
        };
        rows.push_str(&format!(
            "<tr><td><a href=\"/orders/{}\">{}</a></td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{applied}</td><td>{form}</td></tr>",
            o.id,
            esc(&o.reference),
            yen(o.amount),
            esc(&state_text(o)),
            o.points,
            o.refunded
        ));
    }
    page(
        "管理",
        &format!(
            "<h1>注文の管理</h1><table><thead><tr><th scope=\"col\">注文</th><th scope=\"col\">金額</th><th scope=\"col\">状態</th>\
             <th scope=\"col\">ポイント</th><th scope=\"col\">返金済み</th><th scope=\"col\">受信した通知</th><th scope=\"col\">返金</th></tr></thead><tbody>{rows}</tbody></table>"
        ),
    )
    .into_response()
}

#[derive(Deserialize)]
struct RefundForm {
    refund_id: Uuid,
    points: i64,
}

async fn refund(State(shop): S, headers: HeaderMap, Path(id): Path<Uuid>, Form(f): Form<RefundForm>) -> Response {
    if !admin_ok(&shop, &headers) {
        return ask_password();
    }
    if !same_origin(&shop, &headers) {
        return elsewhere();
    }
    let Ok(Some(o)) = shop.orders.get(id).await else {
        return refused(StatusCode::NOT_FOUND, "その注文はありません。");
    };
    match shop.points.refund(o.session, f.refund_id, f.points).await {
        // The order's refunded points change when the refund's event arrives.
        Ok(_) => Redirect::to("/admin").into_response(),
        Err(e) => refused(StatusCode::BAD_GATEWAY, &format!("返金できませんでした：{e}")),
    }
}
