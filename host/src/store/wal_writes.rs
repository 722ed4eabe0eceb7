//! One `pwrite` per commit for the writer's WAL: a VFS over SQLite's `unix` VFS that gathers the frames of a
//! transaction and writes them together.
//!
//! SQLite writes each WAL frame as two system calls, its 24-byte header and its page, so a submit's commit
//! (about fourteen pages) was some thirty `pwrite`s, each paying the kernel's per-call work (the inode lock, the
//! file's time stamps, the page cache lookup) for a few KiB: a fifth of a submit's server time in profiles. The
//! gathered write is the same bytes at the same offsets, in one call.
//!
//! Why this is safe: a frame is visible to other connections only once the commit publishes a new WAL-index
//! header, which SQLite does after the last frame's `xWrite` has returned. This file writes everything gathered
//! when that last frame arrives (a commit frame's header carries the database size, every other frame's a zero)
//! and returns the outcome from that `xWrite`, so a failed write fails the commit exactly as before, and no
//! header ever names a frame that is not in the file. Before any other call on the WAL (a read, a sync, a
//! truncation, its size, a file control, closing) whatever is gathered is written first, so SQLite never sees
//! the file behind its own writes. Frames of a transaction that spills before its commit stay gathered until the
//! commit or the next other call; a rollback leaves them unpublished, as SQLite's own writes would be.
//!
//! Only the WAL of connections opened with [`VFS_NAME`] is wrapped (the store's writer); the database file and
//! every other file are plain `unix` files, opened in place.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use rusqlite::ffi;

/// Name of the VFS to open the writer connection with.
pub const VFS_NAME: &CStr = c"ccp-gather-wal";

/// A gathered run is written before it would pass this: the `unix` VFS writes at most 128 KiB - 1 per call (its
/// `seekAndWrite` masks the length to 17 bits, and reports the rest as a full disk). A submit's commit, about
/// fourteen 4 KiB frames, is 58 KiB.
const MAX_GATHERED: usize = 120 * 1024;

/// Size of a WAL frame header (SQLite's `WAL_FRAME_HDRSIZE`).
const FRAME_HEADER: usize = 24;

/// The WAL file as this VFS sees it: SQLite's handle (first, so SQLite can use it as a `sqlite3_file`), this
/// module's state, then, at [`inner_offset`], the `unix` file that does the I/O.
#[repr(C)]
struct GatherFile {
    base: ffi::sqlite3_file,
    state: *mut Gathered,
}

/// The run of bytes not yet written: contiguous, starting at `offset`.
#[derive(Default)]
struct Gathered {
    offset: i64,
    bytes: Vec<u8>,
    /// The last frame header written announced a commit: the page that follows ends the transaction.
    commit_page_next: bool,
    /// Inner writes issued (tests count them).
    writes: u64,
}

/// Where the inner file starts inside SQLite's allocation.
const fn inner_offset() -> usize {
    let size = std::mem::size_of::<GatherFile>();
    (size + 15) & !15
}

struct Registered {
    /// The `unix` VFS this one delegates to.
    inner: *mut ffi::sqlite3_vfs,
}

// SAFETY: the pointer is to SQLite's static `unix` VFS object, never freed and safe to share between threads.
unsafe impl Send for Registered {}
// SAFETY: as above; it is only read.
unsafe impl Sync for Registered {}

static REGISTERED: OnceLock<Option<Registered>> = OnceLock::new();

