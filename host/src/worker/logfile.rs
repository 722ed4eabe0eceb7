//! A size-capped log file: the worker has no terminal of its own, and a process that lives for days must not
//! fill the disk. When the file passes its cap it is renamed to `<name>.1` (replacing the previous one) and a
//! fresh file is started, so at most twice the cap is ever kept.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Default cap of one log file.
pub const DEFAULT_CAP_BYTES: u64 = 10 * 1024 * 1024;

struct Inner {
    path: PathBuf,
    cap: u64,
    file: File,
    written: u64,
}

/// A log sink that rotates once past its cap; cheap to clone.
#[derive(Clone)]
pub struct CappedLog {
    inner: Arc<Mutex<Inner>>,
}

impl CappedLog {
    /// Opens (appending) the log at `path`, creating its directory.
    pub fn open(path: &Path, cap: u64) -> std::io::Result<CappedLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(CappedLog {
            inner: Arc::new(Mutex::new(Inner {
                path: path.to_path_buf(),
                cap,
                file,
                written,
            })),
        })
    }
}

impl Inner {
    fn rotate(&mut self) -> std::io::Result<()> {
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(".1");
        std::fs::rename(&self.path, rotated)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for CappedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.written.saturating_add(buf.len() as u64) > inner.cap && inner.written > 0 {
            // A log that cannot rotate keeps appending rather than losing lines.
            let _ = inner.rotate();
        }
        let n = inner.file.write(buf)?;
        inner.written = inner.written.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .file
            .flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CappedLog {
    type Writer = CappedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_past_its_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("worker.log");
        let mut log = CappedLog::open(&path, 100).expect("open");
        for _ in 0..30 {
            log.write_all(b"0123456789\n").expect("write");
        }
        let size = std::fs::metadata(&path).expect("log").len();
        let rotated = std::fs::metadata(dir.path().join("worker.log.1"))
            .expect("rotated")
            .len();
        assert!(size <= 100 && rotated <= 100, "{size} {rotated}");
    }
}
