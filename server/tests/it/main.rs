//! The server's integration tests in one binary (one link step): the API over real HTTP, the
//! journal, the log, witnesses, mirrors, restore and the audit, on SQLite or on PostgreSQL
//! when `MYKEY_TEST_POSTGRES_URL` is set.

mod audit;
mod catalog;
mod checkout;
mod common;
mod counter;
mod coupons;
mod devices;
mod disk;
mod http;
mod identity;
mod journal;
mod log;
mod mandates;
mod migrations;
mod mirror;
mod parsers;
mod partners;
mod replay;
mod restore;
mod settlements;
mod tls;
mod witness;