/// Registers the VFS (once per process). False when SQLite has no `unix` VFS to build on or refuses the
/// registration: the writer then opens with the default VFS.
pub fn register() -> bool {
    REGISTERED
        .get_or_init(|| {
            // SAFETY: looking up a VFS by name and copying its description are plain reads of SQLite's static data;
            // the copy is leaked so it outlives every connection, as `sqlite3_vfs_register` requires.
            unsafe {
                let inner = ffi::sqlite3_vfs_find(c"unix".as_ptr());
                if inner.is_null() {
                    return None;
                }
                let mut vfs: ffi::sqlite3_vfs = std::ptr::read(inner);
                vfs.szOsFile = c_int::try_from(inner_offset()).ok()? + (*inner).szOsFile;
                vfs.zName = VFS_NAME.as_ptr();
                vfs.pNext = std::ptr::null_mut();
                vfs.xOpen = Some(gather_open);
                let vfs = Box::leak(Box::new(vfs));
                if ffi::sqlite3_vfs_register(vfs, 0) != ffi::SQLITE_OK {
                    return None;
                }
                Some(Registered { inner })
            }
        })
        .is_some()
}

fn inner_vfs() -> *mut ffi::sqlite3_vfs {
    REGISTERED
        .get()
        .and_then(Option::as_ref)
        .map_or(std::ptr::null_mut(), |r| r.inner)
}

unsafe extern "C" fn gather_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner_vfs = inner_vfs();
    let Some(open) = (!inner_vfs.is_null()).then(|| (*inner_vfs).xOpen).flatten() else {
        (*file).pMethods = std::ptr::null();
        return ffi::SQLITE_CANTOPEN;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Not the WAL: a plain unix file in SQLite's allocation, which is at least as large as unix asks for.
        return open(inner_vfs, name, file, flags, out_flags);
    }
    let gather = file.cast::<GatherFile>();
    let inner = inner_of(gather);
    (*gather).state = std::ptr::null_mut();
    let rc = open(inner_vfs, name, inner, flags, out_flags);
    if (*inner).pMethods.is_null() {
        (*file).pMethods = std::ptr::null();
        return rc;
    }
    // SQLite calls xClose whenever pMethods is set, even after a failed open, so the inner file is closed too.
    (*gather).state = Box::into_raw(Box::default());
    (*file).pMethods = &GATHER_METHODS;
    rc
}

/// The inner `unix` file of `gather`.
unsafe fn inner_of(gather: *mut GatherFile) -> *mut ffi::sqlite3_file {
    gather
        .cast::<u8>()
        .add(inner_offset())
        .cast::<ffi::sqlite3_file>()
}

/// The gathered state and inner file of a WAL handle SQLite passes back.
unsafe fn parts<'a>(file: *mut ffi::sqlite3_file) -> (&'a mut Gathered, *mut ffi::sqlite3_file) {
    let gather = file.cast::<GatherFile>();
    (&mut *(*gather).state, inner_of(gather))
}

unsafe fn methods<'a>(inner: *mut ffi::sqlite3_file) -> &'a ffi::sqlite3_io_methods {
    &*(*inner).pMethods
}

/// Writes what is gathered; the inner write's code on failure (the gathered bytes are then dropped: SQLite
/// treats the failed call's transaction as failed and rewrites from its own state).
unsafe fn flush(gathered: &mut Gathered, inner: *mut ffi::sqlite3_file) -> c_int {
    if gathered.bytes.is_empty() {
        return ffi::SQLITE_OK;
    }
    let Some(write) = methods(inner).xWrite else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let Ok(len) = c_int::try_from(gathered.bytes.len()) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    gathered.writes += 1;
    let rc = write(
        inner,
        gathered.bytes.as_ptr().cast::<c_void>(),
        len,
        gathered.offset,
    );
    gathered.bytes.clear();
    rc
}

