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
        super::each(
            &self.containers,
            |c| async move {
                let w = client.container_wait(c, None).await?.status().await?;
                match w.error {
                    Some(err) if !err.message.is_empty() => Err(anyhow::anyhow!(
                        "Error response from daemon: {}",
                        err.message
                    )),
                    _ => Ok(w.status_code),
                }
            },
            |_, code| crate::output::println(&code.to_string()),
        )
        .await
    }
}
