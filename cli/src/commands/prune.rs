//! `berth container prune` and `berth image prune`: remove stopped
//! containers, and images no container uses.

use std::io::{BufRead, Write};

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use crate::client::Client;
use crate::format::units::human_size;
use crate::opts::filters_json;

/// Asks on stdout and reads the answer from stdin, as docker's prompt does.
fn confirm(warning: &str) -> Result<bool> {
    let mut out = std::io::stdout().lock();
    write!(out, "{warning}\nAre you sure you want to continue? [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

/// Remove all stopped containers
#[derive(Args, Debug)]
pub struct ContainerPruneCommand {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Provide filter values (e.g. 'until=<timestamp>', 'label=<key>=<value>')
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

impl ContainerPruneCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let filters = filters_json(&self.filter).map_err(anyhow::Error::msg)?;
        if !self.force && !confirm("WARNING! This will remove all stopped containers.")? {
            crate::output::println("container prune has been cancelled")?;
            return Ok(0);
        }
        let report = match client.container_prune(filters.as_deref()).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return Ok(1);
            }
        };
        let deleted: Vec<&str> = report["ContainersDeleted"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let mut reclaimed = 0;
        if !deleted.is_empty() {
            writeln!(out, "Deleted Containers:")?;
            for id in deleted {
                writeln!(out, "{id}")?;
            }
            writeln!(out)?;
            reclaimed = report["SpaceReclaimed"].as_i64().unwrap_or(0);
        }
        writeln!(out, "Total reclaimed space: {}", human_size(reclaimed))?;
        Ok(0)
    }
}

/// Remove unused images
#[derive(Args, Debug)]
pub struct ImagePruneCommand {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Provide filter values (e.g. 'until=<timestamp>', 'label=<key>=<value>')
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

impl ImagePruneCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let mut filter = self.filter.clone();
        if self.all {
            filter.push("dangling=false".into());
        }
        let filters = filters_json(&filter).map_err(anyhow::Error::msg)?;
        let warning = if self.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !self.force && !confirm(warning)? {
            crate::output::println("image prune has been cancelled")?;
            return Ok(0);
        }
        let report = match client.image_prune(filters.as_deref()).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return Ok(1);
            }
        };
        let items = report["ImagesDeleted"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let mut reclaimed = 0;
        if !items.is_empty() {
            writeln!(out, "Deleted Images:")?;
            for item in &items {
                if let Some(t) = item["Untagged"].as_str() {
                    writeln!(out, "untagged: {t}")?;
                }
                if let Some(d) = item["Deleted"].as_str() {
                    writeln!(out, "deleted: {d}")?;
                }
            }
            writeln!(out)?;
            reclaimed = report["SpaceReclaimed"].as_i64().unwrap_or(0);
        }
        writeln!(out, "Total reclaimed space: {}", human_size(reclaimed))?;
        Ok(0)
    }
}