unsafe extern "C" fn gather_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let (gathered, inner) = parts(file);
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
    let end = gathered.offset + gathered.bytes.len() as i64;
    if !gathered.bytes.is_empty() && (offset != end || gathered.bytes.len() + len > MAX_GATHERED) {
        let rc = flush(gathered, inner);
        if rc != ffi::SQLITE_OK {
            gathered.commit_page_next = false;
            return rc;
        }
    }
    if gathered.bytes.is_empty() {
        gathered.offset = offset;
    }
    gathered.bytes.extend_from_slice(bytes);
    if len == FRAME_HEADER {
        // Bytes 4..8 of a frame header: the database size after a commit, zero for every other frame.
        gathered.commit_page_next = bytes[4..8] != [0, 0, 0, 0];
        return ffi::SQLITE_OK;
    }
    if std::mem::take(&mut gathered.commit_page_next) {
        return flush(gathered, inner);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn gather_close(file: *mut ffi::sqlite3_file) -> c_int {
    let gather = file.cast::<GatherFile>();
    let inner = inner_of(gather);
    let mut rc = ffi::SQLITE_OK;
    if !(*gather).state.is_null() {
        let mut gathered = Box::from_raw((*gather).state);
        (*gather).state = std::ptr::null_mut();
        rc = flush(&mut gathered, inner);
    }
    let closed = match methods(inner).xClose {
        Some(close) => close(inner),
        None => ffi::SQLITE_OK,
    };
    (*file).pMethods = std::ptr::null();
    if rc != ffi::SQLITE_OK {
        rc
    } else {
        closed
    }
}

/// Generates the methods that write what is gathered, then delegate.
macro_rules! flushing {
    ($name:ident, $method:ident ( $($arg:ident : $ty:ty),* )) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            let (gathered, inner) = parts(file);
            let rc = flush(gathered, inner);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match methods(inner).$method {
                Some(method) => method(inner $(, $arg)*),
                None => ffi::SQLITE_IOERR,
            }
        }
    };
}

flushing!(gather_read, xRead(data: *mut c_void, amount: c_int, offset: i64));
flushing!(gather_truncate, xTruncate(size: i64));
flushing!(gather_sync, xSync(flags: c_int));
flushing!(gather_file_size, xFileSize(size: *mut i64));
flushing!(gather_lock, xLock(level: c_int));
flushing!(gather_unlock, xUnlock(level: c_int));
flushing!(gather_check_reserved, xCheckReservedLock(out: *mut c_int));
flushing!(gather_file_control, xFileControl(op: c_int, arg: *mut c_void));
flushing!(gather_shm_map, xShmMap(region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void));
flushing!(gather_shm_lock, xShmLock(offset: c_int, n: c_int, flags: c_int));
flushing!(gather_shm_unmap, xShmUnmap(delete: c_int));
flushing!(gather_fetch, xFetch(offset: i64, amount: c_int, out: *mut *mut c_void));
flushing!(gather_unfetch, xUnfetch(offset: i64, page: *mut c_void));

unsafe extern "C" fn gather_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (_, inner) = parts(file);
    methods(inner).xSectorSize.map_or(4096, |m| m(inner))
}

unsafe extern "C" fn gather_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (_, inner) = parts(file);
    methods(inner)
        .xDeviceCharacteristics
        .map_or(0, |m| m(inner))
}

unsafe extern "C" fn gather_shm_barrier(file: *mut ffi::sqlite3_file) {
    let (gathered, inner) = parts(file);
    if flush(gathered, inner) != ffi::SQLITE_OK {
        // Never reached through SQLite (barriers are issued on the database file, not the WAL); kept for the
        // contract's sake.
        tracing::warn!("gathered WAL frames failed to write at a memory barrier");
    }
    if let Some(barrier) = methods(inner).xShmBarrier {
        barrier(inner);
    }
}

