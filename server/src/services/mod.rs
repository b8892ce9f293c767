//! Domain services over the engine and the store, without HTTP: MyKey IDs and card login
//! (`identity`, with service links and facilities), coupon codes, point-navi's catalog, store checkout.

pub mod catalog;
pub mod checkout;
pub mod coupons;
pub mod identity;
