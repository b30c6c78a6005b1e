//! `berth rmi` / `berth image rm`: remove images.

use anyhow::Result;
use clap::Args;

use crate::client::Client;

/// Remove one or more images
#[derive(Args, Debug)]
pub struct RmiCommand {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,

    /// The images
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

impl RmiCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        super::each(
            &self.images,
            |img| client.image_remove(img, self.force, self.no_prune),
            |_, items| {
                for item in items {
                    if let Some(u) = item.untagged {
                        crate::output::println(&format!("Untagged: {u}"))?;
                    }
                    if let Some(d) = item.deleted {
                        crate::output::println(&format!("Deleted: {d}"))?;
                    }
                }
                Ok(())
            },
        )
        .await
    }
}
