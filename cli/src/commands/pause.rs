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
        let mut failed = false;
        for c in &self.containers {
            match client.container_pause(c).await {
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

/// Unpause all processes within one or more containers
#[derive(Args, Debug)]
pub struct UnpauseCommand {
    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl UnpauseCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let mut failed = false;
        for c in &self.containers {
            match client.container_unpause(c).await {
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
