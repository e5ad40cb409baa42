/// The allocator of the binary (and of the in-process benchmarks, which measure what the
/// binary does): Rhai, serde and the event log allocate many small objects, and mimalloc
/// serves them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    spectacular::cli::main()
}
