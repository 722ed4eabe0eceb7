//! The worker's doorbell: a Unix datagram socket next to the database (`<db>.worker.sock`).
//!
//! A client that commits a row the worker must act on (a new operation, an answer, a command) rings the bell so
//! the worker wakes at once instead of at its next poll. Ringing is best effort and never blocks: the datagram
//! carries no data that matters, a full or missing socket just means the worker finds the row on its next
//! SQLite poll (a short fallback interval), so a lost ring costs latency, never work.

use std::path::{Path, PathBuf};

/// Longest socket path Linux accepts (`sun_path` is 108 bytes including the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The doorbell socket of the database at `db`, or `None` when the path is too long for a Unix socket (the
/// worker then relies on polling alone).
pub fn socket_path(db: &Path) -> Option<PathBuf> {
    let path = crate::store::liveness::sibling(db, "worker.sock");
    (path.as_os_str().len() <= MAX_SOCKET_PATH).then_some(path)
}

/// Rings the doorbell of the worker serving `db`, if one listens.
pub fn ring(db: &Path) {
    let Some(path) = socket_path(db) else {
        return;
    };
    if let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = socket.set_nonblocking(true);
        let _ = socket.send_to(b"!", &path);
    }
}

/// The listening side, owned by the worker.
#[derive(Debug)]
pub struct Doorbell {
    socket: tokio::net::UnixDatagram,
    path: PathBuf,
}

impl Doorbell {
    /// Binds the doorbell of `db`. Only the holder of the worker lock calls this, so a socket file already there
    /// is a dead worker's and is replaced.
    pub fn bind(db: &Path) -> std::io::Result<Option<Doorbell>> {
        let Some(path) = socket_path(db) else {
            return Ok(None);
        };
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let socket = tokio::net::UnixDatagram::bind(&path)?;
        Ok(Some(Doorbell { socket, path }))
    }

    /// Waits for the next ring (several rings in a burst count as one).
    pub async fn rung(&self) {
        let mut buf = [0u8; 64];
        if self.socket.recv(&mut buf).await.is_err() {
            // A broken socket must not turn the caller's loop into a busy loop.
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        while self.socket.try_recv(&mut buf).is_ok() {}
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ring_wakes_the_listener() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("state.sqlite3");
        let bell = Doorbell::bind(&db).expect("bind").expect("short path");
        ring(&db);
        ring(&db);
        tokio::time::timeout(std::time::Duration::from_secs(2), bell.rung())
            .await
            .expect("woken");
        drop(bell);
        // Nobody listens: ringing is a no-op, not an error.
        ring(&db);
    }
}
