//! `berth restart`: restart one or more containers.

use anyhow::Result;
use clap::Args;

use crate::client::Client;

/// Restart one or more containers
#[derive(Args, Debug)]
pub struct RestartCommand {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub timeout: Option<i64>,

    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "SIGNAL")]
    pub signal: Option<String>,

    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl RestartCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let signal = self.signal.as_deref();
        super::each(
            &self.containers,
            |c| client.container_restart(c, self.timeout, signal),
            super::print_name,
        )
        .await
    }
}
