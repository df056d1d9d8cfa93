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
