//! Point amounts. Points are whole numbers (1 pt = 1 yen); requests carry them as decimals so
//! that a fractional amount is refused with its own problem instead of a parse error.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// Largest amount accepted in one request: one trillion points. Keeps every sum of a
/// batch far away from `i64` overflow.
pub const MAX_POINTS: i64 = 1_000_000_000_000;

/// A strictly positive whole number of points, at most [`MAX_POINTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Points(i64);

/// A non-zero whole number of points with a sign: one leg of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SignedPoints(i64);

/// Why a number is not an acceptable amount of points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Has a fractional part.
    #[error("points are whole numbers; {0} has a fractional part")]
    Fractional(Decimal),
    /// Zero, or negative where a positive amount is required.
    #[error("the amount must be greater than zero, not {0}")]
    NotPositive(Decimal),
    /// Zero where a signed, non-zero amount is required.
    #[error("a posting of zero points moves nothing")]
    Zero,
    /// Beyond [`MAX_POINTS`].
    #[error("the amount {0} is larger than the limit of {MAX_POINTS} points")]
    TooLarge(Decimal),
}

fn whole(d: Decimal) -> Result<i64, AmountError> {
    if !d.fract().is_zero() {
        return Err(AmountError::Fractional(d.normalize()));
    }
    match d.to_i64() {
        Some(v) if v.abs() <= MAX_POINTS => Ok(v),
        _ => Err(AmountError::TooLarge(d.normalize())),
    }
}

impl Points {
    /// Checks a requested amount: whole, positive, within the limit.
    pub fn from_decimal(d: Decimal) -> Result<Self, AmountError> {
        if d <= Decimal::ZERO {
            return Err(AmountError::NotPositive(d.normalize()));
        }
        whole(d).map(Self)
    }

    /// Builds from an integer; `None` unless `1..=MAX_POINTS`.
    pub fn new(v: i64) -> Option<Self> {
        (1..=MAX_POINTS).contains(&v).then_some(Self(v))
    }

    /// The amount as an integer.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl SignedPoints {
    /// Checks one leg: whole, non-zero, within the limit either way.
    pub fn from_decimal(d: Decimal) -> Result<Self, AmountError> {
        if d.is_zero() {
            return Err(AmountError::Zero);
        }
        whole(d).map(Self)
    }

    /// The amount as an integer, negative for a debit.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Converts partner points at a rate into municipal points; the product must be whole.
pub fn convert(partner_points: Decimal, rate: Decimal) -> Result<Points, AmountError> {
    let product = partner_points.checked_mul(rate).ok_or(AmountError::TooLarge(partner_points))?;
    Points::from_decimal(product)
}

/// Writes an amount as a JSON number, as the API documents it: a whole one as an integer, any
/// other (a request echoed before it was refused) as a decimal number.
pub fn decimal_as_number<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    match (d.fract().is_zero(), d.to_i64(), d.to_f64()) {
        (true, Some(i), _) => s.serialize_i64(i),
        (_, _, Some(f)) => s.serialize_f64(f),
        _ => s.serialize_str(&d.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn whole_positive_amounts_pass() {
        assert_eq!(Points::from_decimal(d("100")).unwrap().get(), 100);
        assert_eq!(Points::from_decimal(d("100.000")).unwrap().get(), 100);
    }

    #[test]
    fn fractions_zero_negative_and_huge_are_refused() {
        assert_eq!(Points::from_decimal(d("1.5")), Err(AmountError::Fractional(d("1.5"))));
        assert_eq!(Points::from_decimal(d("0")), Err(AmountError::NotPositive(d("0"))));
        assert_eq!(Points::from_decimal(d("-3")), Err(AmountError::NotPositive(d("-3"))));
        assert!(matches!(Points::from_decimal(d("1000000000001")), Err(AmountError::TooLarge(_))));
        assert_eq!(SignedPoints::from_decimal(d("0")), Err(AmountError::Zero));
        assert_eq!(SignedPoints::from_decimal(d("-7")).unwrap().get(), -7);
    }

    #[test]
    fn conversion_must_come_out_whole() {
        assert_eq!(convert(d("1000"), d("0.5")).unwrap().get(), 500);
        assert_eq!(convert(d("1001"), d("0.5")), Err(AmountError::Fractional(d("500.5"))));
    }

    #[test]
    fn json_numbers_keep_their_fraction() {
        let v: Decimal = serde_json::from_str("2.5").unwrap();
        assert!(matches!(Points::from_decimal(v), Err(AmountError::Fractional(_))));
        let v: Decimal = serde_json::from_str("\"40\"").unwrap();
        assert_eq!(Points::from_decimal(v).unwrap().get(), 40);
    }
}
