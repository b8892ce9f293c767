//! A virtual My Number Card and the demo CA that issues it, for the demo's "try without a
//! card" path and for tests. Nothing here is ever trusted outside demo mode: a server accepts
//! the demo CA only when it runs the demo.

pub mod ca;
pub mod card;
pub mod vpcd;

pub use ca::DemoCa;
pub use card::VirtualCard;

#[cfg(test)]
mod tests;
