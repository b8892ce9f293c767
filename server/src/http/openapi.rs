//! The OpenAPI 3.1 document, generated from the handlers and the shared types.

use mykey_core::api::*;
use mykey_core::{Problem, ProblemKind};
use utoipa::OpenApi;

use super::{accounts, admin, close, directory, ledger, log, ops};

pub(super) async fn openapi_json() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    // Built once: the document is the same for the whole life of the process.
    static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = JSON.get_or_init(|| serde_json::to_string(&document()).expect("the document serialises"));
    ([(axum::http::header::CONTENT_TYPE, "application/json")], json.as_str())
}

/// The whole document: the ledger's operations and identity's, then [`Conformance`].
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa::Modify as _;
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::http::identity::IdentityDoc::openapi());
    doc.merge(super::checkout::CheckoutDoc::openapi());
    doc.merge(super::embedding::EmbeddingDoc::openapi());
    doc.merge(super::partners::PartnersDoc::openapi());
    doc.merge(super::devices::DevicesDoc::openapi());
    doc.merge(super::vouchers::VouchersDoc::openapi());
    Conformance.modify(&mut doc);
    doc
}
struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("mk_<role>_<hex>").build(),
            ),
        );
        // A counter device's RFC 9421 signature (docs/counter.md): Signature-Input, Signature
        // and Content-Digest; named here by its `Signature` header.
        components.add_security_scheme(
            "device_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Signature",
                "RFC 9421 ecdsa-p256-sha256 by an enrolled device over @method @authority @path @query \
                 content-digest, with Signature-Input and Content-Digest (docs/counter.md)",
            ))),
        );
        // A resident's browser session (card or password login), or a registration's.
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::http::extract::SESSION_COOKIE))),
        );
    }
}

/// Makes the document say what every operation can answer: every 4xx and 5xx answer is an
/// `application/problem+json` `Problem`; every operation may answer 400 (a malformed query or
/// body), 500 and 503 (`http::REQUEST_TIMEOUT`); one with an API key 401, 403 and 429 (key
/// guessing); one with path parameters 404; one with a body 413.
struct Conformance;

impl utoipa::Modify for Conformance {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let problem = || ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        let answer = |kind: ProblemKind, when: &str| {
            ResponseBuilder::new()
                .description(format!("{} ({when})", kind.title()))
                .content("application/problem+json", problem())
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                let responses = &mut op.responses.responses;
                for (status, r) in responses.iter_mut() {
                    if let (RefOr::T(r), true) = (r, status.as_str() >= "400") {
                        r.content.shift_remove("application/json");
                        r.content.insert("application/problem+json".into(), problem());
                    }
                }
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_path_params =
                    op.parameters.iter().flatten().any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Path);
                let mut add = |kind: ProblemKind, when: &str| {
                    responses.entry(kind.status().to_string()).or_insert_with(|| RefOr::T(answer(kind, when)));
                };
                add(ProblemKind::InvalidRequest, "a malformed query, path or body");
                add(ProblemKind::Internal, "the server failed; send the request again with the same id");
                add(ProblemKind::Unavailable, "the server could not answer in time");
                if secured {
                    add(ProblemKind::Unauthenticated, "no key, an unknown or a revoked key");
                    add(ProblemKind::Forbidden, "this key may not do that");
                    add(ProblemKind::RateLimited, "too many unknown keys from this address");
                }
                if has_path_params {
                    add(ProblemKind::NotFound, "nothing has that id");
                }
                if op.request_body.is_some() {
                    add(ProblemKind::BodyTooLarge, "a body over http::MAX_BODY_BYTES");
                }
            }
        }
    }
}

