//! `berth login`: check credentials with a registry (through the daemon,
//! `POST /auth`) and keep them in Docker's `config.json`
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), so that
//! berth and docker share logins. Also the lookup that pull and push use to
//! send `X-Registry-Auth`, as the docker CLI does.
//!
//! Credentials live under `auths` as `{"auth": base64(user:password)}`
//! (or `identitytoken`), keyed by registry host, Docker Hub as
//! `https://index.docker.io/v1/`; a `credsStore` or `credHelpers` entry
//! sends them to a `docker-credential-*` helper instead, as in docker.
//! Other keys of the file are kept as they are.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use clap::Args;
use serde_json::{Map, Value, json};

use crate::client::Client;

/// Docker Hub's key in `config.json` (its server address for `/auth`)
/// and its registry host: the runtime's, from the wire-types crate.
pub use berth_api_types::reference::{HUB_HOST, HUB_SERVER};

/// Log in to a registry
#[derive(Args, Debug)]
pub struct LoginCommand {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,

    /// Password
    #[arg(short = 'p', long)]
    pub password: Option<String>,

    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,

    /// The registry (Docker Hub when omitted)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

impl LoginCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let key = server_key(self.server.as_deref().unwrap_or(HUB_SERVER));
        if self.password.is_some() && self.password_stdin {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        if self.password.is_some() {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        }
        let mut config = ConfigFile::load()?;
        let username = match self.username.filter(|u| !u.is_empty()) {
            Some(u) => u,
            None => {
                if self.password_stdin {
                    bail!("Must provide --username with --password-stdin");
                }
                let stored = config
                    .get(&key)
                    .map(|c| c.username)
                    .filter(|u| !u.is_empty());
                prompt_username(stored.as_deref())?
            }
        };
        let password = if self.password_stdin {
            let mut s = String::new();
            io::stdin()
                .read_to_string(&mut s)
                .context("reading the password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        } else {
            match self.password {
                Some(p) => p,
                None => prompt_password()?,
            }
        };
        if password.is_empty() {
            bail!("Error: Password Required");
        }
        let answer = client
            .registry_login(&json!({
                "username": username,
                "password": password,
                "serveraddress": key,
            }))
            .await?;
        let token = answer["IdentityToken"].as_str().unwrap_or("").to_string();
        let creds = if token.is_empty() {
            Credentials {
                username,
                password,
                identity_token: String::new(),
            }
        } else {
            Credentials {
                username,
                password: String::new(),
                identity_token: token,
            }
        };
        config.set(&key, &creds)?;
        config.save()?;
        println!("{}", answer["Status"].as_str().unwrap_or("Login Succeeded"));
        Ok(0)
    }
}

fn prompt_username(stored: Option<&str>) -> Result<String> {
    if !io::stdin().is_terminal() {
        bail!("Cannot perform an interactive login from a non TTY device");
    }
    match stored {
        Some(s) => eprint!("Username ({s}): "),
        None => eprint!("Username: "),
    }
    io::stderr().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    let line = line.trim().to_string();
    match (line.is_empty(), stored) {
        (true, Some(s)) => Ok(s.to_string()),
        (true, None) => bail!("Error: Non-null Username Required"),
        (false, _) => Ok(line),
    }
}

fn prompt_password() -> Result<String> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    use std::os::fd::AsFd;
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        bail!("Cannot perform an interactive login from a non TTY device");
    }
    eprint!("Password: ");
    io::stderr().flush()?;
    let fd = stdin.as_fd();
    let saved = termios::tcgetattr(fd).map_err(io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    termios::tcsetattr(fd, SetArg::TCSANOW, &quiet).map_err(io::Error::from)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &saved);
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// What is kept for one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub identity_token: String,
}

/// The registry host a server address or reference domain names.
pub use berth_api_types::reference::registry_host;

/// The `config.json` key for a registry, as `docker login` writes it.
pub fn server_key(server: &str) -> String {
    let host = registry_host(server);
    if host == HUB_HOST {
        HUB_SERVER.to_string()
    } else {
        host
    }
}

