//! Demo only: virtual cards for the "try without a card" path. A page asks for a card
//! (`POST /demo/cards`), then sends it APDUs one by one (`POST /demo/cards/{card}/apdu`), so
//! the SDK runs the real card protocol against it. The cards come from the demo CA, which only
//! a demo server trusts. Without a demo CA these routes answer 404.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::{Problem, ProblemKind};
use mykey_virtual_card::{DemoCa, VirtualCard};
use rand::RngCore;

use crate::http::error::ApiError;
use crate::http::extract::JsonBody;

/// Virtual cards kept at once; the oldest goes first.
pub const MAX_CARDS: usize = 1000;
/// The PIN of every demo card (shown on the demo page).
pub const DEMO_PIN: &str = "1234";

/// The demo CA and the cards it issued to pages.
pub struct DemoCards {
    ca: std::sync::Arc<DemoCa>,
    cards: Mutex<(HashMap<String, VirtualCard>, VecDeque<String>)>,
}

impl DemoCards {
    /// Cards from `ca`.
    pub fn new(ca: DemoCa) -> Self {
        DemoCards { ca: std::sync::Arc::new(ca), cards: Mutex::new((HashMap::new(), VecDeque::new())) }
    }
}

/// The demo routes, on a demo server only (elsewhere they are unknown routes).
pub fn routes<S: Clone + Send + Sync + 'static>(ca: Option<DemoCa>) -> Router<S> {
    match ca {
        Some(ca) => Router::new()
            .route("/demo/cards", post(issue))
            .route("/demo/cards/{card}/apdu", post(apdu))
            .layer(Extension(Arc::new(DemoCards::new(ca)))),
        None => Router::new(),
    }
}

#[derive(serde::Serialize)]
struct Issued {
    card: String,
    pin: &'static str,
    demo: bool,
}

async fn issue(Extension(demo): Extension<Arc<DemoCards>>) -> Result<(StatusCode, Json<Issued>), ApiError> {
    let ca = demo.ca.clone();
    // RSA key generation takes a while: off the async threads.
    let card = tokio::task::spawn_blocking(move || {
        VirtualCard::issue(&ca, &mut rand::rngs::OsRng, DEMO_PIN, std::time::SystemTime::now())
    })
    .await
    .map_err(anyhow::Error::from)??;
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let id = hex::encode(id);
    let mut guard = demo.cards.lock().expect("not poisoned");
    let (map, order) = &mut *guard;
    if map.len() >= MAX_CARDS {
        if let Some(old) = order.pop_front() {
            map.remove(&old);
        }
    }
    map.insert(id.clone(), card);
    order.push_back(id.clone());
    Ok((StatusCode::CREATED, Json(Issued { card: id, pin: DEMO_PIN, demo: true })))
}

#[derive(serde::Deserialize)]
struct Apdu {
    apdu: String,
}

#[derive(serde::Serialize)]
struct Answer {
    response: String,
}

async fn apdu(
    Extension(demo): Extension<Arc<DemoCards>>,
    Path(card): Path<String>,
    JsonBody(r): JsonBody<Apdu>,
) -> Result<Json<Answer>, ApiError> {
    let command = B64
        .decode(r.apdu)
        .ok()
        .filter(|c| c.len() <= 261)
        .ok_or_else(|| ApiError(Problem::new(ProblemKind::InvalidRequest, "apdu must be a base64 short APDU")))?;
    let mut guard = demo.cards.lock().expect("not poisoned");
    let c = guard.0.get_mut(&card).ok_or_else(|| {
        ApiError(Problem::new(ProblemKind::NotFound, "no such virtual card (it may have been replaced)"))
    })?;
    Ok(Json(Answer { response: B64.encode(c.handle(&command)) }))
}
