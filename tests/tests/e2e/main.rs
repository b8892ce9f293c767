//! The end-to-end tests in one binary: the real binaries over real HTTP, PC/SC with the
//! virtual card, and Chromium.

mod browser;
mod checkout;
mod crash;
mod demo;
mod docs_store;
mod mandates;
mod partners;
mod pcsc;
mod web_app;
