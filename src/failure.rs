//! `Failure`: why a command of the binary failed, and so its exit code. Every module
//! that runs a command returns it; `main` turns it into the exit code.

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// `verify` found damage (exit 1).
    #[error("{0}")]
    Damaged(String),
    /// The configuration is wrong (exit 3).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data directory cannot be used: missing, locked, or damaged (exit 4).
    #[error("{0}")]
    Data(String),
    /// The service failed while running (exit 5).
    #[error("{0}")]
    Runtime(String),
    /// A command-line value is wrong (exit 2, like clap's usage errors).
    #[error("{0}")]
    Input(String),
}

impl Failure {
    /// The process exit code of this failure (see each variant).
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Damaged(_) => 1,
            Failure::Config(_) => 3,
            Failure::Data(_) => 4,
            Failure::Runtime(_) => 5,
            Failure::Input(_) => 2,
        }
    }
}
