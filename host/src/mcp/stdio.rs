//! This process's stdin and stdout as the byte streams under the MCP stdio transport.
//!
//! tokio's `Stdin` and `Stdout` run every read and every write on the blocking thread pool (a descriptor of
//! unknown kind may block), so each request costs a hop there and back to read it and another to write its reply:
//! thread wake-ups that cost more than a status poll's own work. MCP clients spawn servers with pipes or Unix
//! stream socket pairs, which the reactor can watch: those are duplicated, set non-blocking and registered with it, so a
//! request is read and its reply written on the serving task's own thread. Anything else (a terminal, a file, a
//! datagram socket) keeps tokio's blocking streams.
//!
//! A reply pipe also takes bytes that never change (the published tools array, in the binary's read-only data) by
//! reference: `vmsplice` hands the pipe the pages themselves, so the 180 KB `tools/list` reply is copied once,
//! into the client, instead of twice (into fresh pipe pages, then into the client). This is only sound for memory
//! that is never written again while the pipe may still hold it, which is why [`Output::poll_write_static`]
//! takes `&'static [u8]` and its one caller passes constants.
//!
//! Non-blocking mode belongs to the open file description, which the client's end does not share (a pipe's two
//! ends are two descriptions; so are a socket pair's). Nothing else in this process writes to stdout (it belongs
//! to MCP; logs go to stderr or a file) and children never inherit it (every spawn names its own stdio).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// The byte stream requests arrive on.
pub type Input = Box<dyn AsyncRead + Send + Unpin>;

/// The byte stream replies leave on.
pub enum Output {
    /// A pipe on the reactor; `splice` stays true until the kernel refuses a `vmsplice`.
    Pipe { pipe: pipe::Sender, splice: bool },
    /// A socket on the reactor, or tokio's blocking stdout.
    Other(Box<dyn AsyncWrite + Send + Unpin>),
}

/// stdin and stdout, on the reactor when they are pipes or Unix stream sockets (see the module docs).
pub fn streams() -> (Input, Output) {
    let input = or_blocking("stdin", reactor_input(), || Box::new(tokio::io::stdin()));
    let output = or_blocking("stdout", reactor_output(), || {
        Output::Other(Box::new(tokio::io::stdout()))
    });
    (input, output)
}

/// The reactor-driven stream when there is one, else tokio's blocking stream from `blocking`.
fn or_blocking<T>(name: &str, reactor: io::Result<Option<T>>, blocking: impl FnOnce() -> T) -> T {
    match reactor {
        Ok(Some(stream)) => stream,
        Ok(None) => blocking(),
        Err(err) => {
            tracing::debug!(stream = name, error = %err, "stays on the blocking pool");
            blocking()
        }
    }
}

/// What a descriptor is, as far as the reactor cares.
enum Kind {
    Pipe,
    StreamSocket,
    Other,
}

fn kind_of(fd: &OwnedFd) -> io::Result<Kind> {
    let file_type = File::from(fd.try_clone()?).metadata()?.file_type();
    if file_type.is_fifo() {
        return Ok(Kind::Pipe);
    }
    if file_type.is_socket()
        && socket_option(fd, libc::SO_DOMAIN)? == libc::AF_UNIX
        && socket_option(fd, libc::SO_TYPE)? == libc::SOCK_STREAM
    {
        return Ok(Kind::StreamSocket);
    }
    Ok(Kind::Other)
}

/// An integer `SOL_SOCKET` option of the socket `fd`.
fn socket_option(fd: &OwnedFd, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open descriptor for the duration of the call, and `value`/`len` point at a c_int and
    // its size, as getsockopt of an integer option requires.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn reactor_input() -> io::Result<Option<Input>> {
    let fd = io::stdin().as_fd().try_clone_to_owned()?;
    Ok(match kind_of(&fd)? {
        Kind::Pipe => Some(Box::new(tokio::net::unix::pipe::Receiver::from_owned_fd(
            fd,
        )?)),
        Kind::StreamSocket => Some(Box::new(socket(fd)?)),
        Kind::Other => None,
    })
}

/// How much a reply pipe holds. Linux's default of 64 KiB splits the 180 KB `tools/list` reply into three fills,
/// each waiting for the client to drain the pipe (a context switch either way); with room for the whole reply it
/// leaves in one write. The kernel allocates a pipe's pages as they fill, so an idle pipe costs nothing more.
const REPLY_PIPE_BYTES: libc::c_int = 512 << 10;

