//! `berth exec`: run a command in a running container.

use anyhow::Result;
use berth_api_types::container::{ExecConfig, ExecStart};
use clap::Args;

use super::run::{Ended, Session, SessionOptions, stream_session};
use crate::client::Client;
use crate::opts::parse_env;
use crate::term;

/// Execute a command in a running container
#[derive(Args, Debug)]
#[command(override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
pub struct ExecCommand {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// Set environment variables: NAME=VALUE, or NAME to pass this shell's value
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,

    /// The container, then the command and its arguments
    #[arg(value_name = "CONTAINER", trailing_var_arg = true, required = true, num_args = 2..)]
    pub container_and_command: Vec<String>,
}

impl ExecCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let (container, cmd) = self
            .container_and_command
            .split_first()
            .expect("clap requires CONTAINER and COMMAND");
        if self.interactive && self.tty && !term::stdin_is_tty() && !self.detach {
            anyhow::bail!("the input device is not a TTY");
        }
        let detach = term::detach_keys(self.detach_keys.as_deref())?;
        let env = self
            .env
            .iter()
            .map(|e| parse_env(e, |k| std::env::var(k).ok()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let console = if self.tty && !self.detach {
            term::size()
        } else {
            None
        };
        let config = ExecConfig {
            attach_stdin: self.interactive && !self.detach,
            attach_stdout: !self.detach,
            attach_stderr: !self.detach,
            tty: self.tty,
            console_size: console.map(|(h, w)| [u64::from(h), u64::from(w)]),
            env,
            cmd: Some(cmd.to_vec()),
            privileged: self.privileged,
            user: self.user.clone().unwrap_or_default(),
            working_dir: self.workdir.clone().unwrap_or_default(),
            detach_keys: detach.spec.clone(),
        };
        let id = client.exec_create(container, &config).await?;
        if self.detach {
            client.exec_start_detached(&id).await?;
            return Ok(0);
        }
        let start = ExecStart {
            detach: false,
            tty: self.tty,
            console_size: config.console_size,
        };
        let stream = client.exec_start(&id, &start).await?;
        let raw = if self.tty && self.interactive && term::stdin_is_tty() {
            Some(term::RawMode::enable()?)
        } else {
            None
        };
        let streamed = stream_session(
            client,
            Session::Exec(&id),
            stream,
            SessionOptions {
                tty: self.tty,
                interactive: self.interactive,
                // docker exec forwards no signals.
                sig_proxy: false,
                detach_keys: Some(&detach.keys),
            },
        )
        .await;
        drop(raw);
        if streamed? == Ended::Detached {
            // As the docker CLI: the process runs on, exec fails.
            anyhow::bail!("read escape sequence");
        }
        let inspect = client.exec_inspect(&id).await?;
        Ok(inspect.exit_code.unwrap_or(0) as i32)
    }
}
