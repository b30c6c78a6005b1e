//! The local terminal: raw mode for `run -it`, and the window size.
//!
//! Owns termios changes on the client's own tty and restores them; never
//! touches anything of the daemon's.

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::termios::{self, SetArg, Termios};

/// While alive, the terminal on stdin is in raw mode; dropping restores it.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode (`cfmakeraw`, the same flags as the
    /// docker CLI's `term.MakeRaw`). With a TTY the container's pty already
    /// turns `\n` into `\r\n`, so output needs no post-processing.
    pub fn enable() -> io::Result<RawMode> {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        let saved = termios::tcgetattr(fd).map_err(io::Error::from)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).map_err(io::Error::from)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

pub fn stdin_is_tty() -> bool {
    io::stdin().is_terminal()
}

pub fn stdout_is_tty() -> bool {
    io::stdout().is_terminal()
}

/// `(rows, columns)` of the terminal on `fd`, if it is one.
fn size_of(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointer we pass.
    let rc = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The size of the terminal on stdout (what the docker CLI reports).
pub fn size() -> Option<(u16, u16)> {
    size_of(io::stdout().as_fd())
}
