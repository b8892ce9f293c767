//! `mykey-virtual-card`: connects a virtual My Number Card (a card file from
//! `mykey-server virtual-card`) to pcscd through vsmartcard's vpcd, so that PC/SC clients
//! (the native bridge host, OpenSC) see it in a reader. Demo and tests only.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mykey_virtual_card::card::{CardFile, VirtualCard};

#[derive(Parser)]
#[command(
    name = "mykey-virtual-card",
    version,
    about = "A virtual My Number Card in a vpcd reader (demo and tests only)"
)]
struct Cli {
    /// The card file (its PIN counter is saved back to it).
    #[arg(long)]
    card: PathBuf,
    /// The vpcd reader's address.
    #[arg(long, default_value = "127.0.0.1:35963")]
    vpcd: String,
    /// Connect again after pcscd closes the connection.
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let read = || -> anyhow::Result<VirtualCard> {
        let text = std::fs::read_to_string(&cli.card).with_context(|| format!("reading {}", cli.card.display()))?;
        VirtualCard::from_file(&serde_json::from_str::<CardFile>(&text)?)
    };
    let mut card = read()?;
    let save = |card: &VirtualCard| {
        let written = card
            .to_file()
            .and_then(|f| Ok(serde_json::to_string_pretty(&f)?))
            .and_then(|t| Ok(std::fs::write(&cli.card, t)?));
        if let Err(e) = written {
            eprintln!("mykey-virtual-card: could not save the PIN counter: {e:#}");
        }
    };
    loop {
        mykey_virtual_card::vpcd::serve(&mut card, &cli.vpcd, save)?;
        if !cli.keep {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
