//! One conversation with a registry for one repository: the oci-client to
//! use, the credentials it may use, and the requests berth makes itself
//! (the `/v2/` probe, logins, identity-token exchanges, and manifests,
//! which are read with a size limit that oci-client does not have).

use super::auth::{AuthConfig, Challenge, Creds, LoginStatus, parse_challenge, realm_allowed};
use super::{
    CONNECT_TIMEOUT, MAX_CLIENTS, READ_TIMEOUT, Registry, RegistryError, RegistryResult,
    USER_AGENT, registry_host,
};
use crate::error::{Error, ErrorKind};
use crate::image::Reference;
use crate::image::manifest::{MAX_MANIFEST_SIZE, media};
use crate::util::Digest;
use bytes::Bytes;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use sha2::Digest as _;

/// Every manifest type berth reads, for `Accept`.
const MANIFEST_TYPES: &[&str] = &[
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_LIST,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    host: String,
    scheme: &'static str,
    /// `anonymous`, or a hash of the credentials.
    identity: String,
}

/// A registry and repository, with credentials settled.
pub(crate) struct Session {
    pub client: Client,
    /// The repository, tagged as asked (or by digest).
    pub oref: oci_client::Reference,
    /// `host[:port]` as contacted (Docker Hub as `index.docker.io`).
    pub host: String,
    pub scheme: &'static str,
    http: reqwest::Client,
    /// `Authorization` for berth's own requests to the registry.
    authorization: Option<HeaderValue>,
    /// Why credentials were kept back, to explain a later refusal.
    withheld: Option<String>,
}

/// A manifest or index as the registry served it.
pub(crate) struct Fetched {
    pub bytes: Bytes,
    pub digest: Digest,
    pub content_type: Option<String>,
}

impl Registry {
    /// Opens a session on `reference`'s repository for `op`, settling which
    /// credentials may be used (see `auth.rs`) and getting a token when the
    /// registry wants one.
    pub(crate) async fn session(
        &self,
        reference: &Reference,
        auth: &AuthConfig,
        op: RegistryOperation,
    ) -> RegistryResult<Session> {
        let host = registry_host(reference.domain());
        let scheme = self.scheme_for(&host);
        let mut withheld = None;
        let registry_auth = match auth.credentials_for(&host) {
            None => RegistryAuth::Anonymous,
            Some(Creds::Token(t)) => RegistryAuth::Bearer(t),
            Some(Creds::Basic(u, p)) => match self.probe(&host, scheme).await? {
                Some(ch) if ch.is_bearer() => {
                    match realm_allowed(&host, scheme, ch.realm().unwrap_or("")) {
                        Ok(()) => RegistryAuth::Basic(u, p),
                        Err(why) => {
                            tracing::warn!(registry = %host, %why, "not sending credentials to the token service");
                            withheld = Some(format!(
                                "berth did not send your credentials for {host}: {why}"
                            ));
                            RegistryAuth::Anonymous
                        }
                    }
                }
                _ => RegistryAuth::Basic(u, p),
            },
            Some(Creds::Identity(token)) => {
                let ch = self.probe(&host, scheme).await?;
                match ch.filter(Challenge::is_bearer) {
                    Some(ch) => {
                        realm_allowed(&host, scheme, ch.realm().unwrap_or("")).map_err(|why| {
                            RegistryError::unauthorized(format!(
                                "berth did not send your identity token for {host}: {why}"
                            ))
                        })?;
                        let scope = scope(reference.path(), op);
                        RegistryAuth::Bearer(self.refresh(&ch, &token, &scope).await?)
                    }
                    None => RegistryAuth::Anonymous,
                }
            }
        };
        let client = self.client(&host, scheme, &registry_auth);
        let path = reference.path().to_string();
        // oci-client names Docker Hub `docker.io` and resolves it itself.
        let domain = if host == super::HUB_HOST {
            "docker.io".to_string()
        } else {
            host.clone()
        };
        let oref = match reference.digest() {
            Some(d) => oci_client::Reference::with_digest(domain, path, d.to_string()),
            None => oci_client::Reference::with_tag(
                domain,
                path,
                reference.tag().unwrap_or("latest").to_string(),
            ),
        };
        let token = client
            .auth(&oref, &registry_auth, op)
            .await
            .map_err(|e| map_oci(&host, e, withheld.as_deref()))?;
        let authorization = match (token, &registry_auth) {
            (Some(t), _) => HeaderValue::from_str(&format!("Bearer {t}")).ok(),
            (None, RegistryAuth::Basic(u, p)) => {
                use base64::Engine as _;
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                HeaderValue::from_str(&format!("Basic {b}")).ok()
            }
            (None, RegistryAuth::Bearer(t)) => HeaderValue::from_str(&format!("Bearer {t}")).ok(),
            (None, RegistryAuth::Anonymous) => None,
        };
        Ok(Session {
            client,
            oref,
            host,
            scheme,
            http: self.http.clone(),
            authorization: authorization.map(|mut h| {
                h.set_sensitive(true);
                h
            }),
            withheld,
        })
    }

