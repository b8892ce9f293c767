//! Talking to the server: JSON in and out, problems turned into something a form can show.

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub mod directory;

/// A refusal or failure, as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The problem slug (`mykey-id-taken`, ...), or `network` / `server`.
    pub slug: String,
    /// The server's detail (English, for developers; pages show their own text by slug).
    pub detail: String,
    /// The form field it concerns, if any.
    pub field: Option<String>,
    /// The whole problem body.
    pub body: Value,
}

impl Failure {
    /// The request did not get an answer (or not one this page can read).
    pub fn network(e: impl std::fmt::Display) -> Failure {
        Failure { slug: "network".into(), detail: e.to_string(), field: None, body: Value::Null }
    }
}

/// An answer: its body, or the problem it carries.
pub async fn read<T: DeserializeOwned>(res: Response) -> Result<T, Failure> {
    let status = res.status();
    let body: Value = if status == 204 { Value::Null } else { res.json().await.map_err(Failure::network)? };
    if status >= 400 {
        let slug = body["type"].as_str().and_then(|t| t.strip_prefix("urn:mykey:problem:")).unwrap_or("server");
        return Err(Failure {
            slug: slug.to_owned(),
            detail: body["detail"].as_str().unwrap_or_default().to_owned(),
            field: body["field"].as_str().map(str::to_owned),
            body,
        });
    }
    serde_json::from_value(body).map_err(Failure::network)
}

/// `GET path`.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, Failure> {
    read(Request::get(path).send().await.map_err(Failure::network)?).await
}

/// `POST path` with a JSON body.
pub async fn post<T: DeserializeOwned>(path: &str, body: &(impl Serialize + ?Sized)) -> Result<T, Failure> {
    send(Request::post(path), body).await
}

/// `PUT path` with a JSON body.
pub async fn put<T: DeserializeOwned>(path: &str, body: &(impl Serialize + ?Sized)) -> Result<T, Failure> {
    send(Request::put(path), body).await
}

async fn send<T: DeserializeOwned>(
    req: gloo_net::http::RequestBuilder,
    body: &(impl Serialize + ?Sized),
) -> Result<T, Failure> {
    let req = req.json(body).map_err(Failure::network)?;
    read(req.send().await.map_err(Failure::network)?).await
}
