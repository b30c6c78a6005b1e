//! `berth rm`: remove one or more containers.

use anyhow::Result;
use clap::Args;

use crate::client::Client;

/// Remove one or more containers
#[derive(Args, Debug)]
pub struct RmCommand {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,

    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl RmCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        super::each(
            &self.containers,
            |c| client.container_remove(c, self.force, self.volumes),
            super::print_name,
        )
        .await
    }
}
