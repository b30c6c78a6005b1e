//! Docker-style image references: `name`, `name:tag`, `name@sha256:...`,
//! `registry.example:5000/team/name:tag`.
//!
//! References are normalized as Docker does: no registry means `docker.io`,
//! and a single-component name on `docker.io` lives under `library/`. They
//! print in Docker's familiar form (`hello:latest`, not
//! `docker.io/library/hello:latest`), which is also the key under which tags
//! are stored.
//!
//! The grammar is distribution's (`distribution/reference`): a registry
//! host `domain-component ('.' domain-component)*` or `[IPv6]`, with an
//! optional `:port`; path components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`;
//! tags `[\w][\w.-]{0,127}`; sha256 digests. The whole name, registry
//! included (`docker.io/library/hello`), may be at most
//! [`NAME_TOTAL_LENGTH_MAX`] characters, as in Docker. Every name that
//! becomes a tag (pull, tag, commit, import, load, build) goes through
//! the runtime's `Reference`, built on
//! [`parse`] here; the CLI and the runtime share [`split`], [`parse`] and
//! [`registry_host`], so both read a reference the same way.

use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
/// Distribution's `NameTotalLengthMax`: registry and repository together.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag.
pub const TAG_MAX: usize = 128;
/// Longest reference text: name, `:tag`, and `@sha256:<64 hex>`.
pub const REFERENCE_MAX: usize = NAME_TOTAL_LENGTH_MAX + 1 + TAG_MAX + 1 + 71;
/// Docker Hub's registry host, as berth contacts it and keys credentials.
pub const HUB_HOST: &str = "index.docker.io";
/// Docker Hub's server address, as `docker login` stores it.
pub const HUB_SERVER: &str = "https://index.docker.io/v1/";
/// How much of a refused value a message repeats.
pub const QUOTED: usize = 64;

/// `value` for a message: control characters escaped, and cut to its
/// first [`QUOTED`] characters and its length when longer.
pub fn excerpt(value: &str) -> String {
    if value.chars().count() <= QUOTED {
        return value.escape_debug().to_string();
    }
    let head: String = value.chars().take(QUOTED).collect();
    format!("{}... ({} bytes)", head.escape_debug(), value.len())
}

/// A reference taken apart, nothing checked: the name (registry and
/// repository), the tag after the last `:` that follows the last `/`, and
/// the digest after the first `@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Takes a reference apart (`localhost:5000/app:v1@sha256:...`): see
/// [`Parts`].
pub fn split(s: &str) -> Parts<'_> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    Parts { name, tag, digest }
}

/// The registry part of a name, as Docker tells it: the first component
/// when it has a `.` or a `:` or is `localhost`; `None` (Docker Hub)
/// otherwise. Returns it and the repository path.
pub fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// A reference checked against distribution's grammar and normalized
/// (registry `docker.io` when it had none, `library/` for a single
/// component on Docker Hub). The digest is as written: its caller checks
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Parsed {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Why a reference is refused: the whole message
/// (`invalid reference format (...): why`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// The message for a reference `s` refused because of `why`.
pub fn invalid(s: &str, why: &str) -> Invalid {
    Invalid(format!("invalid reference format ({}): {why}", excerpt(s)))
}

/// Parses a reference as a user typed it: `name`, `name:tag`,
/// `name@sha256:...`, `registry.example:5000/team/name:tag`. A reference
/// with neither tag nor digest gets no tag here.
pub fn parse(s: &str) -> Result<Parsed, Invalid> {
    let bad = |why: &str| invalid(s, why);
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s.len() > REFERENCE_MAX {
        return Err(bad(&format!(
            "too long ({} characters); a repository name may be at most \
             {NAME_TOTAL_LENGTH_MAX} characters and a tag at most {TAG_MAX}",
            s.len()
        )));
    }
    let parts = split(s);
    if let Some(t) = parts.tag {
        validate_tag(t).map_err(|why| bad(&why))?;
    }
    let (domain, path) = match split_domain(parts.name) {
        (Some("index.docker.io"), path) => (DEFAULT_DOMAIN.to_string(), path),
        (Some(d), path) => (d.to_string(), path),
        (None, path) => (DEFAULT_DOMAIN.to_string(), path),
    };
    if path.is_empty() {
        return Err(bad("missing repository name"));
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("repository name must be lowercase"));
    }
    for component in path.split('/') {
        validate_component(component).map_err(|why| bad(&why))?;
    }
    validate_domain(&domain).map_err(|why| bad(&why))?;
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    let full = domain.len() + 1 + path.len();
    if full > NAME_TOTAL_LENGTH_MAX {
        return Err(bad(&format!(
            "repository name must not be longer than {NAME_TOTAL_LENGTH_MAX} characters \
             (registry included, {domain}/{}: {full})",
            excerpt(&path)
        )));
    }
    Ok(Parsed {
        domain,
        path,
        tag: parts.tag.map(String::from),
        digest: parts.digest.map(String::from),
    })
}

