//! Domain services over the engine and the store, without HTTP: MyKey IDs and card login
//! (`identity`, with service links and facilities), coupon codes, point-navi's catalog, the
//! embedding that stores' and partners' widgets share, store checkout, partners' link sessions,
//! paying at a shop's counter with the resident's card, and what a resident can spend where.

pub mod catalog;
pub mod checkout;
pub mod close;
pub mod counter;
pub mod coupon_sheet;
pub mod coupons;
pub mod embedding;
pub mod grants;
pub mod identity;
pub mod links;
pub mod mandates;
pub mod usable;
pub mod vouchers;