/// The OpenAPI 3.1 document, generated from the handlers and the shared types.
#[derive(OpenApi)]
#[openapi(
    info(title = "mykey points cloud", description = "Ledger API of the MyKey Platform's municipal points cloud."),
    paths(ops::healthz, ops::metrics_text, ops::csp_report, ledger::issue_coupons, ledger::redeem_coupon, ledger::counter_challenge, ledger::balance_challenge, ledger::counter_balances, ledger::counter_payment,
          ledger::counter_hold, ledger::refund_challenge, ledger::counter_refund, close::daily_close, close::daily_close_csv, ledger::payment, ledger::grant,
          ledger::conversion, ledger::assignment, ledger::transaction, ledger::hold, ledger::capture, ledger::void,
          ledger::create_resident, accounts::resident_balances, accounts::account, accounts::balance_as_of, accounts::history,
          directory::municipalities, directory::partners, directory::shops, directory::directory, directory::search,
          admin::run_jobs, admin::settlements, admin::revoke_api_key,
          log::log_checkpoint, log::log_key, log::log_witnesses, log::log_inclusion, log::log_consistency),
    components(schemas(Problem, PostingRequest, Posting, Expiry, AccountKind, TransactionKind, HoldState, HistoryEntry, admin::JobsRequest)),
    modifiers(&SecurityAddon)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use mykey_core::ProblemKind;

    /// What schemathesis found: problems documented as `application/json`, query parameters
    /// documented as path parameters, and 400, 404 and 429 answers missing.
    #[test]
    fn the_document_says_what_the_server_answers() {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::RefOr;
        let doc = super::document();
        let mut checked = 0;
        for (path, item) in &doc.paths.paths {
            let ops = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for op in ops.into_iter().flatten() {
                checked += 1;
                for p in op.parameters.iter().flatten() {
                    if p.parameter_in == ParameterIn::Path {
                        assert!(path.contains(&format!("{{{}}}", p.name)), "{path}: {} is not in the path", p.name);
                    }
                }
                let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
                for needed in ["400", "500", "503"] {
                    assert!(statuses.contains(&needed), "{path} lacks {needed}");
                }
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    assert!(statuses.contains(&"401") && statuses.contains(&"429"), "{path} lacks 401 or 429");
                }
                if path.contains('{') {
                    assert!(statuses.contains(&"404"), "{path} lacks 404");
                }
                for (status, r) in &op.responses.responses {
                    let RefOr::T(r) = r else { continue };
                    if status.as_str() >= "400" {
                        let types: Vec<&String> = r.content.keys().collect();
                        assert_eq!(types, ["application/problem+json"], "{path} {status}");
                    }
                }
            }
        }
        assert!(checked > 50, "every operation was checked ({checked})");
        let search = &doc.paths.paths["/v1/search"].get.as_ref().unwrap().parameters.as_ref().unwrap()[0];
        assert!(search.name == "q" && search.parameter_in == ParameterIn::Query, "q is a query parameter");
        assert!(matches!(search.required, utoipa::openapi::Required::True), "q is required");
    }

    #[test]
    fn every_problem_type_is_documented() {
        let doc = include_str!("../../../docs/problems.md");
        for k in ProblemKind::ALL {
            assert!(
                doc.contains(&format!("| `{}` | {} |", k.slug(), k.status())),
                "docs/problems.md lacks {}",
                k.slug()
            );
        }
    }

    /// Whether `path` is called with a store's, partner's or terminal's key (not the widget's
    /// routes, which answer the resident inside the frame).
    fn party_facing(path: &str) -> bool {
        const WIDGET: [&str; 4] = ["/confirm", "/nonce", "/sign-in", "/view"];
        let sessions = path.starts_with("/v1/checkout/sessions") || path.starts_with("/v1/link-sessions");
        path.starts_with("/v1/shops/")
            || path.starts_with("/v1/partners/")
            || path.starts_with("/v1/facilities/")
            || path.starts_with("/v1/holds/")
            || path == "/v1/settlements"
            || (sessions && !WIDGET.iter().any(|w| path.ends_with(w)))
    }

    /// Every property name `schema` (or what it refers to) can carry, recursively.
    fn members(doc: &serde_json::Value, schema: &serde_json::Value, seen: &mut Vec<String>, out: &mut Vec<String>) {
        if let Some(r) = schema.get("$ref").and_then(|r| r.as_str()) {
            let name = r.trim_start_matches("#/components/schemas/").to_owned();
            if !seen.contains(&name) {
                seen.push(name.clone());
                members(doc, &doc["components"]["schemas"][&name], seen, out);
            }
            return;
        }
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            for (k, v) in props {
                out.push(k.clone());
                members(doc, v, seen, out);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(v) = schema.get(key) {
                members(doc, v, seen, out);
            }
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for v in schema.get(key).and_then(|v| v.as_array()).into_iter().flatten() {
                members(doc, v, seen, out);
            }
        }
    }

    /// Nothing a store, partner or terminal receives tells a resident's points or accounts
    /// (issue 23): no answer of an operation they call, and no webhook they get, has a member
    /// that would.
    #[test]
    fn no_answer_to_a_store_partner_or_terminal_tells_a_residents_points() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let forbidden = ["balance_after", "available", "account", "accounts", "balance", "postings"];
        let mut checked = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            // The one exception: the counter's screen shows the points usable at the shop
            // after the resident's card signed a balance challenge for it (tested in
            // it/counter.rs: nothing without that signature).
            if !party_facing(path) || path == "/v1/shops/{shop}/counter-balances" {
                continue;
            }
            for (method, op) in item.as_object().unwrap() {
                for (status, r) in op["responses"].as_object().into_iter().flatten() {
                    for (_, content) in r["content"].as_object().into_iter().flatten() {
                        let mut names = Vec::new();
                        members(&doc, &content["schema"], &mut Vec::new(), &mut names);
                        for f in forbidden {
                            assert!(!names.iter().any(|n| n == f), "{method} {path} {status} answers {f}");
                        }
                    }
                }
                checked.push(format!("{method} {path}"));
            }
        }
        for needed in [
            "post /v1/shops/{shop}/mandate-charges",
            "post /v1/shops/{shop}/counter-payments",
            "post /v1/holds/{hold}/capture",
            "post /v1/partners/{partner}/linked-conversions",
            "post /v1/checkout/sessions",
            "post /v1/link-sessions",
        ] {
            assert!(checked.iter().any(|c| c == needed), "{needed} was checked: {checked:?}");
        }
        for event in ["CheckoutEvent", "PartnerEvent"] {
            let mut names = Vec::new();
            members(
                &doc,
                &serde_json::json!({"$ref": format!("#/components/schemas/{event}")}),
                &mut Vec::new(),
                &mut names,
            );
            assert!(!names.is_empty(), "{event} is in the document");
            for f in forbidden {
                assert!(!names.iter().any(|n| n == f), "{event} carries {f}");
            }
        }
    }
}
