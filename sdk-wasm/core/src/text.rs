//! Free text from outside (memos, references, names): one line of at most `MAX` characters
//! with no control characters, checked when a request is parsed. Every table, log leaf, mail
//! and entry bundle can then hold whatever was acknowledged: PostgreSQL refuses NUL in text,
//! and an unbounded text would outgrow a leaf. Nor may a text break the line it is shown on or
//! turn the direction of what follows it (Unicode's line and paragraph separators, bidi
//! embeddings, overrides and isolates): a store's memo in a resident's history or mail must
//! not make the lines around it read otherwise.

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

/// One line of text: 1 to `MAX` characters, none of them a control character (C0, DEL, C1),
/// a line or paragraph separator or a bidi control.
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
    /// A line or paragraph separator (U+2028, U+2029) or a bidi control (U+202A to U+202E,
    /// U+2066 to U+2069): it would change how the text around it reads.
    #[error("the text holds the line or direction control U+{0:04X} at character {1}")]
    Layout(u32, usize),
}

/// Whether `c` breaks a line or turns the text's direction.
fn is_layout_control(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether a text may hold `c` (for cleaning a text stored under older, looser rules).
pub fn allowed(c: char) -> bool {
    !c.is_control() && !is_layout_control(c)
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
        if is_layout_control(c) {
            return Err(TextError::Layout(u32::from(c), i + 1));
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
            .pattern(Some(r"^[^\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069]*$"))
            .description(Some("One line of text without control characters, line separators or bidi controls"))
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
        assert_eq!(Memo::parse("定期便\u{2028}取引ID"), Err(TextError::Layout(0x2028, 4)));
        assert_eq!(Memo::parse("a\u{202E}gnp.exe"), Err(TextError::Layout(0x202E, 2)));
        assert_eq!(Memo::parse("\u{2067}x"), Err(TextError::Layout(0x2067, 1)));
        // Joiners stay: emoji sequences use them.
        assert!(Memo::parse("👨\u{200D}👩\u{200D}👧").is_ok());
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
