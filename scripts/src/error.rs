//! The one error type of xtask: a message for the person at the terminal.

use std::fmt;

/// Something went wrong; the message says what and, where possible, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// xtask's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds a description of what was being done to any displayable error.
pub trait Context<T> {
    /// On error, prefix the error with `what()`, as in "what: cause".
    fn context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::new(format!("{}: {e}", what().into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_prefixes_the_cause() {
        let failed: std::result::Result<(), &str> = Err("disk full");
        let error = failed.context(|| "cannot write x").unwrap_err();
        assert_eq!(error.to_string(), "cannot write x: disk full");
    }
}
