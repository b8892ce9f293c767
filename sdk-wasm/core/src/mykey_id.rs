//! The MyKey ID: 8 half-width characters, upper-case A-Z and 0-9.

use std::fmt;

/// Length of every MyKey ID.
pub const MYKEY_ID_LEN: usize = 8;

/// Characters used for generated IDs: A-Z and 0-9 without the look-alikes I, O, 0 and 1
/// (docs/domain.md, assumed rule). 32 characters, so one random byte maps without bias.
pub const GENERATED_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A syntactically valid MyKey ID. Whether it is taken is the server's business.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "AB2CD3EF"))]
#[serde(transparent)]
pub struct MykeyId(String);

/// Why a string is not a MyKey ID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MykeyIdError {
    /// Wrong number of characters.
    #[error("a MyKey ID has exactly 8 characters, this one has {0}")]
    Length(usize),
    /// A character outside A-Z and 0-9 (lower case and full-width included).
    #[error("a MyKey ID uses only half-width upper-case letters A-Z and digits 0-9, not {0:?}")]
    Character(char),
}

impl MykeyId {
    /// Parses a typed candidate; no normalisation, so `abcd1234` is refused, not upper-cased.
    pub fn parse(s: &str) -> Result<Self, MykeyIdError> {
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit())) {
            return Err(MykeyIdError::Character(c));
        }
        if s.len() != MYKEY_ID_LEN {
            return Err(MykeyIdError::Length(s.chars().count()));
        }
        Ok(Self(s.to_owned()))
    }

    /// Builds a generated ID from 8 random bytes (the caller supplies the randomness).
    pub fn generate_from(random: [u8; MYKEY_ID_LEN]) -> Self {
        let s = random.iter().map(|b| GENERATED_ALPHABET[usize::from(*b) % GENERATED_ALPHABET.len()] as char).collect();
        Self(s)
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MykeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for MykeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn accepts_upper_case_letters_and_digits() {
        assert_eq!(MykeyId::parse("AB12CD34").unwrap().as_str(), "AB12CD34");
    }

    #[test]
    fn refuses_wrong_length_and_characters() {
        assert_eq!(MykeyId::parse("AB12CD3"), Err(MykeyIdError::Length(7)));
        assert_eq!(MykeyId::parse("AB12CD345"), Err(MykeyIdError::Length(9)));
        assert_eq!(MykeyId::parse("ab12cd34"), Err(MykeyIdError::Character('a')));
        assert_eq!(MykeyId::parse("ＡB12CD34"), Err(MykeyIdError::Character('Ａ')));
        assert_eq!(MykeyId::parse("AB-2CD34"), Err(MykeyIdError::Character('-')));
    }

    #[test]
    fn generated_ids_are_valid_and_avoid_look_alikes() {
        for seed in 0..=255u8 {
            let id = MykeyId::generate_from([seed, seed.wrapping_mul(7), 3, 4, 5, 6, 7, 255]);
            assert!(MykeyId::parse(id.as_str()).is_ok());
            assert!(!id.as_str().contains(['I', 'O', '0', '1']));
        }
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<MykeyId>("\"AB12CD34\"").is_ok());
        assert!(serde_json::from_str::<MykeyId>("\"ab\"").is_err());
    }
}
