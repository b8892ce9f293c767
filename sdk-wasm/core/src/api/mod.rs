//! Request and response bodies of the `/v1` API, one file per domain (re-exported here, so
//! `mykey_core::api::PaymentRequest` names the one type everywhere). Amounts in requests are decimals so that a
//! fraction reaches the ledger and is refused as `fractional-points`; amounts in responses are
//! whole points.

macro_rules! api_type {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($body)* }
    };
}

macro_rules! api_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($body)* }
    };
}

pub(crate) use {api_enum, api_type};

mod accounts;
mod admin;
mod checkout;
mod counter;
mod devices;
mod directory;
mod embedding;
mod ledger;
mod log;
mod mandates;
mod partners;
mod vouchers;

pub use accounts::*;
pub use admin::*;
pub use checkout::*;
pub use counter::*;
pub use devices::*;
pub use directory::*;
pub use embedding::*;
pub use ledger::*;
pub use log::*;
pub use mandates::*;
pub use partners::*;
pub use vouchers::*;

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn payment_request_keeps_fractional_amounts_for_the_ledger_to_refuse() {
        let r: PaymentRequest = serde_json::from_str(
            r#"{"id":"7b0c8f6e-9a43-4c55-8a8e-5b1f5c2a9d10","resident":1,"municipality":2,"shop":3,"amount":1.5}"#,
        )
        .unwrap();
        assert!(crate::Points::from_decimal(r.amount).is_err());
    }

    #[test]
    fn a_line_items_amount_is_a_json_number_as_documented() {
        let item: LineItem =
            serde_json::from_str(r#"{"name":"焼きまんじゅう","quantity":2,"unit_amount":"250"}"#).unwrap();
        let back = serde_json::to_value(&item).unwrap();
        assert_eq!(back["unit_amount"], serde_json::json!(250));
        assert_eq!(serde_json::from_value::<LineItem>(back).unwrap(), item, "and reads back");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<VoidRequest>(r#"{"id":"7b0c8f6e-9a43-4c55-8a8e-5b1f5c2a9d10","amount":3}"#);
        assert!(e.is_err());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in [AccountKind::Reserved, AccountKind::Receivable, AccountKind::Clearing] {
            assert_eq!(AccountKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(TransactionKind::parse("expiry"), Some(TransactionKind::Expiry));
        assert_eq!(HoldState::parse("voided"), Some(HoldState::Voided));
    }
}
