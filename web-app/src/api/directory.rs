//! Point-navi's shared data: the municipalities taking part and the directory, each loaded
//! once per page, as the core's API types.

use std::collections::BTreeMap;

use mykey_core::api::{Directory, Municipality};
use yew::prelude::*;

use super::{get, Failure};

/// Loads the municipalities once.
#[hook]
pub fn use_municipalities() -> UseStateHandle<Option<Result<Vec<Municipality>, Failure>>> {
    let list = use_state(|| None);
    {
        let list = list.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                list.set(Some(get::<Vec<Municipality>>("/v1/municipalities").await));
            });
        });
    }
    list
}

/// Loads the directory once.
#[hook]
pub fn use_directory() -> UseStateHandle<Option<Result<Directory, Failure>>> {
    let dir = use_state(|| None);
    {
        let dir = dir.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                dir.set(Some(get::<Directory>("/v1/directory").await));
            });
        });
    }
    dir
}

/// Groups by prefecture, in JIS order.
pub fn by_prefecture(list: &[Municipality]) -> BTreeMap<(String, String), Vec<Municipality>> {
    let mut m: BTreeMap<(String, String), Vec<Municipality>> = BTreeMap::new();
    for x in list {
        m.entry((x.prefecture_code.clone(), x.prefecture.clone())).or_default().push(x.clone());
    }
    m
}
