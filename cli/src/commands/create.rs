//! `berth create`, and the container options it shares with `berth run`.

use anyhow::Result;
use berth_api_types::container::{Config, CreateRequest, HostConfig, RestartPolicy};
use clap::Args;

use super::pull::{Output, pull};
use crate::client::Client;
use crate::format::units::parse_ram;
use crate::opts::{parse_env, parse_labels, parse_restart, with_default_tag};

/// Options that describe a container, shared by `create` and `run`.
#[derive(Args, Debug, Clone, Default)]
pub struct ContainerOptions {
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Automatically remove the container and its resources when it exits
    #[arg(long)]
    pub rm: bool,

    /// Assign a name to the container
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Set environment variables: NAME=VALUE, or NAME to pass this shell's value
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// Set metadata on the container: KEY=VALUE (repeatable)
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Overwrite the image's default ENTRYPOINT ('' clears it)
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,

    /// Memory limit: bytes, or a number with a unit (512k, 64m, 1g; binary units)
    #[arg(short = 'm', long, value_name = "BYTES", value_parser = parse_ram)]
    pub memory: Option<i64>,

    /// Restart policy: no, always, unless-stopped, on-failure[:MAX-RETRIES]
    #[arg(long, value_name = "POLICY", value_parser = parse_restart)]
    pub restart: Option<RestartPolicy>,

    /// Set platform if the image is multi-platform (e.g. linux/amd64, wasi/wasm)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// Pull image before creating: always, missing, never
    #[arg(long, value_name = "WHEN", default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub pull: String,

    /// Runtime to use for this container (e.g. an OCI runtime such as crun)
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,

    /// Username or UID, optionally with a group (user, uid, user:group, uid:gid)
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Container host name
    #[arg(short = 'h', long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,

    /// Add Linux capabilities (repeatable; ALL for every one)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop Linux capabilities (repeatable; ALL for every one)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// Security options: seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges[=false]
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,

    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,

    /// Number of CPUs (fractions allowed: 1.5)
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    pub cpus: Option<i64>,

    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "SHARES")]
    pub cpu_shares: Option<i64>,

    /// Tune container pids limit (-1 for unlimited)
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,

    /// Swap limit equal to memory plus swap: -1 for unlimited swap
    #[arg(long = "memory-swap", value_name = "BYTES", value_parser = parse_swap, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,

    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,

    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,

    /// Timeout (in seconds) to stop a container
    #[arg(
        long = "stop-timeout",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub stop_timeout: Option<i64>,

    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// `--cpus 1.5` as NanoCpus.
fn parse_cpus(s: &str) -> Result<i64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("invalid value {s:?} for --cpus: give a number such as 1.5"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!(
            "invalid value {s:?} for --cpus: it must not be negative"
        ));
    }
    Ok((v * 1e9).round() as i64)
}

/// `--memory-swap`: a size, or -1 for unlimited.
fn parse_swap(s: &str) -> Result<i64, String> {
    if s == "-1" { Ok(-1) } else { parse_ram(s) }
}

/// `--security-opt seccomp=FILE` sends the profile's JSON, as the docker CLI
/// does; other options go as given.
fn security_opts(opts: &[String]) -> Result<Vec<String>, String> {
    opts.iter()
        .map(|o| match o.split_once(['=', ':']) {
            Some(("seccomp", v)) if v != "unconfined" && !v.trim_start().starts_with('{') => {
                let json = std::fs::read_to_string(v)
                    .map_err(|e| format!("opening seccomp profile ({v}) failed: {e}"))?;
                Ok(format!("seccomp={json}"))
            }
            _ => Ok(o.clone()),
        })
        .collect()
}

/// Which streams the created container is set up to attach.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachConfig {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub stdin_once: bool,
}

impl ContainerOptions {
    /// Checks option combinations that Docker rejects on the client side.
    pub fn validate(&self) -> Result<(), String> {
        if self.rm
            && self
                .restart
                .as_ref()
                .is_some_and(|r| !r.name.is_empty() && r.name != "no")
        {
            return Err("Conflicting options: --restart and --rm".to_string());
        }
        Ok(())
    }

