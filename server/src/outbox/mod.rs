//! What leaves the server later, from a durable outbox: e-mail notices and stores' webhooks.

pub mod address;
pub mod mail;
pub mod webhooks;