fn reactor_output() -> io::Result<Option<Output>> {
    let fd = io::stdout().as_fd().try_clone_to_owned()?;
    Ok(match kind_of(&fd)? {
        Kind::Pipe => {
            widen_pipe(&fd);
            Some(Output::Pipe {
                pipe: pipe::Sender::from_owned_fd(fd)?,
                splice: true,
            })
        }
        Kind::StreamSocket => Some(Output::Other(Box::new(socket(fd)?))),
        Kind::Other => None,
    })
}

impl AsyncWrite for Output {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Output::Pipe { pipe, .. } => Pin::new(pipe).poll_write(cx, buf),
            Output::Other(other) => Pin::new(other).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Output::Pipe { pipe, .. } => Pin::new(pipe).poll_write_vectored(cx, bufs),
            Output::Other(other) => Pin::new(other).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Output::Pipe { pipe, .. } => pipe.is_write_vectored(),
            Output::Other(other) => other.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Output::Pipe { pipe, .. } => Pin::new(pipe).poll_flush(cx),
            Output::Other(other) => Pin::new(other).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Output::Pipe { pipe, .. } => Pin::new(pipe).poll_shutdown(cx),
            Output::Other(other) => Pin::new(other).poll_shutdown(cx),
        }
    }
}

impl Output {
    /// Whether [`Output::poll_write_static`] hands bytes over by reference rather than copying them.
    pub fn by_reference(&self) -> bool {
        matches!(self, Output::Pipe { splice: true, .. })
    }

    /// Writes a prefix of `parts`, bytes nothing ever writes again, and returns its length: by reference into a
    /// pipe (see the module docs), else copied.
    pub fn poll_write_static(
        &mut self,
        cx: &mut Context<'_>,
        parts: &[&'static [u8]],
    ) -> Poll<io::Result<usize>> {
        if let Output::Pipe { pipe, splice } = self {
            while *splice {
                ready!(pipe.poll_write_ready(cx))?;
                match pipe.try_io(|| vmsplice(pipe.as_raw_fd(), parts)) {
                    Ok(written) => return Poll::Ready(Ok(written)),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) if splice_unavailable(&err) => {
                        tracing::debug!(error = %err, "replies are copied into the pipe");
                        *splice = false;
                    }
                    Err(err) => return Poll::Ready(Err(err)),
                }
            }
        }
        let slices: Vec<io::IoSlice<'_>> =
            parts.iter().map(|part| io::IoSlice::new(part)).collect();
        Pin::new(self).poll_write_vectored(cx, &slices)
    }
}

/// Errors that say this kernel or sandbox does not let us `vmsplice` (seccomp, an old kernel), not that the pipe
/// failed.
fn splice_unavailable(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::EINVAL | libc::EOPNOTSUPP)
    )
}

/// Hands the pages of `parts` to the pipe `fd` without waiting; returns how many bytes it took.
fn vmsplice(fd: libc::c_int, parts: &[&'static [u8]]) -> io::Result<usize> {
    let iovecs: Vec<libc::iovec> = parts
        .iter()
        .map(|part| libc::iovec {
            iov_base: part.as_ptr().cast_mut().cast(),
            iov_len: part.len(),
        })
        .collect();
    // SAFETY: `fd` is an open pipe descriptor for the duration of the call, and each iovec describes a live
    // `&'static [u8]`. The pipe reads the pages later, when the client reads: that is sound because nothing
    // writes to `'static` bytes (the callers pass constants), so what the client reads is what was given.
    let rc = unsafe { libc::vmsplice(fd, iovecs.as_ptr(), iovecs.len(), libc::SPLICE_F_NONBLOCK) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// Asks for [`REPLY_PIPE_BYTES`] of pipe buffer; a refusal (a lower `fs.pipe-max-size`, the user's pipe page
/// limit) leaves the pipe as it was, which only costs speed.
fn widen_pipe(fd: &OwnedFd) {
    // SAFETY: `fd` is an open pipe descriptor for the duration of the call; F_SETPIPE_SZ takes an int argument.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, REPLY_PIPE_BYTES) };
    if rc < 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "reply pipe keeps its size");
    }
}

fn socket(fd: OwnedFd) -> io::Result<tokio::net::UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn a_reply_pipe_is_widened_to_hold_the_catalog() {
        let (reader, writer) = io::pipe().expect("pipe");
        let writer = OwnedFd::from(writer);
        widen_pipe(&writer);
        // SAFETY: `reader` is an open pipe descriptor; F_GETPIPE_SZ takes no argument.
        let size = unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_GETPIPE_SZ) };
        assert!(size >= REPLY_PIPE_BYTES, "pipe holds {size} bytes");
    }
}
