//! Credentials: the `X-Registry-Auth` header Docker clients send, the
//! `WWW-Authenticate` challenges registries answer with, and the rule that
//! keeps credentials on the registry they belong to.
//!
//! Registries either take HTTP basic auth themselves or send clients to a
//! token service (the challenge's `realm`). oci-client sends basic
//! credentials to whatever realm a registry names, over any scheme; berth
//! checks the realm first ([`realm_allowed`]) and only lets credentials go
//! to the registry's own host or its own domain (Docker Hub's
//! `index.docker.io` and `auth.docker.io`), over HTTPS unless the registry
//! itself is a plain-HTTP one on that same host. Redirects are left to
//! reqwest, which drops `Authorization` when a redirect leaves the host.

use crate::error::{Error, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Docker Hub's registry host (as oci-client resolves `docker.io`) and
/// the key Docker uses for it in `config.json` and `/auth`.
pub use berth_api_types::reference::{HUB_HOST, HUB_SERVER};

/// An auth config as Docker clients send it: in the `X-Registry-Auth`
/// header (base64url JSON) for pull and push, and as the body of
/// `POST /auth`.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    /// `base64(username:password)`, as `config.json` keeps it.
    pub auth: String,
    pub email: String,
    pub serveraddress: String,
    /// An OAuth refresh token a login returned.
    pub identitytoken: String,
    /// A bearer token to send to the registry as is.
    pub registrytoken: String,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .field(
                "password",
                &(!self.password.is_empty()).then_some("<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// What a request can authenticate with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Creds {
    Basic(String, String),
    /// An OAuth refresh token, exchanged at the token service.
    Identity(String),
    /// A bearer token for the registry.
    Token(String),
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header: base64url (padded or not, and
    /// leniently standard base64) of a JSON auth config. Empty means none.
    pub fn from_header(value: &str) -> Result<AuthConfig> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(AuthConfig::default());
        }
        let bad = |why: String| Error::invalid(format!("invalid X-Registry-Auth header: {why}"));
        let bytes = [
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
        ]
        .iter()
        .find_map(|e| e.decode(value).ok())
        .ok_or_else(|| bad("not base64".into()))?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(AuthConfig::default());
        }
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a JSON auth config: {e}")))
    }

    pub fn is_empty(&self) -> bool {
        self.credentials().is_none()
    }

    /// The credentials this config carries, if any.
    pub(crate) fn credentials(&self) -> Option<Creds> {
        if !self.registrytoken.is_empty() {
            return Some(Creds::Token(self.registrytoken.clone()));
        }
        if !self.identitytoken.is_empty() {
            return Some(Creds::Identity(self.identitytoken.clone()));
        }
        if !self.username.is_empty() || !self.password.is_empty() {
            return Some(Creds::Basic(self.username.clone(), self.password.clone()));
        }
        if !self.auth.is_empty() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (u, p) = text.split_once(':')?;
            return Some(Creds::Basic(u.to_string(), p.to_string()));
        }
        None
    }

    /// The credentials to use with the registry `host`: none when the
    /// config names another server, so that credentials meant for one
    /// registry never reach another.
    pub(crate) fn credentials_for(&self, host: &str) -> Option<Creds> {
        let creds = self.credentials()?;
        if !self.serveraddress.is_empty() && registry_host(&self.serveraddress) != host {
            tracing::warn!(
                server = %self.serveraddress,
                registry = host,
                "ignoring credentials given for another registry"
            );
            return None;
        }
        Some(creds)
    }
}

/// The registry host a server address or reference domain names: the
/// one function, shared with the CLI.
pub use berth_api_types::reference::registry_host;

/// The longest `WWW-Authenticate` header berth reads.
pub(crate) const MAX_CHALLENGE: usize = 8 << 10;
pub(crate) const MAX_CHALLENGE_PARAMS: usize = 16;

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// `bearer` or `basic`, lowercased.
    pub scheme: String,
    pub params: HashMap<String, String>,
}

impl Challenge {
    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }
    pub fn realm(&self) -> Option<&str> {
        self.params.get("realm").map(String::as_str)
    }
    pub fn service(&self) -> Option<&str> {
        self.params.get("service").map(String::as_str)
    }
}

