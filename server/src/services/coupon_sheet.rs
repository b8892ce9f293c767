//! A coupon batch on paper and for a mail house (the seed's paper delivery): a print-ready HTML
//! sheet (A4, one card-sized cell per coupon: the partner, the code in groups, the points, the
//! expiry and a QR code of the redemption URL) and CSV rows of the same.

use mykey_core::api::{BatchCode, CouponState};

/// What every coupon of the batch says besides its code.
pub struct SheetHeading<'a> {
    /// The partner's name.
    pub partner: &'a str,
    /// Reserved points per coupon.
    pub points: i64,
    /// The last day, as printed (`2026-12-31`).
    pub expires_on: &'a str,
}

/// `text` safe inside HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The QR code of `url`: a coupon's URL always fits one.
fn qr_svg(url: &str) -> String {
    mykey_core::qr::svg(url).expect("a URL fits a QR code")
}

/// The print-ready sheet of `codes`.
pub fn sheet(h: &SheetHeading<'_>, codes: &[BatchCode]) -> String {
    let partner = escape(h.partner);
    let mut out = String::with_capacity(codes.len() * 4096 + 2048);
    out.push_str(&format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{partner} 自治体ポイント交換クーポン</title><style>\
         @page{{size:A4;margin:10mm}}\
         body{{margin:0;font-family:'Noto Sans CJK JP','Noto Serif CJK JP',sans-serif;color:#000}}\
         .sheet{{display:grid;grid-template-columns:repeat(2,91mm);gap:4mm;justify-content:center}}\
         .coupon{{box-sizing:border-box;width:91mm;height:55mm;border:0.3mm dashed #555;padding:3mm 4mm;\
         display:grid;grid-template-columns:1fr 26mm;gap:2mm;break-inside:avoid;page-break-inside:avoid}}\
         .coupon h2{{font-size:9pt;margin:0 0 1mm}} .coupon p{{margin:0 0 1mm;font-size:8pt}}\
         .code{{font-family:'DejaVu Sans Mono',monospace;font-size:12pt;font-weight:bold;letter-spacing:0.3mm;white-space:nowrap}}\
         .points{{font-size:14pt;font-weight:bold}} .qr svg{{width:26mm;height:26mm}} .qr{{align-self:center}}\
         .how{{font-size:6.5pt;color:#333}}\
         </style></head><body><main class=\"sheet\">"
    ));
    for c in codes {
        let code = escape(&c.code);
        out.push_str(&format!(
            "<section class=\"coupon\" aria-label=\"{code}\"><div><h2>{partner} 自治体ポイント交換クーポン</h2>\
             <p class=\"points\">{points} ポイント</p><p>クーポンコード</p><p class=\"code\">{code}</p>\
             <p>有効期限 {expires}</p><p class=\"how\">QRコードを読み取るか、自治体ポイントナビのマイページでコードを入力してください。</p></div>\
             <div class=\"qr\">{qr}</div></section>",
            points = h.points,
            expires = escape(h.expires_on),
            qr = qr_svg(&c.url),
        ));
    }
    out.push_str("</main></body></html>");
    out
}

/// The batch as CSV for a mail house: code, URL, points, expiry, state, redemption time.
pub fn csv(h: &SheetHeading<'_>, codes: &[BatchCode]) -> String {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(codes.len() * 128));
    w.write_record(["code", "url", "points", "expires_on", "state", "redeemed_at"]).expect("writing to memory");
    for c in codes {
        let state = match c.state {
            CouponState::Issued => "issued",
            CouponState::Redeemed => "redeemed",
            CouponState::Expired => "expired",
        };
        let redeemed = c.redeemed_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        w.write_record([c.code.as_str(), &c.url, &h.points.to_string(), h.expires_on, state, &redeemed])
            .expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("CSV of UTF-8 text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qr_code_draws_its_dark_runs_and_the_sheet_escapes_its_texts() {
        let svg = qr_svg("https://mykey.example/app/mypage/coupons?coupon=0000000000000000");
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"), "{svg}");
        assert!(svg.len() < 8_000, "a QR code stays small: {}", svg.len());
        let code = BatchCode {
            code: "0000-0000-0000-0000".into(),
            url: "https://x/<".into(),
            state: CouponState::Issued,
            redeemed_at: None,
        };
        let page = sheet(
            &SheetHeading { partner: "A&B <card>", points: 500, expires_on: "2026-12-31" },
            std::slice::from_ref(&code),
        );
        assert!(page.contains("A&amp;B &lt;card&gt;") && !page.contains("<card>"));
        assert_eq!(page.matches("class=\"coupon\"").count(), 1);
        let rows = csv(&SheetHeading { partner: "A", points: 500, expires_on: "2026-12-31" }, &[code]);
        assert_eq!(rows.lines().nth(1), Some("0000-0000-0000-0000,https://x/<,500,2026-12-31,issued,"));
    }
}
