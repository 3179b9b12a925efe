//! `switchyard-bench`: benchmarks on real local servers; see `bench/README.md`.
//!
//! `cargo run --release -p switchyard-bench -- ingress --rate 1000 --duration 30s`

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = switchyard_bench::Cli::parse();
    if let switchyard_bench::Command::ServeFloor(args) = &cli.command {
        // The do-nothing server runs on one thread, as the ingress does.
        return switchyard_bench::floor::serve(args);
    }
    if let switchyard_bench::Command::Isolation(args) = &cli.command {
        // One-thread runtimes of its own, as the binaries run.
        return switchyard_bench::isolation::run(args);
    }
    // Two workers: the generator needs little, and the machine's CPUs are for the
    // system under test.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(switchyard_bench::run(cli))
}
