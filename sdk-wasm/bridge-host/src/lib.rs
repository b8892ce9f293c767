//! The native-messaging host: reads requests from the browser extension on stdin, runs them
//! against the My Number Card through PC/SC, and answers on stdout. It has no PIN dialogue of
//! its own (the page asks; the host only passes the PIN to the card) and signs only the login
//! digest for the origin the extension took from the browser.

pub mod messaging;
pub mod pcsc_card;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::card::bridge::{
    origin_allowed, Answer, Command, ErrorCode, Failure, Outcome, Request, Response, Tries,
};
use mykey_core::card::jpki::{self, Pin, PinStatus};
use mykey_core::identity::AuthToken;

/// Where the card commands go: PC/SC in the host, anything in tests.
pub trait Cards {
    /// The card stack's transport.
    type Card: mykey_core::card::Transport;
    /// The readers and whether each holds a card.
    fn readers(&self) -> Result<Vec<mykey_core::card::bridge::Reader>, Failure>;
    /// Connects to the card in `reader`, or in the first reader with a card.
    fn connect(&self, reader: Option<&str>) -> Result<Self::Card, Failure>;
}

fn failure(code: ErrorCode, message: &str) -> Failure {
    Failure { code, message: message.to_owned(), tries_left: None }
}

/// Answers one request.
pub fn handle<C: Cards>(cards: &C, request: &Request) -> Response {
    let result = match run(cards, request) {
        Ok(answer) => Outcome::Ok(answer),
        Err(f) => Outcome::Error(f),
    };
    Response { id: request.id, result }
}

fn run<C: Cards>(cards: &C, request: &Request) -> Result<Answer, Failure> {
    if !origin_allowed(&request.origin) {
        return Err(failure(ErrorCode::BadOrigin, "the card signs only for https sites (or http on this computer)"));
    }
    let jpki_err = |e: jpki::JpkiError| Failure::from(&e);
    match &request.command {
        Command::ListReaders => Ok(Answer::Readers(cards.readers()?)),
        Command::ReadCertificate { reader } => {
            let mut card = cards.connect(reader.as_deref())?;
            let cert = pollster::block_on(jpki::read_auth_certificate(&mut card)).map_err(jpki_err)?;
            Ok(Answer::Certificate(B64.encode(cert)))
        }
        Command::PinTriesLeft { reader } => {
            let mut card = cards.connect(reader.as_deref())?;
            let tries = match pollster::block_on(jpki::pin_tries_left(&mut card)).map_err(jpki_err)? {
                PinStatus::TriesLeft(left) => Tries::Left { left },
                PinStatus::Blocked => Tries::Blocked,
                PinStatus::Verified => Tries::Verified,
            };
            Ok(Answer::Tries(tries))
        }
        Command::Authenticate { reader, nonce, pin, context } => {
            let pin = Pin::parse(pin).map_err(jpki_err)?;
            if nonce.is_empty() || nonce.len() > 256 {
                return Err(failure(ErrorCode::BadRequest, "the nonce must be the server's, as issued"));
            }
            let mut card = cards.connect(reader.as_deref())?;
            let cert = pollster::block_on(jpki::read_auth_certificate(&mut card)).map_err(jpki_err)?;
            // The origin from the browser, in the context the page named.
            let signed_origin = context.signed_origin(&request.origin);
            let sig =
                pollster::block_on(jpki::authenticate(&mut card, &signed_origin, nonce, &pin)).map_err(jpki_err)?;
            Ok(Answer::Token(AuthToken::rs256(&cert, &sig)))
        }
    }
}
