//! `mykey-server`: the points cloud's command line (`cli/`, one file per subcommand).

mod cli;

#[cfg(feature = "bench-without-log")]
compile_error!("bench-without-log is for `mykey-bench` only: a server without its log could not be audited");

/// mimalloc: the ledger allocates and frees many small rows per payment; glibc's `malloc`
/// and `free` were a fifth of the payment benchmark's samples (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::run().await
}