static GATHER_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(gather_close),
    xRead: Some(gather_read),
    xWrite: Some(gather_write),
    xTruncate: Some(gather_truncate),
    xSync: Some(gather_sync),
    xFileSize: Some(gather_file_size),
    xLock: Some(gather_lock),
    xUnlock: Some(gather_unlock),
    xCheckReservedLock: Some(gather_check_reserved),
    xFileControl: Some(gather_file_control),
    xSectorSize: Some(gather_sector_size),
    xDeviceCharacteristics: Some(gather_device_characteristics),
    xShmMap: Some(gather_shm_map),
    xShmLock: Some(gather_shm_lock),
    xShmBarrier: Some(gather_shm_barrier),
    xShmUnmap: Some(gather_shm_unmap),
    xFetch: Some(gather_fetch),
    xUnfetch: Some(gather_unfetch),
};

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    fn writer(path: &std::path::Path) -> Connection {
        assert!(register());
        let conn = Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            VFS_NAME,
        )
        .expect("open with the gathering VFS");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        conn.pragma_update(None, "synchronous", "NORMAL")
            .expect("sync");
        conn
    }

    /// The inner writes the WAL of `conn` issued so far.
    fn wal_writes(conn: &Connection) -> u64 {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: SQLITE_FCNTL_JOURNAL_POINTER stores the WAL's file handle (SQLite's, valid while the
        // connection is open) into `file`; the handle is this module's `GatherFile`.
        unsafe {
            let rc = ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_JOURNAL_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            );
            assert_eq!(rc, ffi::SQLITE_OK);
            assert!(!file.is_null());
            assert!(std::ptr::eq((*file).pMethods, &GATHER_METHODS));
            (*(*file.cast::<GatherFile>()).state).writes
        }
    }

    #[test]
    fn a_commit_is_one_write_and_every_reader_sees_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gather.sqlite3");
        let conn = writer(&path);
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v BLOB); CREATE INDEX t_v ON t(v);",
        )
        .expect("schema");
        let reader = Connection::open(&path).expect("plain reader");
        let before = wal_writes(&conn);
        for i in 0..200 {
            conn.execute(
                "INSERT INTO t (k, v) VALUES (?1, randomblob(300))",
                [format!("key-{i}")],
            )
            .expect("insert");
            let seen: i64 = reader
                .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .expect("count");
            assert_eq!(seen, i + 1, "a plain connection reads every commit at once");
        }
        assert_eq!(wal_writes(&conn) - before, 200, "one write per commit");
        let ok: String = reader
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(ok, "ok");
    }

    #[test]
    fn spilled_rolled_back_and_bulk_transactions_stay_consistent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bulk.sqlite3");
        let mut conn = writer(&path);
        // A tiny page cache spills frames to the WAL in the middle of a transaction.
        conn.pragma_update(None, "cache_size", 10).expect("cache");
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);")
            .expect("schema");
        let tx = conn.transaction().expect("begin");
        for _ in 0..2_000 {
            tx.execute("INSERT INTO t (v) VALUES (randomblob(900))", [])
                .expect("insert");
        }
        tx.rollback().expect("rollback");
        let tx = conn.transaction().expect("begin");
        for _ in 0..3_000 {
            tx.execute("INSERT INTO t (v) VALUES (randomblob(900))", [])
                .expect("insert");
        }
        tx.commit().expect("commit");
        conn.execute("DELETE FROM t WHERE id % 3 = 0", [])
            .expect("delete");
        let reader = Connection::open(&path).expect("plain reader");
        let n: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 2_000);
        let ok: String = reader
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(ok, "ok");
        drop(reader);
        // Checkpointed and reopened without this VFS: the same rows.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        drop(conn);
        let plain = Connection::open(&path).expect("reopen");
        let n: i64 = plain
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 2_000);
    }

    #[test]
    fn frames_written_by_a_crashed_writer_are_recovered() {
        // The process ends without closing the connection (no checkpoint, the WAL left behind): a new
        // connection recovers every committed transaction from the gathered writes.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("crash.sqlite3");
        let conn = writer(&path);
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
            .expect("schema");
        for i in 0..50 {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [format!("row {i}")])
                .expect("insert");
        }
        let wal = dir.path().join("crash.sqlite3-wal");
        let copy = dir.path().join("copy.sqlite3");
        std::fs::copy(&path, &copy).expect("copy db");
        std::fs::copy(&wal, dir.path().join("copy.sqlite3-wal")).expect("copy wal");
        let recovered = Connection::open(&copy).expect("open the copy");
        let n: i64 = recovered
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 50);
        drop(conn);
    }
}
