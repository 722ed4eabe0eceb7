//! The WAL checkpointer: a thread with its own connection that copies committed pages back into the database
//! file, so commits never pay for it (`wal_autocheckpoint=0` on the writer), and that keeps the log from growing
//! without bound.
//!
//! A PASSIVE checkpoint never blocks a writer or a reader, but it cannot restart the log: the log starts over
//! only when a write begins with every frame already copied back, and while this process keeps writing, new
//! frames always arrive first. Measured before this module restarted it: one session submitting 3 000 operations
//! left a 223 MB log for a 7 MB database, every write extended the file (ext4 block allocation was a fifth of the
//! writer's time) and every read searched a longer WAL index. So once the log passes [`RESTART_FRAMES`], a round
//! also runs a RESTART checkpoint, which waits (briefly, [`RESTART_WAIT`]) for the writer and the readers of old
//! snapshots to finish so that the next write starts the log over; `journal_size_limit` then trims the file.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::{busy, StoreError};

/// How often the thread checkpoints after this process committed something.
pub(super) const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// Log frames past which a round also restarts the log: 64 MiB of 4 KiB pages. A restart holds writers off for a
/// moment, so it is kept rare: with 16 MiB, ten processes submitting at once saw their p99 go from 16 to 30 ms;
/// with 64 MiB (and a 10 ms wait) it is 21 ms.
pub(super) const RESTART_FRAMES: i64 = 16_384;
/// How long a RESTART checkpoint may wait for the writer lock and for readers: it holds writers off meanwhile,
/// so a busy moment is left to a later round rather than waited out (a read here lasts well under 1 ms).
const RESTART_WAIT: Duration = Duration::from_millis(10);
/// The size a log file is cut back to once it starts over (`journal_size_limit`, bytes).
pub(super) const WAL_SIZE_LIMIT_BYTES: i64 = 64 << 20;

/// Starts the thread on its own connection to `path`; it checkpoints every [`CHECKPOINT_INTERVAL`] after
/// `commits` moved (an idle process leaves the files alone; each process checkpoints what it wrote). Pages still
/// in use by a reader are copied on a later round, so a round that may have left pages behind is followed by one
/// more. Sending on (or dropping) the returned sender stops it after a last checkpoint.
pub(super) fn spawn(
    path: &Path,
    mut commits: tokio::sync::watch::Receiver<u64>,
) -> Result<(mpsc::Sender<()>, JoinHandle<()>), StoreError> {
    let mut conn = Connection::open(path)?;
    busy::install(&mut conn, None)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("store-checkpoint".to_string())
        .spawn(move || {
            let mut pending = false;
            loop {
                match stopped.recv_timeout(CHECKPOINT_INTERVAL) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        let committed = commits.has_changed().unwrap_or(false);
                        commits.mark_unchanged();
                        if !committed && !pending {
                            continue;
                        }
                        pending = match round(&conn) {
                            Ok(left_behind) => left_behind,
                            Err(error) => {
                                tracing::warn!(%error, "wal checkpoint failed");
                                true
                            }
                        };
                    }
                    // The store is gone: a last checkpoint keeps the WAL short for the next opener.
                    _ => {
                        let _ = checkpoint(&conn, "PASSIVE");
                        return;
                    }
                }
            }
        })
        .map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((stop, handle))
}

/// One round: a PASSIVE checkpoint, and a RESTART one when the log has grown past [`RESTART_FRAMES`]. Returns
/// whether frames may have been left behind (another round is due even without a new commit).
fn round(conn: &Connection) -> rusqlite::Result<bool> {
    let passive = checkpoint(conn, "PASSIVE")?;
    if passive.log <= RESTART_FRAMES {
        return Ok(passive.left_behind());
    }
    let restart = busy::with_limit(RESTART_WAIT, || checkpoint(conn, "RESTART"))?;
    if restart.busy {
        tracing::debug!(frames = restart.log, "the log restarts on a later round");
    }
    // A busy RESTART leaves the log long: try again next round.
    Ok(restart.busy || restart.left_behind())
}

/// What `PRAGMA wal_checkpoint` reports.
#[derive(Debug, Clone, Copy)]
struct Checkpoint {
    /// It could not finish (another connection held what it needed).
    busy: bool,
    /// Frames in the log.
    log: i64,
    /// Frames copied back into the database file.
    done: i64,
}

impl Checkpoint {
    fn left_behind(self) -> bool {
        self.done < self.log
    }
}

fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Checkpoint> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Checkpoint {
            busy: row.get::<_, i64>(0)? != 0,
            log: row.get(1)?,
            done: row.get(2)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::test_support::temp_store;

    /// Under a steady stream of commits (the case a PASSIVE checkpoint cannot restart), the log starts over
    /// instead of growing with everything ever written.
    #[test]
    fn the_log_starts_over_while_a_process_keeps_writing() {
        let (dir, store) = temp_store();
        let wal = dir.path().join("state.sqlite3-wal");
        store
            .write_blocking(|tx| {
                tx.execute_batch("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body BLOB)")?;
                Ok(())
            })
            .expect("scratch table");
        // 64 KiB per commit (16 frames), a commit a millisecond, for eight checkpoint rounds and at least four
        // times the frames that make a round restart the log.
        const BODY: u64 = 64 << 10;
        let mut written: u64 = 0;
        let mut largest: u64 = 0;
        let started = Instant::now();
        while started.elapsed() < CHECKPOINT_INTERVAL * 8
            || written < 4 * RESTART_FRAMES as u64 * 4096
        {
            store
                .write_blocking(|tx| {
                    tx.execute(
                        "INSERT OR REPLACE INTO scratch (id, body) VALUES (abs(random()) % 256, zeroblob(65536))",
                        [],
                    )?;
                    Ok(())
                })
                .expect("write");
            written += BODY;
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(1));
            assert!(started.elapsed() < Duration::from_secs(120), "too slow");
        }
        // Without a restart the log holds every frame written; with one it holds a round or two of them.
        assert!(
            largest < written / 2,
            "the log reached {largest} bytes after {written} bytes written"
        );
    }
}
