//! `berth import` / `berth image import`: make an image from a root
//! filesystem tarball (file or stdin), as `docker import` does.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, bail};
use clap::Args;
use hyper::header::CONTENT_TYPE;

use crate::client::{Client, ImportOptions, body};
use crate::output::JsonMessagePrinter;

/// Import the contents from a tarball to create a filesystem image
#[derive(Args, Debug)]
#[command(after_help = "The tarball may be plain, gzip or zstd compressed. \
    Instructions for --change: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR.")]
pub struct ImportCommand {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,

    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,

    /// Set platform (os[/arch[/variant]]) of the image
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// The root filesystem tarball, or - for STDIN
    #[arg(value_name = "file|-")]
    pub file: String,

    /// Name (and optionally a tag) for the new image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

impl ImportCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        if let Some(r) = &self.reference
            && r.contains('@')
        {
            bail!("refusing to create a tag with a digest reference: {r}");
        }
        let tar = if self.file == "-" {
            if std::io::stdin().is_terminal() {
                bail!("requested import from stdin, but stdin is a terminal: pipe a tarball in");
            }
            body::reader(tokio::io::stdin(), None)
        } else if self.file.starts_with("http://") || self.file.starts_with("https://") {
            bail!(
                "berth import reads a local file or -, not a URL; download {} first",
                self.file
            );
        } else {
            let file = tokio::fs::File::open(&self.file)
                .await
                .with_context(|| format!("open {}", self.file))?;
            let len = file.metadata().await.ok().map(|m| m.len());
            body::reader(file, len)
        };
        let opts = ImportOptions {
            repo: self.reference.as_deref(),
            message: self.message.as_deref(),
            platform: self.platform.as_deref(),
            changes: &self.changes,
        };
        let resp = client.image_import(tar, &opts).await?;
        let json = resp
            .header(CONTENT_TYPE)
            .is_some_and(|ct| ct.starts_with("application/json"));
        let mut stream = resp.into_stream();
        let mut out = std::io::stdout().lock();
        let mut printer = JsonMessagePrinter::default();
        // The daemon answers `{"status":"sha256:..."}`: the new image's ID,
        // printed on its own line as docker does.
        while let Some(chunk) = stream
            .chunk()
            .await
            .context("reading the daemon's answer")?
        {
            if json {
                printer.push(&chunk, &mut out)?;
            } else {
                out.write_all(&chunk)?;
            }
        }
        printer.finish()?;
        out.flush()?;
        Ok(0)
    }
}
