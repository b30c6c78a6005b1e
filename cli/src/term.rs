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

/// The detach keys of an attached session: `spec` for the daemon (which
/// watches a session's input too), `keys` for the local watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetachKeys {
    pub spec: String,
    pub keys: Vec<u8>,
}

/// `--detach-keys` if given, else `detachKeys` of Docker's `config.json`
/// (as the docker CLI reads it), else ctrl-p,ctrl-q. A bad sequence is an
/// error that says where it came from.
pub fn detach_keys(flag: Option<&str>) -> anyhow::Result<DetachKeys> {
    use berth_api_types::detach::parse_detach_keys;
    if let Some(spec) = flag.filter(|s| !s.is_empty()) {
        let keys = parse_detach_keys(spec).map_err(|e| anyhow::anyhow!("--detach-keys: {e}"))?;
        return Ok(DetachKeys {
            spec: spec.to_string(),
            keys,
        });
    }
    let path = crate::commands::login::config_path();
    let spec = configured_detach_keys(&std::fs::read(&path).unwrap_or_default());
    let keys = parse_detach_keys(&spec)
        .map_err(|e| anyhow::anyhow!("detachKeys in {}: {e}", path.display()))?;
    Ok(DetachKeys { spec, keys })
}

/// `detachKeys` of a `config.json`; empty when absent (or the file is not
/// one berth can read: `login` is where that is reported).
fn configured_detach_keys(config: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(config)
        .ok()
        .and_then(|v| v.get("detachKeys")?.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_come_from_the_flag_then_the_config_file() {
        let k = detach_keys(Some("ctrl-a,x")).unwrap();
        assert_eq!(
            (k.spec.as_str(), k.keys.as_slice()),
            ("ctrl-a,x", &[1, b'x'][..])
        );
        let e = detach_keys(Some("ctrl-1")).unwrap_err().to_string();
        assert!(e.starts_with("--detach-keys: Invalid detach keys"), "{e}");
        assert_eq!(
            configured_detach_keys(br#"{"detachKeys":"ctrl-e,e"}"#),
            "ctrl-e,e"
        );
        assert_eq!(configured_detach_keys(br#"{"auths":{}}"#), "");
        assert_eq!(configured_detach_keys(b"not json"), "");
        assert_eq!(configured_detach_keys(b""), "");
    }
}
