//! Parts several pages use.

pub mod card;
