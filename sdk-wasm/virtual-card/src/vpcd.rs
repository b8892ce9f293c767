//! The card side of vsmartcard's vpcd protocol: the virtual card connects to the vpcd
//! reader driver inside pcscd (TCP, port 35963 by default), which then shows it to every
//! PC/SC client as a card in a reader. Each message is a 2-byte big-endian length and its
//! bytes; a 1-byte message is a control: 0 power off, 1 power on, 2 reset, 4 ask for the ATR.

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::Context;

use crate::card::{VirtualCard, ATR};

const POWER_OFF: u8 = 0;
const POWER_ON: u8 = 1;
const RESET: u8 = 2;
const GET_ATR: u8 = 4;

fn write_frame(s: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(data.len()).map_err(|_| std::io::Error::other("a frame above 65535 bytes"))?;
    // One send for length and bytes.
    s.write_all(&[&len.to_be_bytes()[..], data].concat())?;
    s.flush()
}

/// Asks the kernel to acknowledge at once. vpcd writes each frame's length and bytes in two
/// sends, so its second send waits for our acknowledgement of the first; a delayed
/// acknowledgement (up to 40 ms on Linux) would then be paid on every APDU. The flag does not
/// stick, so it is set again after every read.
fn quick_ack(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

/// Serves `card` to the vpcd at `addr` until the connection closes. `changed` runs after
/// every command that changed the PIN counter, so the caller can save the card.
pub fn serve(card: &mut VirtualCard, addr: &str, mut changed: impl FnMut(&VirtualCard)) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(addr)
        .with_context(|| format!("connecting to vpcd at {addr} (is pcscd running with vsmartcard-vpcd?)"))?;
    s.set_nodelay(true)?;
    // Bounded by the connection: each turn reads one frame (at most 65535 bytes).
    loop {
        let mut len = [0u8; 2];
        match s.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e).context("reading from vpcd"),
        }
        quick_ack(&s);
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut msg).context("reading from vpcd")?;
        quick_ack(&s);
        match msg.as_slice() {
            [POWER_OFF] | [POWER_ON] | [RESET] => card.reset(),
            [GET_ATR] => write_frame(&mut s, &ATR)?,
            [other] => anyhow::bail!("vpcd sent an unknown control byte {other:#04x}"),
            apdu => {
                let before = card.tries_left();
                let answer = card.handle(apdu);
                write_frame(&mut s, &answer)?;
                if card.tries_left() != before {
                    changed(card);
                }
            }
        }
    }
}
