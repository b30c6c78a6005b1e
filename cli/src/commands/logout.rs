//! `berth logout`: forget a registry's credentials in Docker's
//! `config.json` (or its credential helper). Nothing goes to the daemon.

use anyhow::Result;
use clap::Args;

use super::login::{ConfigFile, HUB_SERVER, server_key};
use crate::client::Client;

/// Log out from a registry
#[derive(Args, Debug)]
pub struct LogoutCommand {
    /// The registry (Docker Hub when omitted)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

impl LogoutCommand {
    pub async fn execute(self, _client: &Client) -> Result<i32> {
        let key = server_key(self.server.as_deref().unwrap_or(HUB_SERVER));
        let mut config = ConfigFile::load()?;
        if config.remove(&key)? {
            config.save()?;
            println!("Removing login credentials for {key}");
        } else {
            println!("Not logged in to {key}");
        }
        Ok(0)
    }
}
