//! The `dvt-cds` binary: parses the command line and hands over to the library.
/// mimalloc: many small allocations per call (the JSON trees); see BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dvt_cds::cli::run()
}
