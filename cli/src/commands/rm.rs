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
        let mut failed = false;
        for c in &self.containers {
            match client.container_remove(c, self.force, self.volumes).await {
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
