//! The card through PC/SC (pcscd on Linux): any reader, contact or contactless.

use mykey_core::card::bridge::{ErrorCode, Failure, Reader};
use mykey_core::card::{Transport, TransportError};

/// A PC/SC context.
pub struct Pcsc {
    ctx: pcsc::Context,
}

/// A connected card; reset when dropped, so a verified PIN does not outlive the command.
pub struct PcscCard {
    card: Option<pcsc::Card>,
}

impl Drop for PcscCard {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(pcsc::Disposition::ResetCard);
        }
    }
}

fn no_reader(e: pcsc::Error) -> Failure {
    Failure {
        code: ErrorCode::NoReader,
        message: format!("no card reader is available ({e}); connect one and make sure pcscd runs"),
        tries_left: None,
    }
}

impl Pcsc {
    /// Connects to the PC/SC service.
    pub fn establish() -> Result<Pcsc, Failure> {
        Ok(Pcsc { ctx: pcsc::Context::establish(pcsc::Scope::User).map_err(no_reader)? })
    }
}

impl crate::Cards for Pcsc {
    type Card = PcscCard;

    fn readers(&self) -> Result<Vec<Reader>, Failure> {
        let names = match self.ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => return Ok(vec![]),
            Err(e) => return Err(no_reader(e)),
        };
        let mut states: Vec<pcsc::ReaderState> =
            names.iter().map(|n| pcsc::ReaderState::new(n.as_c_str(), pcsc::State::UNAWARE)).collect();
        self.ctx.get_status_change(std::time::Duration::ZERO, &mut states).map_err(no_reader)?;
        Ok(states
            .iter()
            .map(|s| Reader {
                name: s.name().to_string_lossy().into_owned(),
                card: s.event_state().contains(pcsc::State::PRESENT),
            })
            .collect())
    }

    fn connect(&self, reader: Option<&str>) -> Result<PcscCard, Failure> {
        let names = match self.ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => vec![],
            Err(e) => return Err(no_reader(e)),
        };
        if names.is_empty() {
            return Err(Failure {
                code: ErrorCode::NoReader,
                message: "no card reader is connected".into(),
                tries_left: None,
            });
        }
        for name in &names {
            if reader.is_some_and(|r| name.to_string_lossy() != r) {
                continue;
            }
            match self.ctx.connect(name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
                Ok(card) => return Ok(PcscCard { card: Some(card) }),
                Err(pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard | pcsc::Error::UnpoweredCard) => continue,
                Err(e) => {
                    return Err(Failure {
                        code: ErrorCode::Reader,
                        message: format!("the reader failed: {e}"),
                        tries_left: None,
                    })
                }
            }
        }
        Err(Failure {
            code: ErrorCode::NoCard,
            message: "no card found: put the My Number Card in or on the reader".into(),
            tries_left: None,
        })
    }
}

impl Transport for PcscCard {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let card = self.card.as_ref().ok_or(TransportError::CardRemoved)?;
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
        match card.transmit(command, &mut buf) {
            Ok(r) => Ok(r.to_vec()),
            Err(pcsc::Error::RemovedCard | pcsc::Error::ResetCard | pcsc::Error::NoSmartcard) => {
                Err(TransportError::CardRemoved)
            }
            Err(e) => Err(TransportError::Reader(e.to_string())),
        }
    }
}