    /// The `POST /containers/create` body, built as the docker CLI builds it.
    pub fn create_request(
        &self,
        image: &str,
        cmd: &[String],
        attach: AttachConfig,
        console_size: Option<(u16, u16)>,
    ) -> Result<CreateRequest, String> {
        let env = self
            .env
            .iter()
            .map(|e| parse_env(e, |k| std::env::var(k).ok()))
            .collect::<Result<Vec<_>, _>>()?;
        let labels = parse_labels(&self.label)?;
        let entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        let config = Config {
            image: image.to_string(),
            cmd: (!cmd.is_empty()).then(|| cmd.to_vec()),
            entrypoint,
            env,
            labels,
            working_dir: self.workdir.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            hostname: self.hostname.clone().unwrap_or_default(),
            stop_signal: self.stop_signal.clone().unwrap_or_default(),
            stop_timeout: self.stop_timeout,
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once: attach.stdin_once,
            attach_stdin: attach.stdin,
            attach_stdout: attach.stdout,
            attach_stderr: attach.stderr,
            ..Config::default()
        };
        let host_config = HostConfig {
            memory: self.memory.unwrap_or(0),
            auto_remove: self.rm,
            restart_policy: self.restart.clone().unwrap_or_else(|| RestartPolicy {
                name: "no".to_string(),
                maximum_retry_count: 0,
            }),
            runtime: self.runtime.clone().unwrap_or_default(),
            console_size: console_size.map(|(h, w)| [u64::from(h), u64::from(w)]),
            privileged: self.privileged,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            security_opt: security_opts(&self.security_opt)?,
            readonly_rootfs: self.read_only,
            nano_cpus: self.cpus.unwrap_or(0),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            pids_limit: self.pids_limit,
            memory_swap: self.memory_swap.unwrap_or(0),
            init: self.init.then_some(true),
            ..HostConfig::default()
        };
        Ok(CreateRequest {
            config,
            host_config,
            ..CreateRequest::default()
        })
    }

    /// Creates the container as docker does: with `--pull missing` (the
    /// default) an image that is not here is pulled (progress on stderr)
    /// and the create tried again; `--pull always` pulls first, `--pull
    /// never` only says the image is missing. Prints the daemon's warnings.
    pub async fn create(
        &self,
        client: &Client,
        image: &str,
        req: &CreateRequest,
    ) -> Result<String> {
        let platform = self.platform.as_deref();
        if self.pull == "always" {
            pull(
                client,
                &with_default_tag(image),
                platform,
                false,
                Output::Stderr,
            )
            .await?;
        }
        let created = match client
            .container_create(self.name.as_deref(), platform, req)
            .await
        {
            Err(e) if e.is_not_found() => {
                eprintln!("Unable to find image '{}' locally", with_default_tag(image));
                if self.pull != "missing" {
                    return Err(e.into());
                }
                pull(
                    client,
                    &with_default_tag(image),
                    platform,
                    false,
                    Output::Stderr,
                )
                .await?;
                client
                    .container_create(self.name.as_deref(), platform, req)
                    .await?
            }
            r => r?,
        };
        for w in &created.warnings {
            eprintln!("WARNING: {w}");
        }
        Ok(created.id)
    }
}

/// Create a new container
#[derive(Args, Debug)]
#[command(
    override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]",
    disable_help_flag = true
)]
pub struct CreateCommand {
    #[command(flatten)]
    pub opts: ContainerOptions,

    /// The image, then the command and its arguments (everything after IMAGE goes to the container)
    #[arg(value_name = "IMAGE", trailing_var_arg = true, required = true, num_args = 1..)]
    pub image_and_command: Vec<String>,
}

impl CreateCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        self.opts.validate().map_err(anyhow::Error::msg)?;
        let (image, cmd) = self
            .image_and_command
            .split_first()
            .expect("clap requires IMAGE");
        let attach = AttachConfig {
            stdin: self.opts.interactive,
            stdout: true,
            stderr: true,
            stdin_once: false,
        };
        let req = self
            .opts
            .create_request(image, cmd, attach, None)
            .map_err(anyhow::Error::msg)?;
        let id = self.opts.create(client, image, &req).await?;
        crate::output::println(&id)?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_matches_docker_shapes() {
        let opts = ContainerOptions {
            env: vec!["A=1".into()],
            entrypoint: Some(String::new()),
            memory: Some(64 << 20),
            rm: true,
            ..Default::default()
        };
        let req = opts
            .create_request(
                "hello",
                &["--exit".into(), "3".into()],
                AttachConfig {
                    stdout: true,
                    stderr: true,
                    ..Default::default()
                },
                None,
            )
            .unwrap();
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["Image"], "hello");
        assert_eq!(v["Cmd"], serde_json::json!(["--exit", "3"]));
        assert_eq!(v["Entrypoint"], serde_json::json!([""]));
        assert_eq!(v["Env"], serde_json::json!(["A=1"]));
        assert_eq!(v["HostConfig"]["Memory"], 64 << 20);
        assert_eq!(v["HostConfig"]["AutoRemove"], true);
        assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert_eq!(v["AttachStdout"], true);
        assert_eq!(v["AttachStdin"], false);
        let none = ContainerOptions::default()
            .create_request("hello", &[], AttachConfig::default(), None)
            .unwrap();
        let v = serde_json::to_value(&none).unwrap();
        assert!(v["Cmd"].is_null());
        assert!(v["Entrypoint"].is_null());
    }

    #[test]
    fn rm_conflicts_with_restart() {
        let opts = ContainerOptions {
            rm: true,
            restart: Some(parse_restart("always").unwrap()),
            ..Default::default()
        };
        assert_eq!(
            opts.validate().unwrap_err(),
            "Conflicting options: --restart and --rm"
        );
    }
}
