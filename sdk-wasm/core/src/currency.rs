//! Which kind of point an account holds. Points of one municipality never mix with another's;
//! reserved points belong to no municipality until assigned.

use std::fmt;
use std::str::FromStr;

/// The unit an account counts in. Every transaction balances to zero per currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Currency {
    /// Converted partner points not yet assigned to a municipality.
    Reserved,
    /// Points issued by one municipality (its municipal and event points).
    Municipal(i64),
}

/// Why a string is not a currency.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a currency is \"reserved\" or \"municipal:<municipality id>\", not {0:?}")]
pub struct CurrencyParseError(pub String);

impl Currency {
    /// The municipality whose points these are, if any.
    pub fn municipality(self) -> Option<i64> {
        match self {
            Currency::Reserved => None,
            Currency::Municipal(m) => Some(m),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Currency::Reserved => f.write_str("reserved"),
            Currency::Municipal(m) => write!(f, "municipal:{m}"),
        }
    }
}

impl FromStr for Currency {
    type Err = CurrencyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "reserved" {
            return Ok(Currency::Reserved);
        }
        s.strip_prefix("municipal:")
            .and_then(|m| m.parse::<i64>().ok())
            .filter(|m| *m > 0)
            .map(Currency::Municipal)
            .ok_or_else(|| CurrencyParseError(s.to_owned()))
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^(reserved|municipal:[1-9][0-9]*)$"))
            .description(Some("`reserved` or `municipal:<municipality id>`"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Currency {}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn round_trips() {
        for c in [Currency::Reserved, Currency::Municipal(42)] {
            assert_eq!(c.to_string().parse::<Currency>().unwrap(), c);
        }
        assert!("municipal:0".parse::<Currency>().is_err());
        assert!("yen".parse::<Currency>().is_err());
    }
}
