//! One conversation with a registry for one repository: the credentials it
//! may use, the requests berth makes itself (the `/v2/` probe, logins,
//! token exchanges, manifests and blobs, every answer bounded in size and
//! time by [`Transport`]), and the oci-client a push uses.

use super::auth::{AuthConfig, Challenge, Creds, LoginStatus, parse_challenge, realm_allowed};
use super::transport::{ReadError, Transport, chain};
use super::{MAX_CLIENTS, Registry, RegistryError, RegistryResult, USER_AGENT, registry_host};
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
use std::sync::Mutex;

/// Every manifest type berth reads, for `Accept`.
const MANIFEST_TYPES: &[&str] = &[
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_LIST,
];
/// The largest token service answer read: tokens are a few KiB.
pub(crate) const MAX_TOKEN_RESPONSE: u64 = 1 << 20;
/// The largest error document read from a registry.
const MAX_ERROR_BODY: u64 = 64 << 10;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    host: String,
    scheme: &'static str,
    /// `anonymous`, or a hash of the credentials.
    identity: String,
}

/// How a bearer token is got again when it expires.
#[derive(Clone)]
struct TokenSource {
    realm: String,
    service: Option<String>,
    scope: String,
    creds: TokenCreds,
}

#[derive(Clone)]
enum TokenCreds {
    Anonymous,
    Basic(String, String),
    /// An OAuth refresh token (Docker's identity token).
    Refresh(String),
}

/// A registry and repository, with credentials settled.
pub(crate) struct Session {
    /// For pushes (berth's own requests serve pulls).
    pub client: Client,
    /// The repository, tagged as asked (or by digest).
    pub oref: oci_client::Reference,
    /// `host[:port]` as contacted (Docker Hub as `index.docker.io`).
    pub host: String,
    pub scheme: &'static str,
    transport: Transport,
    /// `Authorization` for berth's own requests to the registry.
    authorization: Mutex<Option<HeaderValue>>,
    /// How to renew `authorization` when the registry refuses it.
    token_source: Option<TokenSource>,
    /// Why credentials were kept back, to explain a later refusal.
    withheld: Option<String>,
}

/// A manifest or index as the registry served it.
pub(crate) struct Fetched {
    pub bytes: Bytes,
    pub digest: Digest,
    pub content_type: Option<String>,
}

