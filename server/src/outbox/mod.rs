//! What leaves the server later, from a durable outbox: e-mail notices.

pub mod mail;
