//! The OpenAPI 3.1 document, generated from the handlers and the shared types.

use axum::Json;
use mykey_core::api::*;
use mykey_core::Problem;
use utoipa::OpenApi;

use super::{accounts, admin, directory, ledger, log, ops};

pub(super) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::http::identity::IdentityDoc::openapi());
    Json(doc)
}
struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("mk_<role>_<hex>").build(),
            ),
        );
    }
}

/// The OpenAPI 3.1 document, generated from the handlers and the shared types.
#[derive(OpenApi)]
#[openapi(
    info(title = "mykey points cloud", description = "Ledger API of the MyKey Platform's municipal points cloud."),
    paths(ops::healthz, ops::metrics_text, ledger::issue_coupons, ledger::redeem_coupon, ledger::payment, ledger::grant,
          ledger::conversion, ledger::assignment, ledger::transaction, ledger::hold, ledger::capture, ledger::void,
          ledger::create_resident, accounts::resident_balances, accounts::account, accounts::balance_as_of, accounts::history,
          directory::municipalities, directory::partners, directory::shops, directory::directory, directory::search,
          admin::run_jobs, admin::settlements, admin::revoke_api_key,
          log::log_checkpoint, log::log_key, log::log_inclusion, log::log_consistency),
    components(schemas(Problem, PostingRequest, Posting, Expiry, AccountKind, TransactionKind, HoldState, HistoryEntry, admin::JobsRequest)),
    modifiers(&SecurityAddon)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use mykey_core::ProblemKind;

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
}
