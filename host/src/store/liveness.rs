//! Proof of life through OS file locks next to the database.
//!
//! A process that owns leases holds an exclusive `flock` on its own lock file (`<db>.owners/<owner>.lock`) for
//! as long as it lives; the background worker also holds `<db>.worker.lock`, which makes it the only dispatching
//! worker of the database. The kernel releases a lock when its process dies, however it dies, so "can I take this
//! lock?" answers "is that owner dead?" without guessing from pids, hostnames or boot ids (which containers that
//! share a hostname and a pid namespace layout get wrong). Lock files are tiny and never deleted while a holder
//! may exist; the note inside a worker lock (pid, owner id, state) is informative, the lock itself is the truth.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The worker lock of the database at `db`: held by the one dispatching worker.
pub fn worker_lock_path(db: &Path) -> PathBuf {
    sibling(db, "worker.lock")
}

/// The file the auto-start path serialises on, so racing clients spawn one worker, not several.
pub fn spawn_lock_path(db: &Path) -> PathBuf {
    sibling(db, "worker.spawn.lock")
}

/// The lock file that proves `owner` alive.
pub fn owner_lock_path(db: &Path, owner: &str) -> PathBuf {
    let safe: String = owner
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    sibling(db, "owners").join(format!("{safe}.lock"))
}

/// `<db file name>.<suffix>` in the database's directory.
pub fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state.sqlite3".to_string());
    db.with_file_name(format!("{name}.{suffix}"))
}

/// An exclusive lock this process holds until the value is dropped.
#[derive(Debug)]
pub struct HeldLock {
    file: File,
    path: PathBuf,
}

impl HeldLock {
    /// Takes the exclusive lock on `path` (creating the file and its directory) if nobody holds it.
    pub fn try_acquire(path: &Path) -> std::io::Result<Option<HeldLock>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {
                // The previous holder's note must not speak for the new holder.
                file.set_len(0)?;
                Ok(Some(HeldLock {
                    file,
                    path: path.to_path_buf(),
                }))
            }
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(err)) => Err(err),
        }
    }

    /// Takes the lock, retrying for up to `patience` while someone else holds it (a probe holds a lock for
    /// microseconds; a real holder for its whole life).
    pub fn acquire_within(
        path: &Path,
        patience: std::time::Duration,
    ) -> std::io::Result<Option<HeldLock>> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            if let Some(lock) = HeldLock::try_acquire(path)? {
                return Ok(Some(lock));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Replaces the note inside the lock file (who holds it, in what state).
    pub fn write_note(&mut self, note: &str) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(note.as_bytes())?;
        self.file.flush()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What a probe of a lock file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// A live process holds the lock.
    Held,
    /// The file exists and nobody holds it: its last holder is gone.
    Free,
    /// There is no such lock file.
    Missing,
}

/// Whether some process holds the lock on `path`. Probes with a shared lock, released at once.
pub fn probe(path: &Path) -> LockState {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(_) => return LockState::Missing,
    };
    match file.try_lock_shared() {
        Ok(()) => LockState::Free,
        Err(TryLockError::WouldBlock) => LockState::Held,
        // A file system without locks proves nothing either way.
        Err(TryLockError::Error(_)) => LockState::Missing,
    }
}

/// The note the holder wrote into the lock file (empty when none).
pub fn read_note(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_held_and_free_once_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("state.sqlite3");
        let path = owner_lock_path(&db, "mcp:1:abc");
        assert_eq!(probe(&path), LockState::Missing);
        let mut held = HeldLock::try_acquire(&path).expect("io").expect("free");
        held.write_note("pid=1").expect("note");
        assert_eq!(probe(&path), LockState::Held);
        assert_eq!(read_note(&path), "pid=1");
        assert!(HeldLock::try_acquire(&path).expect("io").is_none());
        drop(held);
        assert_eq!(probe(&path), LockState::Free);
        assert!(HeldLock::try_acquire(&path).expect("io").is_some());
    }

    #[test]
    fn paths_sit_next_to_the_database() {
        let db = Path::new("/var/lib/x/state.sqlite3");
        assert_eq!(
            worker_lock_path(db),
            Path::new("/var/lib/x/state.sqlite3.worker.lock")
        );
        assert_eq!(
            owner_lock_path(db, "mcp:12:ab/c"),
            Path::new("/var/lib/x/state.sqlite3.owners/mcp_12_ab_c.lock")
        );
    }
}
