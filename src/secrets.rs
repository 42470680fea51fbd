//! Bearer tokens: where they come from, and how they are kept (hashed) and checked
//! (in constant time).

use crate::config::ConfigError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The SHA-256 of a token. The process keeps only this, never the token itself.
#[derive(Clone)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a token.
    pub fn of(token: &str) -> Self {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let other = TokenHash::of(presented);
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// Where a token came from, to tell the operator at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable.
    Env(&'static str),
    /// A file named in the config.
    File(PathBuf),
    /// Generated at first start and stored in the data dir.
    Generated(PathBuf),
    /// Generated earlier and read back from the data dir.
    Stored(PathBuf),
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env(v) => write!(f, "from the environment variable {v}"),
            TokenSource::File(p) => write!(f, "from the file {}", p.display()),
            TokenSource::Generated(p) => {
                write!(f, "generated and written to {} (mode 0600)", p.display())
            }
            TokenSource::Stored(p) => {
                write!(f, "read from {} (generated at first start)", p.display())
            }
        }
    }
}

fn read_token(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Secret(format!("cannot read token file {}: {e}", path.display()))
    })?;
    let token = text.trim().to_string();
    if token.len() < 16 {
        return Err(ConfigError::Secret(format!(
            "token in {} is shorter than 16 characters",
            path.display()
        )));
    }
    Ok(token)
}

/// Loads a token from `env`, else `file`, else (when `generate_in` is given) from a file
/// in the data dir, generating it on first start. `Ok(None)` when there is none at all.
pub fn load_token(
    env: &'static str,
    file: Option<&Path>,
    generate_in: Option<&Path>,
) -> Result<Option<(TokenHash, TokenSource)>, ConfigError> {
    if let Ok(token) = std::env::var(env) {
        let token = token.trim().to_string();
        if token.len() < 16 {
            return Err(ConfigError::Secret(format!(
                "{env} is shorter than 16 characters"
            )));
        }
        return Ok(Some((TokenHash::of(&token), TokenSource::Env(env))));
    }
    if let Some(path) = file {
        let token = read_token(path)?;
        return Ok(Some((
            TokenHash::of(&token),
            TokenSource::File(path.to_path_buf()),
        )));
    }
    let Some(path) = generate_in else {
        return Ok(None);
    };
    if path.exists() {
        let token = read_token(path)?;
        return Ok(Some((
            TokenHash::of(&token),
            TokenSource::Stored(path.to_path_buf()),
        )));
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_secret(path, &token)?;
    Ok(Some((
        TokenHash::of(&token),
        TokenSource::Generated(path.to_path_buf()),
    )))
}

fn write_secret(path: &Path, token: &str) -> Result<(), ConfigError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ConfigError::Secret(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ConfigError::Secret(format!("cannot write {}: {e}", path.display())))?;
    writeln!(f, "{token}")
        .and_then(|_| f.sync_all())
        .map_err(|e| ConfigError::Secret(format!("cannot write {}: {e}", path.display())))
}

/// The admin token a command-line tool presents to a running service:
/// `SLOTPOOL_ADMIN_TOKEN`, else the contents of `file` (the service's token file).
pub fn admin_token_for_tools(file: &Path) -> std::io::Result<String> {
    match std::env::var("SLOTPOOL_ADMIN_TOKEN") {
        Ok(t) if !t.is_empty() => Ok(t),
        _ => std::fs::read_to_string(file).map(|t| t.trim().to_string()),
    }
}
