//! Free text from outside (memos, references, names): one line of at most `MAX` characters
//! with no control characters, checked when a request is parsed. Every table, log leaf, mail
//! and entry bundle can then hold whatever was acknowledged: PostgreSQL refuses NUL in text,
//! and an unbounded text would outgrow a leaf.

use std::fmt;
use std::ops::Deref;

/// The longest memo, in characters.
pub const MEMO_MAX: usize = 200;

/// A memo shown in the points history and recorded in the transaction's log leaf.
pub type Memo = Text<MEMO_MAX>;

/// The longest reference a partner or a store gives its own request (an order number), in
/// characters.
pub const REFERENCE_MAX: usize = 128;

/// A partner's or a store's own reference for a request: the same reference gives the same
/// answer again.
pub type Reference = Text<REFERENCE_MAX>;

/// One line of text: 1 to `MAX` characters, none of them a control character (C0, DEL, C1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Text<const MAX: usize>(String);

/// Why a text is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty.
    #[error("the text is empty")]
    Empty,
    /// More characters than allowed.
    #[error("the text has {len} characters; at most {max} are allowed")]
    TooLong {
        /// Characters given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A control character (U+0000 to U+001F, U+007F to U+009F), a line break included.
    #[error("the text holds the control character U+{0:04X} at character {1}")]
    Control(u32, usize),
}

impl<const MAX: usize> Text<MAX> {
    /// Checks `s` against the rules of this text.
    pub fn parse(s: impl Into<String>) -> Result<Self, TextError> {
        let s = s.into();
        check(&s, MAX)?;
        Ok(Text(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Checks one line of at most `max` characters, without control characters.
pub fn check(s: &str, max: usize) -> Result<(), TextError> {
    if s.is_empty() {
        return Err(TextError::Empty);
    }
    let mut len = 0;
    for (i, c) in s.chars().enumerate() {
        if c.is_control() {
            return Err(TextError::Control(u32::from(c), i + 1));
        }
        len += 1;
    }
    if len > max {
        return Err(TextError::TooLong { len, max });
    }
    Ok(())
}

impl<const MAX: usize> Deref for Text<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Display for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de, const MAX: usize> serde::Deserialize<'de> for Text<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl<const MAX: usize> utoipa::PartialSchema for Text<MAX> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX))
            .pattern(Some(r"^[^\u0000-\u001F\u007F-\u009F]*$"))
            .description(Some("One line of text without control characters"))
            .into()
    }
}

/// One component per limit (`TextUpTo200`, ...): a memo, a reference and a name differ.
#[cfg(feature = "openapi")]
impl<const MAX: usize> utoipa::ToSchema for Text<MAX> {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Owned(format!("TextUpTo{MAX}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn accepts_one_line_of_any_script() {
        assert_eq!(Memo::parse("清掃ボランティア / clean-up").unwrap().as_str(), "清掃ボランティア / clean-up");
        assert!(Memo::parse("x".repeat(MEMO_MAX)).is_ok());
        assert!(Memo::parse("あ".repeat(MEMO_MAX)).is_ok());
    }

    #[test]
    fn refuses_control_characters_empty_and_long_texts() {
        assert_eq!(Memo::parse("a\u{0}b"), Err(TextError::Control(0, 2)));
        assert_eq!(Memo::parse("a\nb"), Err(TextError::Control(10, 2)));
        assert_eq!(Memo::parse("\u{7f}"), Err(TextError::Control(0x7f, 1)));
        assert_eq!(Memo::parse("x\u{85}"), Err(TextError::Control(0x85, 2)));
        assert_eq!(Memo::parse(""), Err(TextError::Empty));
        assert_eq!(
            Memo::parse("あ".repeat(MEMO_MAX + 1)),
            Err(TextError::TooLong { len: MEMO_MAX + 1, max: MEMO_MAX })
        );
    }

    #[test]
    fn deserialising_checks_the_same_rules() {
        assert!(serde_json::from_str::<Memo>(r#""野菜""#).is_ok());
        let e = serde_json::from_str::<Memo>(r#""a\u0000b""#).unwrap_err().to_string();
        assert!(e.contains("U+0000"), "{e}");
        assert!(serde_json::from_str::<Memo>(&format!("\"{}\"", "x".repeat(MEMO_MAX + 1))).is_err());
    }
}
