//! `berth pause` and `berth unpause`: suspend and resume every process of
//! containers (the freezer cgroup for native containers; a suspended guest
//! for Wasm containers).

use anyhow::Result;
use clap::Args;

use crate::client::Client;

/// Pause all processes within one or more containers
#[derive(Args, Debug)]
pub struct PauseCommand {
    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl PauseCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        super::each(
            &self.containers,
            |c| client.container_pause(c),
            super::print_name,
        )
        .await
    }
}

/// Unpause all processes within one or more containers
#[derive(Args, Debug)]
pub struct UnpauseCommand {
    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl UnpauseCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        super::each(
            &self.containers,
            |c| client.container_unpause(c),
            super::print_name,
        )
        .await
    }
}
