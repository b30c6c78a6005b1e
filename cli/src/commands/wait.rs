//! `berth wait`: block until containers stop, then print their exit codes.

use anyhow::Result;
use clap::Args;

use crate::client::Client;

/// Block until one or more containers stop, then print their exit codes
#[derive(Args, Debug)]
pub struct WaitCommand {
    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl WaitCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let mut failed = false;
        for c in &self.containers {
            let status = match client.container_wait(c, None).await {
                Ok(pending) => pending.status().await,
                Err(e) => Err(e),
            };
            match status {
                Ok(w) => match w.error {
                    Some(err) if !err.message.is_empty() => {
                        eprintln!("Error response from daemon: {}", err.message);
                        failed = true;
                    }
                    _ => crate::output::println(&w.status_code.to_string())?,
                },
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
        Ok(i32::from(failed))
    }
}