/// Parses `Bearer realm="https://auth.example/token",service="registry"`
/// (quoted or bare values; the first challenge when there are several).
/// A challenge longer than [`MAX_CHALLENGE`] bytes, or with more than
/// [`MAX_CHALLENGE_PARAMS`] parameters, is ignored (real ones are a few
/// hundred bytes with three).
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    if header.len() > MAX_CHALLENGE {
        tracing::warn!(
            bytes = header.len(),
            "ignoring a registry's WWW-Authenticate header: too long"
        );
        return None;
    }
    let header = header.trim();
    let (scheme, rest) = match header.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r.trim()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = rest[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            // A token68 or a new challenge: stop at what we have.
            break;
        }
        i += 1;
        let mut value = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            value = rest[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            params.insert(key, value);
        }
        if params.len() > MAX_CHALLENGE_PARAMS {
            tracing::warn!("ignoring a registry's WWW-Authenticate header: too many parameters");
            return None;
        }
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// Whether the token service `realm` may receive the credentials of the
/// registry `host` reached over `scheme`. The realm must be the registry's
/// own host, or in the registry's own domain (a sibling or parent of a
/// registry host of three labels or more, or a subdomain of it), and must
/// be HTTPS unless the registry is plain HTTP and the realm is on its very
/// host and port. On refusal, says why.
pub(crate) fn realm_allowed(
    host: &str,
    scheme: &str,
    realm: &str,
) -> std::result::Result<(), String> {
    let url = reqwest::Url::parse(realm)
        .map_err(|e| format!("its token service address {realm:?} is not a URL ({e})"))?;
    let realm_host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let (reg_name, reg_port) = split_host_port(host);
    let same_name = realm_host == reg_name;
    let same_port = url.port_or_known_default()
        == reg_port.or(if scheme == "http" {
            Some(80)
        } else {
            Some(443)
        });
    match url.scheme() {
        "https" => {}
        "http" if scheme == "http" && same_name && same_port => return Ok(()),
        other => {
            return Err(format!(
                "its token service {realm} is not HTTPS ({other}); berth sends credentials in \
                 the clear only to a plain-HTTP registry's own host"
            ));
        }
    }
    if same_name {
        return Ok(());
    }
    let is_ip = reg_name.parse::<std::net::IpAddr>().is_ok()
        || reg_name
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    if !is_ip {
        let labels: Vec<&str> = reg_name.split('.').collect();
        // `registry.example.com` may use `auth.example.com` or
        // `example.com`; `example.com` may use `auth.example.com`.
        let domain = if labels.len() >= 3 {
            labels[1..].join(".")
        } else {
            reg_name.to_string()
        };
        if domain.contains('.')
            && (realm_host == domain || realm_host.ends_with(&format!(".{domain}")))
        {
            return Ok(());
        }
    }
    Err(format!(
        "its token service is on another host ({realm_host}); berth sends credentials only to \
         the registry's own host and domain"
    ))
}

/// `host:port` into the lowercased host name and the port.
fn split_host_port(host: &str) -> (String, Option<u16>) {
    let h = host.to_ascii_lowercase();
    if let Some(rest) = h.strip_prefix('[') {
        // [::1]:5000
        if let Some((addr, port)) = rest.split_once(']') {
            return (
                addr.to_string(),
                port.strip_prefix(':').and_then(|p| p.parse().ok()),
            );
        }
    }
    match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name.to_string(), port.parse().ok()),
        _ => (h, None),
    }
}

