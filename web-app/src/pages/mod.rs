//! One component per page.

pub mod create;
pub mod mypage;
pub mod receipt;
pub mod search;
pub mod terminal;
pub mod top;
