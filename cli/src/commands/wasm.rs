//! `berth wasm ...`: berth's Wasm-specific commands (`/berth/...` endpoints).

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::client::Client;

/// Work with WebAssembly modules and components
#[derive(Subcommand, Debug)]
pub enum WasmCommand {
    Import(WasmImportCommand),
}

impl WasmCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        match self {
            WasmCommand::Import(c) => c.execute(client).await,
        }
    }
}

/// Make an image from a .wasm core module, a component, or WAT text
#[derive(Args, Debug)]
pub struct WasmImportCommand {
    /// The module file (.wasm or .wat)
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,

    /// The image name to give it (tag defaults to latest)
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

impl WasmImportCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let bytes = std::fs::read(&self.file)
            .with_context(|| format!("cannot read {}", self.file.display()))?;
        let size = bytes.len();
        let r = client.wasm_import(&self.name, bytes).await.map_err(|e| {
            // berthd answers 413 and stops reading a module over its
            // limit; the answer can lose the race with our writing.
            let e = anyhow::Error::new(e);
            if size > 16 << 20 && format!("{e:#}").contains("Broken pipe") {
                e.context(format!(
                    "berthd stopped reading the {size}-byte module: it is most likely larger \
                         than berthd's module size limit (256 MiB unless berthd runs with \
                         --wasm-limit module-size=BYTES)"
                ))
            } else {
                e
            }
        })?;
        crate::output::println(&format!("Imported {} ({}) {}", r.reference, r.os, r.id))?;
        Ok(0)
    }
}
