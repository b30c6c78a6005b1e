//! The runtime's error type. Every failure the API can report carries a kind;
//! the API crate maps kinds to HTTP status codes in one place.

use std::fmt;

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong: bad JSON, a bad value, a module that
    /// cannot run. Changes nothing. (HTTP 400)
    InvalidArgument,
    /// No such container, image, or other object. (HTTP 404)
    NotFound,
    /// The object exists but is in a state that forbids this, or a name is
    /// taken. (HTTP 409)
    Conflict,
    /// Asked for an operation that is already in effect (stop of a stopped
    /// container). (HTTP 304)
    NotModified,
    /// A feature berth does not implement (yet). (HTTP 501)
    NotImplemented,
    /// A registry refused the credentials, or wanted some. (HTTP 401, as
    /// Docker answers; clients then ask the user to log in.)
    Unauthorized,
    /// Something broke inside berthd. (HTTP 500)
    Internal,
}

/// A runtime error: a kind and a message written for the person who runs the
/// command, saying what to do where that is known.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }
    pub fn not_modified(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotModified, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotImplemented, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unauthorized, message)
    }
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with what was being done.
    pub fn context(self, what: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::internal(with_fd_hint(e.to_string()))
    }
}

/// A failure for want of file descriptors (EMFILE, ENFILE), said with the
/// limit and how to change it; other messages pass unchanged.
pub fn with_fd_hint(message: String) -> String {
    if message.contains("(os error 24)") {
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft.to_string())
            .unwrap_or_else(|_| "its".into());
        return format!(
            "{message}: berthd has reached its limit of {limit} open files (RLIMIT_NOFILE). Raise \
             it (`ulimit -n`, or LimitNOFILE= in berthd's systemd unit), or run fewer containers \
             at once (--wasm-pool-slots caps the Wasm ones)"
        );
    }
    if message.contains("(os error 23)") {
        return format!(
            "{message}: the host has run out of file descriptors (its fs.file-max); raise it \
             with sysctl, or run fewer containers"
        );
    }
    message
}

/// Adds context to I/O and other errors on their way into [`Error`].
pub trait ResultExt<T> {
    /// Wraps the error as `Internal` with `what` in front.
    fn ctx(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> ResultExt<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::internal(with_fd_hint(format!("{what}: {e}"))))
    }
}