    /// The reusable oci-client for a registry and identity.
    fn client(&self, host: &str, scheme: &'static str, auth: &RegistryAuth) -> Client {
        let identity = match auth {
            RegistryAuth::Anonymous => "anonymous".to_string(),
            RegistryAuth::Basic(u, p) => hash_identity(&["basic", u, p]),
            RegistryAuth::Bearer(t) => hash_identity(&["bearer", t]),
        };
        let key = ClientKey {
            host: host.to_string(),
            scheme,
            identity,
        };
        let mut clients = self.clients.lock().unwrap();
        if let Some(c) = clients.get(&key) {
            return c.clone();
        }
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        let config = oci_client::client::ClientConfig {
            protocol: if scheme == "http" {
                oci_client::client::ClientProtocol::Http
            } else {
                oci_client::client::ClientProtocol::Https
            },
            // One PUT per blob, streamed from the file.
            use_monolithic_push: true,
            // berth picks platforms itself (image::manifest::choose_platform).
            platform_resolver: None,
            read_timeout: Some(READ_TIMEOUT),
            connect_timeout: Some(CONNECT_TIMEOUT),
            user_agent: USER_AGENT,
            ..Default::default()
        };
        let client = Client::new(config);
        clients.insert(key, client.clone());
        client
    }

    /// `GET /v2/` without credentials: the challenge, if the registry wants
    /// authentication.
    pub(crate) async fn probe(
        &self,
        host: &str,
        scheme: &str,
    ) -> RegistryResult<Option<Challenge>> {
        let url = format!("{scheme}://{host}/v2/");
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| unreachable(host, scheme, &e))?;
        if res.status() != StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        Ok(res
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_challenge))
    }

    /// Exchanges an OAuth refresh token (Docker's identity token) for an
    /// access token at the token service.
    async fn refresh(&self, ch: &Challenge, token: &str, scope: &str) -> RegistryResult<String> {
        let realm = ch.realm().unwrap_or("");
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", "berth"),
            ("scope", scope),
        ];
        if let Some(s) = ch.service() {
            form.push(("service", s));
        }
        let res = self
            .http
            .post(realm)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                RegistryError::from(Error::internal(format!("token service {realm}: {e}")))
            })?;
        let status = res.status();
        if !status.is_success() {
            return Err(RegistryError::unauthorized(format!(
                "the token service {realm} refused the identity token: {status}"
            )));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            access_token: String,
            #[serde(default)]
            token: String,
        }
        let a: Answer = res.json().await.map_err(|e| {
            RegistryError::from(Error::internal(format!("token service {realm}: {e}")))
        })?;
        Ok(if a.access_token.is_empty() {
            a.token
        } else {
            a.access_token
        })
    }

    /// `POST /auth`: checks credentials against the registry, as
    /// `docker login` does, without storing anything.
    pub async fn login(&self, auth: &AuthConfig) -> RegistryResult<LoginStatus> {
        let server = if auth.serveraddress.is_empty() {
            super::HUB_SERVER
        } else {
            auth.serveraddress.as_str()
        };
        let host = registry_host(server);
        let scheme = self.scheme_for(&host);
        let url = format!("{scheme}://{host}/v2/");
        let Some(challenge) = self.probe(&host, scheme).await? else {
            // The registry does not ask for credentials.
            return Ok(LoginStatus::Succeeded);
        };
        let creds = AuthConfig {
            serveraddress: String::new(),
            ..auth.clone()
        }
        .credentials();
        let denied = |status: StatusCode, at: &str| {
            LoginStatus::Denied(format!(
                "login attempt to {at} failed with status: {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ))
        };
        match (challenge.is_bearer(), creds) {
            (_, None) => Ok(LoginStatus::Denied(format!(
                "{host} requires a username and password"
            ))),
            (false, Some(Creds::Basic(u, p))) => {
                let res = self
                    .http
                    .get(&url)
                    .basic_auth(&u, Some(&p))
                    .send()
                    .await
                    .map_err(|e| unreachable(&host, scheme, &e))?;
                if res.status().is_success() {
                    Ok(LoginStatus::Succeeded)
                } else {
                    Ok(denied(res.status(), &url))
                }
            }
            (false, Some(_)) => Ok(LoginStatus::Denied(format!(
                "{host} takes a username and password, not a token"
            ))),
            (true, Some(creds)) => {
                let realm = challenge.realm().unwrap_or("").to_string();
                realm_allowed(&host, scheme, &realm).map_err(|why| {
                    RegistryError::from(Error::invalid(format!(
                        "refusing to log in to {host}: {why}"
                    )))
                })?;
                match creds {
                    Creds::Basic(u, p) => {
                        let mut q = vec![("account", u.clone()), ("client_id", "berth".into())];
                        if let Some(s) = challenge.service() {
                            q.push(("service", s.to_string()));
                        }
                        let res = self
                            .http
                            .get(&realm)
                            .query(&q)
                            .basic_auth(&u, Some(&p))
                            .send()
                            .await
                            .map_err(|e| {
                                RegistryError::from(Error::internal(format!(
                                    "token service {realm}: {e}"
                                )))
                            })?;
                        if res.status().is_success() {
                            Ok(LoginStatus::Succeeded)
                        } else {
                            Ok(denied(res.status(), &realm))
                        }
                    }
                    Creds::Identity(t) => match self.refresh(&challenge, &t, "").await {
                        Ok(_) => Ok(LoginStatus::Succeeded),
                        Err(e) if e.unauthorized => Ok(LoginStatus::Denied(e.to_string())),
                        Err(e) => Err(e),
                    },
                    Creds::Token(_) => Ok(LoginStatus::Succeeded),
                }
            }
        }
    }
}

fn scope(path: &str, op: RegistryOperation) -> String {
    match op {
        RegistryOperation::Pull => format!("repository:{path}:pull"),
        RegistryOperation::Push => format!("repository:{path}:pull,push"),
    }
}

fn hash_identity(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// A connection-level failure, with the fix when it is a scheme mismatch.
pub(crate) fn unreachable(host: &str, scheme: &str, e: &reqwest::Error) -> RegistryError {
    let mut msg = format!(
        "cannot reach the registry {host} over {scheme}: {}",
        chain(e)
    );
    if scheme == "https" {
        msg.push_str(&format!(
            " (if {host} serves plain HTTP, start berthd with --insecure-registry {host})"
        ));
    }
    Error::internal(msg).into()
}

/// An error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

/// An oci-client error in berth's words.
pub(crate) fn map_oci(
    host: &str,
    e: OciDistributionError,
    withheld: Option<&str>,
) -> RegistryError {
    let with_note = |m: String| match withheld {
        Some(w) => format!("{m} ({w})"),
        None => m,
    };
    match e {
        OciDistributionError::UnauthorizedError { url } => {
            RegistryError::unauthorized(with_note(format!(
                "{url}: unauthorized: authentication required; log in with 'berth login {host}'"
            )))
        }
        OciDistributionError::AuthenticationFailure(reason) => {
            RegistryError::unauthorized(with_note(format!(
                "{host}: the token service refused the request: {}",
                reason.trim()
            )))
        }
        OciDistributionError::RegistryError { envelope, url } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| {
                    serde_json::to_value(&e.code)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .collect();
            let text = envelope
                .errors
                .iter()
                .zip(&codes)
                .map(|(e, c)| format!("{}: {}", c.to_lowercase(), e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let msg = format!("{url}: {text}");
            if codes.iter().any(|c| c == "UNAUTHORIZED" || c == "DENIED") {
                RegistryError::unauthorized(with_note(msg))
            } else if codes.iter().any(|c| c.ends_with("UNKNOWN")) {
                Error::not_found(msg).into()
            } else {
                Error::internal(msg).into()
            }
        }
        OciDistributionError::ServerError { code, url, message } => {
            let msg = format!("{url}: HTTP {code}: {}", message.trim());
            match code {
                401 | 403 => RegistryError::unauthorized(with_note(msg)),
                404 => Error::not_found(msg).into(),
                _ => Error::internal(msg).into(),
            }
        }
        OciDistributionError::DigestError(d) => Error::invalid(format!(
            "content from {host} does not match its digest: {d}"
        ))
        .into(),
        OciDistributionError::RequestError(r) => match r.status() {
            Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                RegistryError::unauthorized(with_note(format!(
                    "registry {host}: {}; log in with 'berth login {host}'",
                    chain(&r)
                )))
            }
            _ if r.is_connect() || r.is_timeout() => {
                let scheme = r.url().map(|u| u.scheme().to_string());
                unreachable(host, scheme.as_deref().unwrap_or("https"), &r)
            }
            _ => Error::internal(format!("registry {host}: {}", chain(&r))).into(),
        },
        other => Error::internal(format!("registry {host}: {}", chain(&other))).into(),
    }
}

impl Session {
    /// `Authorization` as berth sends it to this registry (never to another
    /// host: reqwest drops it on redirects that leave the host).
    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.authorization {
            Some(h) => req.header(AUTHORIZATION, h.clone()),
            None => req,
        }
    }

    pub fn repo(&self) -> &str {
        self.oref.repository()
    }

    /// A manifest or index by tag or digest, read up to
    /// [`MAX_MANIFEST_SIZE`] bytes and checked: against `digest` when the
    /// reference names one, and against the registry's
    /// `Docker-Content-Digest` header.
    pub async fn manifest(&self, tag_or_digest: &str) -> RegistryResult<Fetched> {
        let url = format!(
            "{}://{}/v2/{}/manifests/{tag_or_digest}",
            self.scheme,
            self.host,
            self.repo()
        );
        let req = self
            .http
            .get(&url)
            .header(ACCEPT, MANIFEST_TYPES.join(", "));
        let mut res = self
            .authorize(req)
            .send()
            .await
            .map_err(|e| unreachable(&self.host, self.scheme, &e))?;
        let status = res.status();
        if !status.is_success() {
            let body = read_limited(&mut res, 64 << 10).await.unwrap_or_default();
            return Err(self.status_error(status, &url, &body, tag_or_digest));
        }
        if res.content_length().is_some_and(|n| n > MAX_MANIFEST_SIZE) {
            return Err(too_big(&url));
        }
        let content_type = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let header_digest = res
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_limited(&mut res, MAX_MANIFEST_SIZE)
            .await
            .map_err(|e| match e {
                ReadError::TooBig => too_big(&url),
                ReadError::Io(e) => Error::internal(format!("reading {url}: {e}")).into(),
            })?;
        let digest = Digest::of(&bytes);
        if let Ok(want) = tag_or_digest.parse::<Digest>()
            && want != digest
        {
            return Err(Error::invalid(format!(
                "the manifest {url} does not match its digest: expected {want}, got {digest}"
            ))
            .into());
        }
        if let Some(h) = header_digest
            && h.starts_with("sha256:")
            && h != digest.to_string()
        {
            return Err(Error::invalid(format!(
                "the manifest {url} does not match the digest the registry gives for it: \
                 expected {h}, got {digest}"
            ))
            .into());
        }
        Ok(Fetched {
            bytes,
            digest,
            content_type,
        })
    }

    fn status_error(
        &self,
        status: StatusCode,
        url: &str,
        body: &[u8],
        what: &str,
    ) -> RegistryError {
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(default)]
            errors: Vec<Item>,
        }
        #[derive(serde::Deserialize)]
        struct Item {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        let detail = serde_json::from_slice::<Envelope>(body)
            .ok()
            .filter(|e| !e.errors.is_empty())
            .map(|e| {
                e.errors
                    .iter()
                    .map(|i| format!("{}: {}", i.code.to_lowercase(), i.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_else(|| {
                format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
            });
        let note = |m: String| match &self.withheld {
            Some(w) => format!("{m} ({w})"),
            None => m,
        };
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                RegistryError::unauthorized(note(format!(
                    "{url}: {detail}; log in with 'berth login {}' if the repository needs credentials",
                    self.host
                )))
            }
            StatusCode::NOT_FOUND => Error::not_found(format!(
                "manifest for {}/{}:{what} not found: {detail}",
                self.host,
                self.repo()
            ))
            .into(),
            _ => Error::new(ErrorKind::Internal, format!("{url}: {detail}")).into(),
        }
    }
}

fn too_big(url: &str) -> RegistryError {
    Error::invalid(format!(
        "the manifest {url} is larger than the {MAX_MANIFEST_SIZE}-byte limit"
    ))
    .into()
}

enum ReadError {
    TooBig,
    Io(reqwest::Error),
}

/// A response body of at most `limit` bytes.
async fn read_limited(res: &mut reqwest::Response, limit: u64) -> Result<Bytes, ReadError> {
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(ReadError::Io)? {
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(ReadError::TooBig);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}