/// Docker's client configuration file.
pub struct ConfigFile {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json`.
pub fn config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker").join("config.json")
}

impl ConfigFile {
    pub fn load() -> Result<ConfigFile> {
        let path = config_path();
        let doc = match std::fs::read(&path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => m,
                Ok(_) | Err(_) => {
                    bail!("{} is not a JSON object; fix or remove it", path.display())
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(ConfigFile { path, doc })
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn save(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = self.path.parent().expect("config.json has a directory");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(".config.json.{}", std::process::id()));
        let mut text = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))?;
        text.push(b'\n');
        let write = (|| -> io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = write {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", self.path.display()));
        }
        Ok(())
    }

    /// The credential helper for `key`, if the file names one.
    fn helper(&self, key: &str) -> Option<String> {
        let host = registry_host(key);
        if let Some(Value::Object(h)) = self.doc.get("credHelpers") {
            for (k, v) in h {
                if registry_host(k) == host
                    && let Some(name) = v.as_str().filter(|s| !s.is_empty())
                {
                    return Some(name.to_string());
                }
            }
        }
        self.doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    /// The credentials kept for `key` (a `server_key`), from a helper or
    /// from `auths` (matching keys by host, as docker does).
    pub fn get(&self, key: &str) -> Option<Credentials> {
        if let Some(h) = self.helper(key)
            && let Some(c) = helper_get(&h, key)
        {
            return Some(c);
        }
        let auths = self.auths()?;
        let host = registry_host(key);
        let entry = auths.get(key).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| registry_host(k) == host)
                .map(|(_, v)| v)
        })?;
        let mut c = Credentials {
            username: entry["username"].as_str().unwrap_or("").to_string(),
            password: entry["password"].as_str().unwrap_or("").to_string(),
            identity_token: entry["identitytoken"].as_str().unwrap_or("").to_string(),
        };
        if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty())
            && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(auth.trim())
            && let Ok(text) = String::from_utf8(raw)
            && let Some((u, p)) = text.split_once(':')
        {
            c.username = u.to_string();
            c.password = p.to_string();
        }
        (c != Credentials::default()).then_some(c)
    }

    pub fn set(&mut self, key: &str, c: &Credentials) -> Result<()> {
        if let Some(h) = self.helper(key) {
            helper_store(&h, key, c)?;
            // The file keeps an empty entry, as docker's does.
            self.auths_mut().insert(key.to_string(), json!({}));
            return Ok(());
        }
        let mut entry = Map::new();
        entry.insert(
            "auth".into(),
            Value::String(
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password)),
            ),
        );
        if !c.identity_token.is_empty() {
            entry.insert(
                "identitytoken".into(),
                Value::String(c.identity_token.clone()),
            );
        }
        self.auths_mut()
            .insert(key.to_string(), Value::Object(entry));
        Ok(())
    }

    /// Forgets `key`; says whether there was anything to forget.
    pub fn remove(&mut self, key: &str) -> Result<bool> {
        let mut removed = false;
        if let Some(h) = self.helper(key)
            && helper_get(&h, key).is_some()
        {
            helper_erase(&h, key)?;
            removed = true;
        }
        let host = registry_host(key);
        let auths = self.auths_mut();
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| *k == key || registry_host(k) == host)
            .cloned()
            .collect();
        for k in keys {
            auths.remove(&k);
            removed = true;
        }
        Ok(removed)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let v = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        v.as_object_mut().expect("an object")
    }
}

fn run_helper(helper: &str, action: &str, input: &str) -> Result<String> {
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running the credential helper {prog}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{prog} {action}: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn helper_get(helper: &str, key: &str) -> Option<Credentials> {
    let out = run_helper(helper, "get", key).ok()?;
    let v: Value = serde_json::from_str(&out).ok()?;
    let user = v["Username"].as_str().unwrap_or("");
    let secret = v["Secret"].as_str().unwrap_or("").to_string();
    Some(if user == "<token>" {
        Credentials {
            identity_token: secret,
            ..Default::default()
        }
    } else {
        Credentials {
            username: user.to_string(),
            password: secret,
            identity_token: String::new(),
        }
    })
}

fn helper_store(helper: &str, key: &str, c: &Credentials) -> Result<()> {
    let (user, secret) = if c.identity_token.is_empty() {
        (c.username.as_str(), c.password.as_str())
    } else {
        ("<token>", c.identity_token.as_str())
    };
    let input = json!({"ServerURL": key, "Username": user, "Secret": secret}).to_string();
    run_helper(helper, "store", &input).map(drop)
}

fn helper_erase(helper: &str, key: &str) -> Result<()> {
    run_helper(helper, "erase", key).map(drop)
}

/// The `X-Registry-Auth` header for a registry: its stored credentials
/// as base64url JSON, or `None` when there are none (or the file cannot
/// be read: pulls of public images must not fail on it).
pub fn registry_auth_for(domain: &str) -> Option<String> {
    let key = server_key(domain);
    let config = match ConfigFile::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("WARNING: {e:#}");
            return None;
        }
    };
    let c = config.get(&key)?;
    let v = if c.identity_token.is_empty() {
        json!({"username": c.username, "password": c.password, "serveraddress": key})
    } else {
        json!({"identitytoken": c.identity_token, "serveraddress": key})
    };
    Some(base64::engine::general_purpose::URL_SAFE.encode(v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_config<T>(content: Option<&str>, f: impl FnOnce(&std::path::Path) -> T) -> T {
        let dir = std::env::temp_dir().join(format!(
            "berth-login-test-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(c) = content {
            std::fs::write(dir.join("config.json"), c).unwrap();
        }
        let out = f(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    fn load_from(dir: &std::path::Path) -> ConfigFile {
        let path = dir.join("config.json");
        let doc = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        ConfigFile { path, doc }
    }

    #[test]
    fn keys_are_docker_s() {
        assert_eq!(server_key("docker.io"), HUB_SERVER);
        assert_eq!(server_key(HUB_SERVER), HUB_SERVER);
        assert_eq!(server_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(server_key("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn reads_what_docker_login_writes_and_keeps_other_keys() {
        // `docker login` writes `auth` only; keys may carry a scheme.
        let docker = r#"{"auths":{"http://127.0.0.1:5000":{"auth":"dXNlcjpzM2NyZXQ="}},"psFormat":"table {{.ID}}"}"#;
        with_config(Some(docker), |dir| {
            let mut c = load_from(dir);
            let got = c.get("127.0.0.1:5000").unwrap();
            assert_eq!(
                (got.username.as_str(), got.password.as_str()),
                ("user", "s3cret")
            );
            c.set(
                "localhost:6000",
                &Credentials {
                    username: "a".into(),
                    password: "b".into(),
                    identity_token: String::new(),
                },
            )
            .unwrap();
            c.save().unwrap();
            let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["psFormat"], "table {{.ID}}");
            assert_eq!(v["auths"]["localhost:6000"]["auth"], "YTpi");
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("config.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mut c = load_from(dir);
            assert!(c.remove("127.0.0.1:5000").unwrap());
            assert!(!c.remove("127.0.0.1:5000").unwrap());
            assert!(c.get("127.0.0.1:5000").is_none());
            assert!(c.get("localhost:6000").is_some());
        });
    }
}