fn bearer(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}")).ok()
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
        let creds = auth.credentials_for(&host);
        let challenge = match &creds {
            Some(Creds::Token(_)) => None,
            _ => self.probe(&host, scheme).await?,
        }
        .filter(Challenge::is_bearer);
        let scope = scope(reference.path(), op);
        let source = |creds: TokenCreds, ch: &Challenge| TokenSource {
            realm: ch.realm().unwrap_or("").to_string(),
            service: ch.service().map(str::to_string),
            scope: scope.clone(),
            creds,
        };
        let mut withheld = None;
        // What oci-client (pushes) authenticates with, and berth's own
        // token source.
        let (registry_auth, token_source) = match (creds, &challenge) {
            (Some(Creds::Token(t)), _) => (RegistryAuth::Bearer(t), None),
            (Some(Creds::Identity(token)), Some(ch)) => {
                realm_allowed(&host, scheme, ch.realm().unwrap_or("")).map_err(|why| {
                    RegistryError::unauthorized(format!(
                        "berth did not send your identity token for {host}: {why}"
                    ))
                })?;
                let src = source(TokenCreds::Refresh(token), ch);
                let t = self.transport.token(&host, &src, None).await?;
                (RegistryAuth::Bearer(t), Some(src))
            }
            (Some(Creds::Identity(_)), None) => (RegistryAuth::Anonymous, None),
            (Some(Creds::Basic(u, p)), Some(ch)) => {
                match realm_allowed(&host, scheme, ch.realm().unwrap_or("")) {
                    Ok(()) => (
                        RegistryAuth::Basic(u.clone(), p.clone()),
                        Some(source(TokenCreds::Basic(u, p), ch)),
                    ),
                    Err(why) => {
                        tracing::warn!(registry = %host, %why, "not sending credentials to the token service");
                        withheld = Some(format!(
                            "berth did not send your credentials for {host}: {why}"
                        ));
                        (
                            RegistryAuth::Anonymous,
                            Some(source(TokenCreds::Anonymous, ch)),
                        )
                    }
                }
            }
            (Some(Creds::Basic(u, p)), None) => (RegistryAuth::Basic(u, p), None),
            (None, Some(ch)) => (
                RegistryAuth::Anonymous,
                Some(source(TokenCreds::Anonymous, ch)),
            ),
            (None, None) => (RegistryAuth::Anonymous, None),
        };
        let authorization = match (&token_source, &registry_auth) {
            (Some(src), RegistryAuth::Bearer(t)) if matches!(src.creds, TokenCreds::Refresh(_)) => {
                bearer(t)
            }
            (Some(src), _) => bearer(
                &self
                    .transport
                    .token(&host, src, withheld.as_deref())
                    .await?,
            ),
            (None, RegistryAuth::Basic(u, p)) => {
                use base64::Engine as _;
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                HeaderValue::from_str(&format!("Basic {b}")).ok()
            }
            (None, RegistryAuth::Bearer(t)) => bearer(t),
            (None, RegistryAuth::Anonymous) => None,
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
        if op == RegistryOperation::Push {
            // oci-client authenticates its uploads itself, within the
            // connect and read timeouts (see push.rs).
            client
                .auth(&oref, &registry_auth, op)
                .await
                .map_err(|e| map_oci(&host, e, withheld.as_deref()))?;
        }
        Ok(Session {
            client,
            oref,
            host,
            scheme,
            transport: self.transport.clone(),
            authorization: Mutex::new(authorization.map(|mut h| {
                h.set_sensitive(true);
                h
            })),
            token_source,
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
            read_timeout: Some(self.transport.timeouts.stall),
            connect_timeout: Some(self.transport.timeouts.connect),
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
            .transport
            .send(self.transport.http.get(&url), &url, |e| {
                unreachable(host, scheme, &e)
            })
            .await?;
        if res.status() != StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        Ok(res
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_challenge))
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
        let t = &self.transport;
        match (challenge.is_bearer(), creds) {
            (_, None) => Ok(LoginStatus::Denied(format!(
                "{host} requires a username and password"
            ))),
            (false, Some(Creds::Basic(u, p))) => {
                let res = t
                    .send(t.http.get(&url).basic_auth(&u, Some(&p)), &url, |e| {
                        unreachable(&host, scheme, &e)
                    })
                    .await?;
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
                        let req = t.http.get(&realm).query(&q).basic_auth(&u, Some(&p));
                        let res = t
                            .send(req, &realm, |e| {
                                Error::internal(format!("token service {realm}: {}", chain(&e)))
                                    .into()
                            })
                            .await?;
                        if res.status().is_success() {
                            Ok(LoginStatus::Succeeded)
                        } else {
                            Ok(denied(res.status(), &realm))
                        }
                    }
                    Creds::Identity(token) => {
                        let src = TokenSource {
                            realm,
                            service: challenge.service().map(str::to_string),
                            scope: String::new(),
                            creds: TokenCreds::Refresh(token),
                        };
                        match t.token(&host, &src, None).await {
                            Ok(_) => Ok(LoginStatus::Succeeded),
                            Err(e) if e.unauthorized => Ok(LoginStatus::Denied(e.to_string())),
                            Err(e) => Err(e),
                        }
                    }
                    Creds::Token(_) => Ok(LoginStatus::Succeeded),
                }
            }
        }
    }
}

