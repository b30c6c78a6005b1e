//! Docker-style image references, on the grammar of
//! `berth_api_types::reference`, which the CLI shares: `name`, `name:tag`, `name@sha256:...`,
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
use berth_api_types::reference as grammar;
pub use berth_api_types::reference::{DEFAULT_DOMAIN, DEFAULT_TAG, NAME_TOTAL_LENGTH_MAX, TAG_MAX};
use berth_api_types::reference::{excerpt, validate_tag};
use std::fmt;

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
        let parsed = grammar::parse(s).map_err(|e| Error::invalid(e.0))?;
        let digest = match &parsed.digest {
            Some(d) => Some(
                d.parse::<Digest>()
                    .map_err(|e| Error::invalid(grammar::invalid(s, e.message()).0))?,
            ),
            None => None,
        };
        Ok(Reference {
            domain: parsed.domain,
            path: parsed.path,
            tag: parsed.tag,
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
