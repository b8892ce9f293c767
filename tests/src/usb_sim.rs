//! A simulated Sony PaSoRi at the end of HTTP, for the stand-in `navigator.usb` of the
//! browser tests (`tests/web/usb-stand-in.js`): `POST /out` with a base64 bulk OUT transfer,
//! `POST /in` for the next bulk IN transfer (204 while there is none). The reader is the
//! shared core's simulator with a virtual My Number Card in its field.

use std::sync::mpsc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::card::sim::{SimRcs300, SimRcs380};
use mykey_core::card::UsbBulk;
use mykey_virtual_card::VirtualCard;
use tokio::sync::oneshot;

/// Which reader to simulate.
#[derive(Clone, Copy, Debug)]
pub enum Model {
    /// RC-S380 (Port-100).
    Rcs380,
    /// RC-S300 (escape messages).
    Rcs300,
}

enum Op {
    Out(Vec<u8>, oneshot::Sender<()>),
    In(oneshot::Sender<Option<Vec<u8>>>),
}

/// A running simulated reader: its base URL.
pub struct UsbSim {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _runtime: std::thread::JoinHandle<()>,
}

async fn out(State(tx): State<mpsc::Sender<Op>>, body: String) -> impl IntoResponse {
    let (done, wait) = oneshot::channel();
    let data = B64.decode(body.trim()).unwrap_or_default();
    let _ = tx.send(Op::Out(data, done));
    let _ = wait.await;
    (StatusCode::OK, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")])
}

async fn input(State(tx): State<mpsc::Sender<Op>>) -> impl IntoResponse {
    let (reply, wait) = oneshot::channel();
    let _ = tx.send(Op::In(reply));
    match wait.await.ok().flatten() {
        Some(data) => (StatusCode::OK, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], B64.encode(data)),
        None => (StatusCode::NO_CONTENT, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], String::new()),
    }
}

/// Starts a simulated `model` with `card` in its field.
pub fn start(model: Model, mut card: VirtualCard) -> anyhow::Result<UsbSim> {
    let (tx, rx) = mpsc::channel::<Op>();
    // The simulator is single-threaded (Rc inside): it lives on its own thread.
    std::thread::spawn(move || {
        let handler = Box::new(move |apdu: &[u8]| card.handle(apdu));
        enum Reader {
            A(SimRcs380),
            B(SimRcs300),
        }
        let mut reader = match model {
            Model::Rcs380 => Reader::A(SimRcs380::with_handler(handler)),
            Model::Rcs300 => Reader::B(SimRcs300::with_handler(handler)),
        };
        while let Ok(op) = rx.recv() {
            match op {
                Op::Out(data, done) => {
                    let _ = match &mut reader {
                        Reader::A(r) => pollster::block_on(r.write(&data)),
                        Reader::B(r) => pollster::block_on(r.write(&data)),
                    };
                    let _ = done.send(());
                }
                Op::In(reply) => {
                    let data = match &mut reader {
                        Reader::A(r) => pollster::block_on(r.read(0)),
                        Reader::B(r) => pollster::block_on(r.read(0)),
                    };
                    let _ = reply.send(data.ok());
                }
            }
        }
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().route("/out", post(out)).route("/in", post(input)).with_state(tx);
    let runtime = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
            let _ = axum::serve(listener, app).await;
        });
    });
    Ok(UsbSim { base, _runtime: runtime })
}
