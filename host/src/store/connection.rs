//! How SQLite and each of the store's connections are set up: process-wide library settings, then per
//! connection the busy handler, pragmas, statement cache and the query planner's stability guarantee.

use std::sync::Arc;

use rusqlite::config::DbConfig;
use rusqlite::Connection;

use super::handoff::Handoff;
use super::{busy, StoreError};

/// Process-wide SQLite settings, applied once before the first connection of the process opens (SQLite refuses
/// them after it initialised; a process that opened a connection some other way keeps the defaults).
///
/// No bulk page-cache allocation: by default every page cache mallocs room for 20 pages (~90 KB) on its first
/// page, and a statement with a constant `IN (...)` list opens a fresh in-memory table, so a page cache, for the
/// list on each run. Freed, those 90 KB went back to the kernel (glibc trims a thread arena's top past 128 KB)
/// and came back as page faults on the next run: a fifth of a submit's time in the store bench.
pub(super) fn configure_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_PAGECACHE takes (void*, int, int); a null buffer with no lines only turns the
        // bulk allocation off. Called before any connection exists in this process, or refused (SQLITE_MISUSE)
        // without effect.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_PAGECACHE,
                std::ptr::null_mut::<std::ffi::c_void>(),
                0 as std::ffi::c_int,
                0 as std::ffi::c_int,
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "sqlite was already initialised; bulk page-cache allocation stays on"
            );
        }
    });
}

/// Opens the writer connection: through the VFS that writes each commit's WAL frames in one call
/// (`wal_writes`), or the default VFS where that cannot be registered.
pub(super) fn open_writer(path: &std::path::Path) -> Result<Connection, StoreError> {
    if !super::wal_writes::register() {
        return Ok(Connection::open(path)?);
    }
    Ok(Connection::open_with_flags_and_vfs(
        path,
        rusqlite::OpenFlags::default(),
        super::wal_writes::VFS_NAME,
    )?)
}

/// Sets up one connection of the store (writer or reader): busy handler, pragmas, statement cache, plan stability.
pub(super) fn configure(
    conn: &mut Connection,
    handoff: Option<Arc<Handoff>>,
) -> Result<(), StoreError> {
    busy::install(conn, handoff)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Whichever connection starts the log over cuts the file back to this (see `checkpoint`).
    conn.pragma_update(
        None,
        "journal_size_limit",
        super::checkpoint::WAL_SIZE_LIMIT_BYTES,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    // Without the planner-stability guarantee SQLite marks a statement for re-preparation whenever a value is
    // bound to a parameter its plan looked at, and `LIMIT ?n` is such a parameter: every cached statement with
    // a bound limit (the poll's message and event tails, the guard's live scan) was parsed and planned again on
    // each run. No plan here depends on a bound value (no `sqlite_stat4`, no `LIKE` prefix on a parameter).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cached statement whose plan read a bound `LIMIT` runs again without being parsed and planned again.
    #[test]
    fn a_bound_limit_does_not_reprepare_a_cached_statement() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("plans.sqlite3")).expect("open");
        configure(&mut conn, None).expect("configure");
        conn.execute_batch(
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3); \
             CREATE INDEX t_x ON t(x);",
        )
        .expect("schema");
        let sql = "SELECT x FROM t WHERE x > ?1 ORDER BY x LIMIT ?2";
        for limit in 1..=5_i64 {
            let mut stmt = conn.prepare_cached(sql).expect("prepare");
            let rows: Vec<i64> = stmt
                .query_map([0, limit], |row| row.get(0))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert_eq!(rows.len() as i64, limit.min(3));
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "limit {limit}"
            );
        }
    }
}