/// The registry host (and port) a server address or reference domain
/// names, as berth contacts it: scheme and path dropped, lowercased,
/// Docker Hub's aliases as [`HUB_HOST`].
pub fn registry_host(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => HUB_HOST.to_string(),
        _ => host,
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
pub fn validate_component(c: &str) -> Result<(), String> {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() {
        return Err("empty path component".into());
    }
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(format!(
            "path component {c:?} must start and end with a lowercase letter or digit"
        ));
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return Err(format!("invalid separator {sep:?} in {c:?}"));
        }
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`
pub fn validate_tag(t: &str) -> Result<(), String> {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    if b.is_empty() || b.len() > TAG_MAX {
        return Err(format!(
            "a tag must be 1 to {TAG_MAX} characters, not {}",
            b.len()
        ));
    }
    if !word(b[0]) || !b.iter().all(|&x| word(x) || x == b'.' || x == b'-') {
        return Err(format!(
            "tag {} may contain only letters, digits, '_', '.', '-' and must not start with '.' or '-'",
            excerpt(t)
        ));
    }
    Ok(())
}

/// distribution's `domainAndPort`: `host[:port]`, the host a name of
/// `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` components joined by dots (an
/// IPv4 address is one) or `[IPv6]`; the port digits.
pub fn validate_domain(d: &str) -> Result<(), String> {
    let bad = || format!("invalid registry host {}", excerpt(d));
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad());
        }
        match after {
            "" => (None, None),
            p => (None, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    if let Some(h) = host {
        let component_ok = |c: &str| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        };
        if !h.split('.').all(component_ok) {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_and_digest() {
        let s = |r| {
            let p = split(r);
            (p.name, p.tag, p.digest)
        };
        assert_eq!(s("app"), ("app", None, None));
        assert_eq!(s("app:v1"), ("app", Some("v1"), None));
        assert_eq!(s("localhost:5000/app"), ("localhost:5000/app", None, None));
        assert_eq!(
            s("localhost:5000/app:v2"),
            ("localhost:5000/app", Some("v2"), None)
        );
        assert_eq!(
            s("localhost/app:1@sha256:abc"),
            ("localhost/app", Some("1"), Some("sha256:abc"))
        );
        assert_eq!(split_domain("localhost/app"), (Some("localhost"), "app"));
        assert_eq!(split_domain("team/app"), (None, "team/app"));
    }

    #[test]
    fn parses_and_normalizes() {
        let p = parse("hello").unwrap();
        assert_eq!(
            (p.domain.as_str(), p.path.as_str()),
            ("docker.io", "library/hello")
        );
        let p = parse("index.docker.io/team/app:1").unwrap();
        assert_eq!(
            (p.domain.as_str(), p.tag.as_deref()),
            ("docker.io", Some("1"))
        );
        assert!(parse("Hello").unwrap_err().0.contains("lowercase"));
        assert!(parse("").is_err());
    }

    #[test]
    fn registry_hosts_normalize() {
        assert_eq!(registry_host(HUB_SERVER), HUB_HOST);
        assert_eq!(registry_host("docker.io"), HUB_HOST);
        assert_eq!(registry_host("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(registry_host("Registry.Example"), "registry.example");
    }
}
