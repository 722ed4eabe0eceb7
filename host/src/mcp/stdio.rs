//! This process's stdin and stdout as the byte streams under the MCP stdio transport.
//!
//! tokio's `Stdin` and `Stdout` run every read and every write on the blocking thread pool (a descriptor of
//! unknown kind may block), so each request costs a hop there and back to read it and another to write its reply:
//! thread wake-ups that cost more than a status poll's own work. MCP clients spawn servers with pipes or Unix
//! stream socket pairs, which the reactor can watch: those are duplicated, set non-blocking and registered with it, so a
//! request is read and its reply written on the serving task's own thread. Anything else (a terminal, a file, a
//! datagram socket) keeps tokio's blocking streams.
//!
//! Non-blocking mode belongs to the open file description, which the client's end does not share (a pipe's two
//! ends are two descriptions; so are a socket pair's). Nothing else in this process writes to stdout (it belongs
//! to MCP; logs go to stderr or a file) and children never inherit it (every spawn names its own stdio).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;

use tokio::io::{AsyncRead, AsyncWrite};

/// The byte stream requests arrive on.
pub type Input = Box<dyn AsyncRead + Send + Unpin>;
/// The byte stream replies leave on.
pub type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// stdin and stdout, on the reactor when they are pipes or Unix stream sockets (see the module docs).
pub fn streams() -> (Input, Output) {
    let input = or_blocking("stdin", reactor_input(), || Box::new(tokio::io::stdin()));
    let output = or_blocking("stdout", reactor_output(), || Box::new(tokio::io::stdout()));
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
    use std::os::fd::AsRawFd;
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
            Some(Box::new(tokio::net::unix::pipe::Sender::from_owned_fd(fd)?))
        }
        Kind::StreamSocket => Some(Box::new(socket(fd)?)),
        Kind::Other => None,
    })
}

/// Asks for [`REPLY_PIPE_BYTES`] of pipe buffer; a refusal (a lower `fs.pipe-max-size`, the user's pipe page
/// limit) leaves the pipe as it was, which only costs speed.
fn widen_pipe(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
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
