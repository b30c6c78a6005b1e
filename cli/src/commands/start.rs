//! `berth start`: start one or more stopped containers, or one attached
//! (`-a`, `-i`), as `docker start` does.

use anyhow::{Result, anyhow};
use clap::Args;

use super::run::{AttachedSession, Brief, Fail, attached};
use crate::client::Client;
use crate::term;

/// Start one or more stopped containers
#[derive(Args, Debug)]
pub struct StartCommand {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,

    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl StartCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        if !self.attach && !self.interactive {
            return self.start_detached(client).await;
        }
        match self.start_attached(client).await {
            Ok(Ok(code)) => Ok(code),
            Ok(Err(e)) => Err(e),
            // docker start reports a failed start with status 1, not run's
            // 125-127.
            Err(Fail(_, e)) => Ok(Fail(1, e).report()),
        }
    }

    async fn start_detached(&self, client: &Client) -> Result<i32> {
        super::each(
            &self.containers,
            |c| client.container_start(c),
            super::print_name,
        )
        .await
    }

    /// `start -a` / `-i`: one container, its output streamed and, with
    /// `-i` and a container created with `-i`, stdin sent to it; exits with
    /// the container's status.
    async fn start_attached(&self, client: &Client) -> Result<Result<i32>, Fail> {
        let [name] = self.containers.as_slice() else {
            return Err(Fail(
                1,
                anyhow!("you cannot start and attach multiple containers at once"),
            ));
        };
        let detach = term::detach_keys(self.detach_keys.as_deref()).map_err(|e| Fail(1, e))?;
        let c = Brief::fetch(client, name).await?;
        let interactive = self.interactive && c.config.open_stdin;
        if interactive && c.config.tty && !term::stdin_is_tty() {
            return Err(Fail(1, anyhow!("the input device is not a TTY")));
        }
        let condition = if c.host_config.auto_remove {
            "removed"
        } else {
            "next-exit"
        };
        // docker start has no --sig-proxy: signals always go to a
        // container without a TTY.
        let session = AttachedSession {
            tty: c.config.tty,
            interactive,
            sig_proxy: true,
            condition,
            detach: &detach,
        };
        attached(client, &c.id, session).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        start: StartCommand,
    }

    #[test]
    fn attach_and_interactive_flags() {
        let t = T::try_parse_from(["start", "-ai", "c1"]).unwrap();
        assert!(t.start.attach && t.start.interactive);
        let t = T::try_parse_from(["start", "-a", "--detach-keys", "ctrl-x,y", "c1"]).unwrap();
        assert_eq!(t.start.detach_keys.as_deref(), Some("ctrl-x,y"));
        let t = T::try_parse_from(["start", "c1", "c2"]).unwrap();
        assert!(!t.start.attach && !t.start.interactive);
        assert_eq!(t.start.containers, ["c1", "c2"]);
        assert!(T::try_parse_from(["start", "-a"]).is_err());
    }

    #[test]
    fn inspect_fields_default_when_absent() {
        let c: Brief = serde_json::from_str(
            r#"{"Id":"abc","Config":{"Tty":true,"OpenStdin":true},"HostConfig":{"AutoRemove":true}}"#,
        )
        .unwrap();
        assert!(c.config.tty && c.config.open_stdin && c.host_config.auto_remove);
        let c: Brief = serde_json::from_str(r#"{"Id":"abc"}"#).unwrap();
        assert!(!c.config.tty && !c.host_config.auto_remove);
    }
}