/// Whether `host` (with or without a port) is this machine: `localhost`,
/// `127.0.0.0/8` or `::1`. Such registries are reached over plain HTTP.
pub fn is_loopback(host: &str) -> bool {
    let (name, _) = split_host_port(host);
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The outcome of `POST /auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStatus {
    Succeeded,
    /// The registry refused the credentials; the message says where.
    Denied(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    #[test]
    fn decodes_docker_auth_headers() {
        let a = AuthConfig::from_header(&header(
            r#"{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}"#,
        ))
        .unwrap();
        assert!(matches!(a.credentials(), Some(Creds::Basic(u, p)) if u == "u" && p == "p?>"));
        // Unpadded, and standard base64, are read too.
        let raw = r#"{"identitytoken":"tok"}"#;
        let unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let a = AuthConfig::from_header(&unpadded).unwrap();
        assert!(matches!(a.credentials(), Some(Creds::Identity(t)) if t == "tok"));
        // `auth` as config.json keeps it.
        let a = AuthConfig::from_header(&header(r#"{"auth":"dTpwOnE="}"#)).unwrap();
        assert!(matches!(a.credentials(), Some(Creds::Basic(u, p)) if u == "u" && p == "p:q"));
        assert!(AuthConfig::from_header("").unwrap().is_empty());
        assert!(AuthConfig::from_header("e30=").unwrap().is_empty());
        assert!(AuthConfig::from_header("%%%").is_err());
        assert!(AuthConfig::from_header(&header("[1]")).is_err());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let a = AuthConfig {
            username: "u".into(),
            password: "hunter2".into(),
            ..Default::default()
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    #[test]
    fn credentials_stay_with_their_registry() {
        let a = AuthConfig {
            username: "u".into(),
            password: "p".into(),
            serveraddress: "https://registry.example:5000/v2/".into(),
            ..Default::default()
        };
        assert!(a.credentials_for("registry.example:5000").is_some());
        assert!(a.credentials_for("other.example").is_none());
        let hub = AuthConfig {
            serveraddress: HUB_SERVER.into(),
            ..a.clone()
        };
        assert!(hub.credentials_for(&registry_host("docker.io")).is_some());
        let unnamed = AuthConfig {
            serveraddress: String::new(),
            ..a
        };
        assert!(unnamed.credentials_for("anything.example").is_some());
    }

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull""#,
        )
        .unwrap();
        assert!(c.is_bearer());
        assert_eq!(c.realm(), Some("https://auth.docker.io/token"));
        assert_eq!(c.service(), Some("registry.docker.io"));
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.realm(), Some("Registry Realm"));
        let c = parse_challenge("bearer realm=https://h/t, service=s").unwrap();
        assert_eq!(c.realm(), Some("https://h/t"));
        let long = format!(r#"Bearer realm="https://h/{}""#, "t".repeat(MAX_CHALLENGE));
        assert!(parse_challenge(&long).is_none());
        let many: Vec<String> = (0..=MAX_CHALLENGE_PARAMS)
            .map(|i| format!("k{i}=v"))
            .collect();
        assert!(parse_challenge(&format!("Bearer {}", many.join(","))).is_none());
        assert_eq!(c.service(), Some("s"));
    }

    #[test]
    fn realms_must_stay_on_the_registry() {
        let ok = |h: &str, s: &str, r: &str| realm_allowed(h, s, r).is_ok();
        assert!(ok(HUB_HOST, "https", "https://auth.docker.io/token"));
        assert!(ok("ghcr.io", "https", "https://ghcr.io/token"));
        assert!(ok(
            "registry.gitlab.com",
            "https",
            "https://gitlab.com/jwt/auth"
        ));
        assert!(ok("quay.io", "https", "https://auth.quay.io/token"));
        assert!(ok("127.0.0.1:5000", "http", "http://127.0.0.1:5000/token"));
        // Another host, an IP's neighbour, or a downgrade to HTTP: refused.
        assert!(!ok(
            "registry.example.com",
            "https",
            "https://evil.example.net/t"
        ));
        assert!(!ok("ghcr.io", "https", "https://evil.io/token"));
        assert!(!ok("127.0.0.1:5000", "http", "http://127.0.0.1:6000/token"));
        assert!(!ok("127.0.0.1:5000", "http", "https://127.0.0.2/token"));
        assert!(!ok("ghcr.io", "https", "http://ghcr.io/token"));
        assert!(!ok("ghcr.io", "https", "file:///etc/passwd"));
        let why = realm_allowed("a.example.com", "https", "https://b.other.org/t").unwrap_err();
        assert!(why.contains("b.other.org"), "{why}");
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "registry.example:5000",
            "10.0.0.1:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
