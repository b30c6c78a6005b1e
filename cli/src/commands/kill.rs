//! `berth kill`: send a signal to one or more running containers.

use anyhow::Result;
use clap::Args;

use crate::client::Client;

/// Kill one or more running containers
#[derive(Args, Debug)]
pub struct KillCommand {
    /// Signal to send to the container (default: the daemon's, SIGKILL)
    #[arg(short = 's', long, value_name = "SIGNAL")]
    pub signal: Option<String>,

    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl KillCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let mut failed = false;
        for c in &self.containers {
            match client.container_kill(c, self.signal.as_deref()).await {
                Ok(()) => crate::output::println(c)?,
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
        Ok(i32::from(failed))
    }
}
