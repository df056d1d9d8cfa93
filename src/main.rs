//! The `dvt-cds` binary: parses the command line and hands over to the library.
fn main() -> std::process::ExitCode {
    dvt_cds::cli::run()
}
