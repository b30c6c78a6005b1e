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
//! [`Reference::parse`] or [`Reference::with_tag`].

use crate::error::{Error, Result};
use crate::util::Digest;
use crate::util::names::excerpt;
use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
/// Distribution's `NameTotalLengthMax`: registry and repository together.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag.
pub const TAG_MAX: usize = 128;
/// Longest reference text: name, `:tag`, and `@sha256:<64 hex>`.
const REFERENCE_MAX: usize = NAME_TOTAL_LENGTH_MAX + 1 + TAG_MAX + 1 + 71;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host (and port); `docker.io` when the name had none.
    domain: String,
    /// Repository path within the registry (`library/hello`).
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference as a user typed it. A reference with neither tag
    /// nor digest gets no tag here; see [`Reference::with_default_tag`].
    pub fn parse(s: &str) -> Result<Reference> {
        let bad =
            |why: &str| Error::invalid(format!("invalid reference format ({}): {why}", excerpt(s)));
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
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| bad(e.message()))?)),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            validate_tag(t).map_err(|why| bad(&why))?;
        }
        let (domain, path) = split_domain(name);
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
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Adds `:latest` when the reference has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        validate_tag(tag)
            .map_err(|why| Error::invalid(format!("invalid tag ({}): {why}", excerpt(tag))))?;
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository pinned to a digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The repository in Docker's familiar form: `hello`, `team/app`,
    /// `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The fully qualified repository: `docker.io/library/hello`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
}

impl fmt::Display for Reference {
    /// The familiar form with tag and digest: `hello:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar_name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn split_domain(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            let domain = if first == "index.docker.io" {
                DEFAULT_DOMAIN
            } else {
                first
            };
            (domain.to_string(), rest)
        }
        _ => (DEFAULT_DOMAIN.to_string(), name),
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn validate_component(c: &str) -> std::result::Result<(), String> {
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
fn validate_tag(t: &str) -> std::result::Result<(), String> {
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
fn validate_domain(d: &str) -> std::result::Result<(), String> {
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

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn normalizes_like_docker() {
        let r = p("hello").with_default_tag();
        assert_eq!(r.full_name(), "docker.io/library/hello");
        assert_eq!(r.to_string(), "hello:latest");
        assert_eq!(p("docker.io/library/hello:1").to_string(), "hello:1");
        assert_eq!(p("index.docker.io/team/app").to_string(), "team/app");
        assert_eq!(
            p("localhost:5000/app:v2").to_string(),
            "localhost:5000/app:v2"
        );
        assert_eq!(p("localhost:5000/app").tag(), None);
        assert_eq!(p("localhost/app").domain(), "localhost");
    }

    #[test]
    fn digests_and_tags() {
        let d = Digest::of(b"x");
        let r = p(&format!("app:1@{d}"));
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest(), Some(&d));
        assert_eq!(r.to_string(), format!("app:1@{d}"));
        let r = p(&format!("app@{d}")).with_default_tag();
        assert_eq!(r.tag(), None, "a digest reference gets no default tag");
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "",
            "Hello",
            "a//b",
            "-a",
            "a:",
            "a:.x",
            "a@sha256:zz",
            "a b",
            "a/",
            "a..b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let e = Reference::parse("Hello").unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
        for bad in [
            "evil.com#x/app",
            "user@evil.com/app",
            "a_b.com/app",
            "-a.com/app",
            "localhost:/app",
            "localhost:5x/app",
            "[::1/app",
            "[zz]:5000/app",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["[::1]:5000/app", "127.0.0.1:5000/a/b", "Reg.Example/app"] {
            assert!(Reference::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn lengths_are_distributions() {
        // 255 characters with the registry: docker.io/library/ is 18.
        let max = "a".repeat(NAME_TOTAL_LENGTH_MAX - "docker.io/library/".len());
        assert!(Reference::parse(&max).is_ok());
        let e = Reference::parse(&format!("{max}a")).unwrap_err();
        assert!(e.message().contains("255"), "{e}");
        let tag = "t".repeat(TAG_MAX);
        assert!(Reference::parse(&format!("app:{tag}")).is_ok());
        let e = Reference::parse(&format!("app:{tag}t")).unwrap_err();
        assert!(e.message().contains("128"), "{e}");
        assert!(p("app").with_tag(&format!("{tag}t")).is_err());
        let e = Reference::parse(&"a".repeat(10_000)).unwrap_err();
        assert!(e.message().len() < 300, "quotes a little: {e}");
        let host = format!("{}.example:5000", "r".repeat(240));
        assert!(Reference::parse(&format!("{host}/app")).is_err());
    }
}
