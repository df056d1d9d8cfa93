//! The clinical knowledge as data (`mappings/`). STUB.

/// Loaded and compiled mappings.
#[derive(Debug, Default)]
pub struct Mappings;

impl Mappings {
    /// The mappings compiled into the binary.
    pub fn embedded() -> Result<Mappings, String> {
        Ok(Mappings)
    }
}

impl Mappings {
    /// Load a mapping set from a directory (`--mappings DIR`). The error names the file,
    /// the entry and what is wrong.
    pub fn load_dir(_dir: &std::path::Path) -> Result<Mappings, String> {
        Ok(Mappings)
    }
}

/// `dvt-cds mappings check [DIR]`: the report to print (each concept with its code count),
/// or the error naming file and entry.
pub fn check_command(_dir: Option<&std::path::Path>) -> Result<String, String> {
    Ok(String::new())
}
