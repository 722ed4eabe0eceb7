//! The bearer token of the HTTP transport: the configured one (`http.token`), else a random one generated on the
//! first start into `<db>.http-token` (mode 0600) and read back on every later start.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::{Config, MIN_HTTP_TOKEN_CHARS};

use super::HttpError;

/// Random bytes in a generated token: 256 bits, hex-encoded to 64 characters.
const GENERATED_TOKEN_BYTES: usize = 32;

/// Where the token in use came from, for the start-up message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `http.token` or `CODEX_CONTROL_PLANE_MCP_HTTP_TOKEN`.
    Config,
    /// The token file next to the database, created now (`true`) or by an earlier start (`false`).
    File {
        /// The file's path.
        path: PathBuf,
        /// True when this start generated it.
        created: bool,
    },
}

/// The token file of a database: `<db>.http-token`.
pub fn token_path(db: &Path) -> PathBuf {
    crate::store::liveness::sibling(db, "http-token")
}

/// The token requests must carry, and where it came from.
pub fn resolve(config: &Config) -> Result<(String, TokenSource), HttpError> {
    if let Some(secret) = &config.http.token {
        return Ok((secret.expose().to_string(), TokenSource::Config));
    }
    let path = token_path(&config.state_db_path);
    load_or_create(&path)
}

/// Reads the token file, creating it first when there is none. Two servers starting at once agree on one token:
/// the file is written under a temporary name and linked into place, which fails when the other won.
fn load_or_create(path: &Path) -> Result<(String, TokenSource), HttpError> {
    let token_file = |source| HttpError::TokenFile {
        path: path.to_path_buf(),
        source,
    };
    if let Some(token) = read_existing(path)? {
        return Ok((
            token,
            TokenSource::File {
                path: path.to_path_buf(),
                created: false,
            },
        ));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(token_file)?;
    }
    let mut bytes = [0u8; GENERATED_TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|err| HttpError::Random(err.to_string()))?;
    let token = hex::encode(bytes);
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    // A leftover of a start that died between writing and linking would make `create_new` fail.
    let _ = std::fs::remove_file(&temporary);
    let written = write_private(&temporary, &token);
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    // The temporary name served its purpose either way; a leftover would only confuse a reader.
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok((
            token,
            TokenSource::File {
                path: path.to_path_buf(),
                created: true,
            },
        )),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => match read_existing(path)? {
            Some(token) => Ok((
                token,
                TokenSource::File {
                    path: path.to_path_buf(),
                    created: false,
                },
            )),
            None => Err(token_file(err)),
        },
        Err(err) => Err(token_file(err)),
    }
}

/// Creates `path` readable by its owner only and writes `token` into it.
fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The token in an existing file; `None` when there is no file. A file others may read, or one that holds no
/// usable token, is an error rather than something to overwrite: the operator has to look at it.
fn read_existing(path: &Path) -> Result<Option<String>, HttpError> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(HttpError::TokenFile {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !metadata.is_file() {
        return Err(HttpError::BadTokenFile {
            path: path.to_path_buf(),
            problem: "is not a regular file".into(),
        });
    }
    if metadata.mode() & 0o077 != 0 {
        return Err(HttpError::BadTokenFile {
            path: path.to_path_buf(),
            problem: format!(
                "may be read by other users (mode {:o}); run chmod 600 on it",
                metadata.mode() & 0o777
            ),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| HttpError::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.len() < MIN_HTTP_TOKEN_CHARS || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HttpError::BadTokenFile {
            path: path.to_path_buf(),
            problem: format!(
                "does not hold a token of at least {MIN_HTTP_TOKEN_CHARS} visible characters; delete it to get a new one"
            ),
        });
    }
    Ok(Some(token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ccp-http-token-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn a_generated_token_is_private_and_reused() {
        let dir = temp_dir();
        let path = dir.join("state").join("db.sqlite3.http-token");
        let (first, source) = load_or_create(&path).expect("created");
        assert_eq!(first.len(), 2 * GENERATED_TOKEN_BYTES);
        assert!(matches!(source, TokenSource::File { created: true, .. }));
        let mode = std::fs::metadata(&path).expect("metadata").mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, source) = load_or_create(&path).expect("read back");
        assert_eq!(first, second);
        assert!(matches!(source, TokenSource::File { created: false, .. }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_readable_or_empty_token_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir();
        let path = dir.join("token");
        std::fs::write(&path, "a".repeat(64)).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_or_create(&path).expect_err("world-readable");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, "\n").expect("write");
        let err = load_or_create(&path).expect_err("empty");
        assert!(err.to_string().contains("delete it"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
