//! `berth inspect` (and `container inspect` / `image inspect`): the daemon's
//! JSON for containers or images, or a `--format` template over it.

use std::io::Write;

use anyhow::Result;
use bytes::Bytes;
use clap::{Args, ValueEnum};

use crate::client::{Client, ClientError};
use crate::format::json::indent;
use crate::format::template::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Container,
    Image,
}

/// Return low-level information on containers or images
#[derive(Args, Debug)]
#[command(after_help = FORMAT_HELP)]
pub struct InspectCommand {
    /// Only inspect objects of the given type
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<Kind>,

    #[command(flatten)]
    pub common: InspectArgs,
}

/// The part of `inspect` shared with `container inspect` and `image inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using a Go template subset (see below)
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    pub format: Option<String>,

    /// Names or IDs
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

pub const FORMAT_HELP: &str = "\
--format understands a subset of Go templates, evaluated over the JSON the daemon
returns: {{.A.B.C}} field paths, {{json .X}}, {{upper .X}}, {{lower .X}},
{{title .X}}, {{len .X}}, {{join .X \",\"}}, {{split .X \",\"}}, {{index .X \"key\"}},
pipelines ({{.X | json}}) and {{- -}} trimming. Field names are the JSON keys
(.State.Status, .Config.Env, .HostConfig.Memory). Not supported: if, range,
with, variables; they are reported as errors.";

impl InspectCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        run(client, self.kind, self.common).await
    }
}

pub async fn run(client: &Client, kind: Option<Kind>, args: InspectArgs) -> Result<i32> {
    let template = args
        .format
        .as_deref()
        .map(Template::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let mut found: Vec<Bytes> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for name in &args.names {
        match fetch(client, kind, name).await {
            Ok(raw) => found.push(raw),
            Err(e) => errors.push(e),
        }
    }

    let mut out = std::io::stdout().lock();
    match &template {
        Some(t) => {
            for raw in &found {
                let value: serde_json::Value = serde_json::from_slice(raw)?;
                match t.execute(&value) {
                    Ok(text) => writeln!(out, "{text}")?,
                    Err(e) => errors.push(e),
                }
            }
        }
        None => {
            let mut all = Vec::with_capacity(found.iter().map(|b| b.len() + 1).sum::<usize>() + 2);
            all.push(b'[');
            for (i, raw) in found.iter().enumerate() {
                if i > 0 {
                    all.push(b',');
                }
                all.extend_from_slice(raw);
            }
            all.push(b']');
            writeln!(out, "{}", indent(&all, "    "))?;
        }
    }
    out.flush()?;
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(i32::from(!errors.is_empty()))
}

async fn fetch(client: &Client, kind: Option<Kind>, name: &str) -> Result<Bytes, String> {
    let not_found = |what: &str| format!("Error: No such {what}: {name}");
    let other = |e: ClientError| e.to_string();
    match kind {
        Some(Kind::Container) => client.container_inspect_raw(name).await.map_err(|e| {
            if e.is_not_found() {
                not_found("container")
            } else {
                other(e)
            }
        }),
        Some(Kind::Image) => client.image_inspect_raw(name).await.map_err(|e| {
            if e.is_not_found() {
                not_found("image")
            } else {
                other(e)
            }
        }),
        None => match client.container_inspect_raw(name).await {
            Ok(raw) => Ok(raw),
            Err(e) if e.is_not_found() => match client.image_inspect_raw(name).await {
                Ok(raw) => Ok(raw),
                Err(e) if e.is_not_found() => Err(not_found("object")),
                Err(e) => Err(other(e)),
            },
            Err(e) => Err(other(e)),
        },
    }
}
