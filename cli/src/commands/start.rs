//! `berth start`: start one or more stopped containers (without attaching).

use anyhow::Result;
use clap::Args;

use crate::client::Client;

/// Start one or more stopped containers
#[derive(Args, Debug)]
pub struct StartCommand {
    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl StartCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let mut failed = false;
        for c in &self.containers {
            match client.container_start(c).await {
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
