//! `berth rename`: give a container a new name.

use anyhow::Result;
use clap::Args;

use crate::client::Client;

/// Rename a container
#[derive(Args, Debug)]
pub struct RenameCommand {
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Its new name
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

impl RenameCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        match client
            .container_rename(&self.container, &self.new_name)
            .await
        {
            Ok(()) => Ok(0),
            Err(e) => {
                eprintln!("{e}");
                Ok(1)
            }
        }
    }
}