impl Transport {
    /// A bearer token from the token service `src` names, for the registry
    /// `host`: its answer read up to [`MAX_TOKEN_RESPONSE`] bytes, within
    /// the transport's time bounds. `withheld` explains a refusal when
    /// credentials were kept back.
    async fn token(
        &self,
        host: &str,
        src: &TokenSource,
        withheld: Option<&str>,
    ) -> RegistryResult<String> {
        let realm = src.realm.as_str();
        let req = match &src.creds {
            TokenCreds::Refresh(token) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", "berth"),
                ];
                if !src.scope.is_empty() {
                    form.push(("scope", src.scope.as_str()));
                }
                if let Some(s) = &src.service {
                    form.push(("service", s.as_str()));
                }
                self.http.post(realm).form(&form)
            }
            TokenCreds::Basic(u, p) => {
                let mut q = vec![("scope", src.scope.as_str()), ("client_id", "berth")];
                q.push(("account", u.as_str()));
                if let Some(s) = &src.service {
                    q.push(("service", s.as_str()));
                }
                self.http.get(realm).query(&q).basic_auth(u, Some(p))
            }
            TokenCreds::Anonymous => {
                let mut q = vec![("scope", src.scope.as_str())];
                if let Some(s) = &src.service {
                    q.push(("service", s.as_str()));
                }
                self.http.get(realm).query(&q)
            }
        };
        let failed = |m: String| -> RegistryError {
            Error::internal(format!("token service {realm}: {m}")).into()
        };
        let mut res = self
            .send(req, &format!("token service {realm}"), |e| {
                failed(chain(&e))
            })
            .await?;
        let status = res.status();
        let body = self
            .read_limited(&mut res, MAX_TOKEN_RESPONSE)
            .await
            .map_err(|e| failed(e.describe("the answer")))?;
        if !status.is_success() {
            let reason = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string();
            let what = match &src.creds {
                TokenCreds::Refresh(_) => "the identity token",
                _ => "the request",
            };
            let m = format!(
                "{host}: the token service {realm} refused {what}: {status}{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", crate::util::names::excerpt(&reason))
                }
            );
            return Err(RegistryError::unauthorized(match withheld {
                Some(w) => format!("{m} ({w})"),
                None => m,
            }));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            access_token: String,
            #[serde(default)]
            token: String,
        }
        let a: Answer = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("not a token answer: {e}")))?;
        let t = if a.access_token.is_empty() {
            a.token
        } else {
            a.access_token
        };
        if t.is_empty() {
            return Err(failed("the answer holds no token".into()));
        }
        Ok(t)
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
                crate::util::names::excerpt(reason.trim())
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
                .take(8)
                .map(|(e, c)| {
                    format!(
                        "{}: {}",
                        crate::util::names::excerpt(&c.to_lowercase()),
                        crate::util::names::excerpt(&e.message)
                    )
                })
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
            let msg = format!(
                "{url}: HTTP {code}: {}",
                crate::util::names::excerpt(message.trim())
            );
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
    pub fn repo(&self) -> &str {
        self.oref.repository()
    }

    /// GET `url` with berth's credentials for this registry (never sent to
    /// another host: reqwest drops `Authorization` on redirects that leave
    /// the host). When the registry refuses the token held, a new one is
    /// got once and the request sent again: tokens last minutes, and a
    /// long pull outlives one.
    async fn get(&self, url: &str, accept: Option<&str>) -> RegistryResult<reqwest::Response> {
        let mut renewed = false;
        loop {
            let mut req = self.transport.http.get(url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            let authorization = self.authorization.lock().unwrap().clone();
            if let Some(h) = authorization {
                req = req.header(AUTHORIZATION, h);
            }
            let res = self
                .transport
                .send(req, url, |e| unreachable(&self.host, self.scheme, &e))
                .await?;
            if res.status() == StatusCode::UNAUTHORIZED
                && !renewed
                && let Some(src) = &self.token_source
            {
                renewed = true;
                let t = self
                    .transport
                    .token(&self.host, src, self.withheld.as_deref())
                    .await?;
                *self.authorization.lock().unwrap() = bearer(&t).map(|mut h| {
                    h.set_sensitive(true);
                    h
                });
                continue;
            }
            return Ok(res);
        }
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
        let mut res = self.get(&url, Some(&MANIFEST_TYPES.join(", "))).await?;
        if !res.status().is_success() {
            let noun = format!("manifest for {}/{}:{tag_or_digest}", self.host, self.repo());
            return Err(self.status_error(&mut res, &url, &noun).await);
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
        let bytes = self
            .transport
            .read_limited(&mut res, MAX_MANIFEST_SIZE)
            .await
            .map_err(|e| match e {
                ReadError::TooBig => too_big(&url),
                e => Error::internal(e.describe(&format!("the manifest {url}"))).into(),
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

    /// The response to `GET` of the blob `digest`, once its headers say it
    /// is coming; the body is the caller's to read (at a pace, see
    /// [`Transport::pace`]).
    pub async fn blob(&self, digest: &Digest) -> RegistryResult<reqwest::Response> {
        let url = format!(
            "{}://{}/v2/{}/blobs/{digest}",
            self.scheme,
            self.host,
            self.repo()
        );
        let mut res = self.get(&url, None).await?;
        if !res.status().is_success() {
            let noun = format!("blob {digest} of {}/{}", self.host, self.repo());
            return Err(self.status_error(&mut res, &url, &noun).await);
        }
        Ok(res)
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The error for a response that is not a success: its status, and
    /// the registry's own words from its (bounded) error document.
    async fn status_error(
        &self,
        res: &mut reqwest::Response,
        url: &str,
        noun: &str,
    ) -> RegistryError {
        let status = res.status();
        let body = &self
            .transport
            .read_limited(res, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
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
                    .take(8)
                    .map(|i| {
                        format!(
                            "{}: {}",
                            crate::util::names::excerpt(&i.code.to_lowercase()),
                            crate::util::names::excerpt(&i.message)
                        )
                    })
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
            StatusCode::NOT_FOUND => Error::not_found(format!("{noun} not found: {detail}")).into(),
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
