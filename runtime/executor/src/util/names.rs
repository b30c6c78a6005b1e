//! The rule for names users give to objects that become keys in the
//! metadata database or names of files: containers, volumes and networks.
//!
//! Docker's pattern for all three is `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (moby's
//! `RestrictedNamePattern`), with no length limit; berth adds one,
//! [`MAX_NAME_LEN`] bytes, so that a name always fits one path component
//! (`NAME_MAX`) and a 10,000-character name cannot bloat every record and
//! message that carries it. Container names are checked here through
//! `container::names::validate`; the volume and network rooms must check
//! theirs with [`validate_volume_name`] and [`validate_network_name`]
//! before they make a directory, a database key or a host object from one.
//! Image references follow distribution's grammar instead
//! (`image::reference`).
//!
//! Error messages quote at most [`QUOTED`] characters of a refused name.

use crate::error::{Error, Result};

/// The longest name accepted, in bytes: `NAME_MAX`, so a name can always
/// be a directory name.
pub const MAX_NAME_LEN: usize = 255;
/// How much of a refused value a message repeats, and the excerpt of it:
/// shared with the image-reference grammar of the wire-types crate.
pub use berth_api_types::reference::{QUOTED, excerpt};

/// Checks `name` against Docker's pattern and berth's length cap; `kind`
/// names the object in the message ("container", "volume", "network").
/// Returns the name as given (callers strip Docker's leading `/` first).
pub fn validate_name(kind: &str, name: &str) -> Result<String> {
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "Invalid {kind} name ({}): a {kind} name may be at most {MAX_NAME_LEN} characters",
            excerpt(name)
        )));
    }
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
    if !ok {
        return Err(Error::invalid(format!(
            "Invalid {kind} name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed \
             (at least 2 characters, starting with a letter or digit)",
            excerpt(name)
        )));
    }
    Ok(name.to_string())
}

/// A volume name (`docker volume create NAME`, `-v NAME:/path`): it
/// becomes the directory `ROOT/volumes/NAME`.
pub fn validate_volume_name(name: &str) -> Result<String> {
    validate_name("volume", name)
}

/// A network name (`docker network create NAME`).
pub fn validate_network_name(name: &str) -> Result<String> {
    validate_name("network", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_pattern_and_a_length_cap() {
        for good in [
            "ab",
            "web-1",
            "a.b_c-d",
            "9lives",
            &"x".repeat(MAX_NAME_LEN),
        ] {
            assert_eq!(validate_name("volume", good).unwrap(), good);
        }
        for bad in ["", "a", "-x", ".x", "_x", "a b", "a/b", "a:b", "é1", "a\0b"] {
            let e = validate_volume_name(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
            assert!(e.message().contains("volume name"), "{e}");
        }
        let long = "x".repeat(10_000);
        let e = validate_network_name(&long).unwrap_err();
        assert!(e.message().contains("at most 255"), "{e}");
        assert!(e.message().len() < 300, "the message quotes a little: {e}");
        assert!(e.message().contains("10000 bytes"), "{e}");
    }
}
