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
        let signal = self.signal.as_deref();
        super::each(
            &self.containers,
            |c| client.container_kill(c, signal),
            super::print_name,
        )
        .await
    }
}
