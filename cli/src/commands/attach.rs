//! `berth attach`: attach the terminal to a running container's output
//! (and input), as `docker attach` does.

use anyhow::Result;
use clap::Args;

use super::run::{Brief, Ended, Session, SessionOptions, SigProxy, exit_code, stream_session};
use crate::client::{AttachOptions, Client};
use crate::term;

/// Attach local standard input, output, and error streams to a running container
#[derive(Args, Debug)]
pub struct AttachCommand {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,

    #[command(flatten)]
    pub sig: SigProxy,

    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

impl AttachCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let detach = term::detach_keys(self.detach_keys.as_deref())?;
        let c = Brief::fetch(client, &self.container).await?;
        // Docker's checks and messages.
        if !c.state.running {
            return fail("You cannot attach to a stopped container, start it first");
        }
        if c.state.paused {
            return fail("You cannot attach to a paused container, unpause it first");
        }
        if c.state.restarting {
            return fail("You cannot attach to a restarting container, wait until it is running");
        }
        let interactive = !self.no_stdin && c.config.open_stdin;
        if interactive && c.config.tty && !term::stdin_is_tty() {
            return fail("the input device is not a TTY");
        }
        // The waiter is registered (its headers are back) before the
        // stream starts, so an exit during the session is not missed.
        let wait = client.container_wait(&c.id, Some("not-running")).await?;
        let stream = client
            .container_attach(
                &c.id,
                AttachOptions {
                    stdin: interactive,
                    stdout: true,
                    stderr: true,
                    detach_keys: &detach.spec,
                },
            )
            .await?;
        if c.config.tty
            && let Some((h, w)) = term::size()
        {
            let _ = client.container_resize(&c.id, h, w).await;
        }
        let raw_mode = if c.config.tty && interactive && term::stdin_is_tty() {
            Some(term::RawMode::enable()?)
        } else {
            None
        };
        let streamed = stream_session(
            client,
            Session::Container(&c.id),
            stream,
            SessionOptions {
                tty: c.config.tty,
                interactive,
                sig_proxy: self.sig.sig_proxy,
                detach_keys: Some(&detach.keys),
            },
        )
        .await;
        drop(raw_mode);
        if streamed? == Ended::Detached {
            // As the docker CLI: the container runs on, attach fails.
            anyhow::bail!("read escape sequence");
        }
        // The stream ends when the container does: its status is ours.
        Ok(exit_code(wait.status().await, 1))
    }
}

fn fail(message: &str) -> Result<i32> {
    eprintln!("berth: {message}");
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        attach: AttachCommand,
    }

    #[test]
    fn flags_and_inspect_fields() {
        let t = T::try_parse_from(["attach", "--no-stdin", "c1"]).unwrap();
        assert!(t.attach.no_stdin && t.attach.sig.sig_proxy);
        let t = T::try_parse_from(["attach", "--sig-proxy=false", "c1"]).unwrap();
        assert!(!t.attach.sig.sig_proxy);
        let t = T::try_parse_from(["attach", "--detach-keys=ctrl-a,q", "c1"]).unwrap();
        assert_eq!(t.attach.detach_keys.as_deref(), Some("ctrl-a,q"));
        assert_eq!(t.attach.container, "c1");
        assert!(T::try_parse_from(["attach"]).is_err());
        let c: Brief = serde_json::from_str(
            r#"{"Id":"abc","Config":{"Tty":true,"OpenStdin":true},"State":{"Running":true,"Paused":false}}"#,
        )
        .unwrap();
        assert!(c.config.tty && c.config.open_stdin && c.state.running && !c.state.paused);
    }
}
