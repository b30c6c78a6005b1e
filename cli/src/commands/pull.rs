//! `berth pull`: download an image from a registry, showing per-layer
//! progress bars as `docker pull` does on a terminal, and plain status
//! lines otherwise. Also the progress display `push` shares, and the bit
//! of reference parsing the CLI needs (which registry, which tag).

use std::collections::HashMap;
use std::io::Write;

use anyhow::{Context, Result, bail};
use berth_api_types::image::JsonMessage;
use berth_api_types::reference;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::login::registry_auth_for;
use crate::client::{Client, Response};
use crate::output::JsonMessagePrinter;

/// Download an image from a registry
#[derive(Args, Debug)]
pub struct PullCommand {
    /// Set platform if server is multi-platform capable (os[/arch[/variant]], wasi/wasm)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// The image to pull
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

impl PullCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let name = pull(
            client,
            &self.name,
            self.platform.as_deref(),
            self.quiet,
            Output::Stdout,
        )
        .await?;
        println!("{name}");
        Ok(0)
    }
}

/// Pulls `name` as `docker pull` does, its progress on `out` (`run` and
/// `create` pull to stderr, so that stdout holds only the container's
/// output or ID). Returns the full name pulled (`docker.io/library/x:tag`).
pub async fn pull(
    client: &Client,
    name: &str,
    platform: Option<&str>,
    quiet: bool,
    out: Output,
) -> Result<String> {
    let r = CliRef::parse(name)?;
    let tag = match (&r.digest, &r.tag) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => {
            if !quiet {
                out.line("Using default tag: latest");
            }
            "latest".to_string()
        }
    };
    let auth = registry_auth_for(&r.domain);
    let resp = client
        .image_pull(&r.name, &tag, platform, auth.as_deref())
        .await?;
    show_progress(resp, quiet, out).await?;
    let sep = if r.digest.is_some() { '@' } else { ':' };
    Ok(format!("{}{sep}{tag}", r.canonical_name()))
}

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
}

impl Output {
    fn writer(self) -> Box<dyn Write> {
        match self {
            Output::Stdout => Box::new(std::io::stdout()),
            Output::Stderr => Box::new(std::io::stderr()),
        }
    }

    fn is_terminal(self) -> bool {
        match self {
            Output::Stdout => std::io::IsTerminal::is_terminal(&std::io::stdout()),
            Output::Stderr => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    fn line(self, s: &str) {
        let _ = writeln!(self.writer(), "{s}");
    }

    fn draw_target(self) -> ProgressDrawTarget {
        match self {
            Output::Stdout => ProgressDrawTarget::stdout(),
            Output::Stderr => ProgressDrawTarget::stderr(),
        }
    }
}

/// A reference as the CLI needs it: the name as typed (without tag or
/// digest), the registry it lives on, and its tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliRef {
    pub name: String,
    /// `docker.io` when the name has no registry part.
    pub domain: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl CliRef {
    pub fn parse(s: &str) -> Result<CliRef> {
        if s.is_empty() || s.contains(char::is_whitespace) {
            bail!("invalid reference format: {s:?}");
        }
        let parts = reference::split(s);
        let (name, tag, digest) = (
            parts.name,
            parts.tag.map(String::from),
            parts.digest.map(String::from),
        );
        if name.is_empty() || tag.as_deref() == Some("") {
            bail!("invalid reference format: {s:?}");
        }
        let domain = reference::split_domain(name)
            .0
            .unwrap_or(reference::DEFAULT_DOMAIN)
            .to_string();
        Ok(CliRef {
            name: name.to_string(),
            domain,
            tag,
            digest,
        })
    }

    /// `docker.io/library/busybox`, `127.0.0.1:5000/app`: what docker
    /// prints after a pull.
    pub fn canonical_name(&self) -> String {
        if self.domain != "docker.io" {
            return self.name.clone();
        }
        let path = self
            .name
            .strip_prefix("docker.io/")
            .or_else(|| self.name.strip_prefix("index.docker.io/"))
            .unwrap_or(&self.name);
        if path.contains('/') {
            format!("docker.io/{path}")
        } else {
            format!("docker.io/library/{path}")
        }
    }
}

/// Shows a pull or push message stream: bars on a terminal, plain lines
/// otherwise, nothing but errors with `quiet`. An error message in the
/// stream fails the command with its text.
pub async fn show_progress(resp: Response<'_>, quiet: bool, target: Output) -> Result<()> {
    let mut stream = resp.into_stream();
    let mut display = if quiet {
        Display::Quiet(Decoder::default())
    } else if target.is_terminal() {
        Display::Bars(Box::new(Bars::new(target)))
    } else {
        Display::Plain(JsonMessagePrinter::default())
    };
    // Not locked: indicatif writes to the same stream.
    let mut out = target.writer();
    while let Some(chunk) = stream
        .chunk()
        .await
        .context("reading the daemon's answer")?
    {
        match &mut display {
            Display::Plain(p) => p.push(&chunk, &mut out)?,
            Display::Quiet(d) => {
                for m in d.push(&chunk)? {
                    fail_on_error(&m)?;
                }
            }
            Display::Bars(b) => {
                let msgs = b.decoder.push(&chunk)?;
                for m in msgs {
                    if let Err(e) = b.show(&m) {
                        b.abandon();
                        return Err(e);
                    }
                }
            }
        }
    }
    match &mut display {
        Display::Plain(p) => p.finish()?,
        Display::Quiet(d) => d.finish()?,
        Display::Bars(b) => {
            b.finish();
            b.decoder.finish()?;
        }
    }
    out.flush()?;
    Ok(())
}

enum Display {
    Plain(JsonMessagePrinter),
    Quiet(Decoder),
    Bars(Box<Bars>),
}

fn fail_on_error(m: &JsonMessage) -> Result<()> {
    if let Some(err) = &m.error {
        let text = m
            .error_detail
            .as_ref()
            .map(|d| d.message.as_str())
            .filter(|t| !t.is_empty())
            .unwrap_or(err);
        bail!("{text}");
    }
    Ok(())
}

/// JSON messages split out of a byte stream.
#[derive(Default)]
struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<JsonMessage>> {
        self.buf.extend_from_slice(chunk);
        let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<JsonMessage>();
        let mut out = Vec::new();
        let mut consumed = 0;
        loop {
            match it.next() {
                Some(Ok(m)) => {
                    consumed = it.byte_offset();
                    out.push(m);
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => bail!("cannot decode a message from the daemon: {e}"),
                None => {
                    consumed = it.byte_offset();
                    break;
                }
            }
        }
        self.buf.drain(..consumed);
        Ok(out)
    }

    fn finish(&self) -> Result<()> {
        if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
            bail!("the daemon's message stream ended in the middle of a message");
        }
        Ok(())
    }
}

/// One line per layer, as docker draws them.
struct Bars {
    mp: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    /// Lines that come once layers are shown (`Digest:`, `Status:`): they
    /// go below the layers at the end, as docker prints them.
    trailer: Vec<String>,
    decoder: Decoder,
    text: ProgressStyle,
    bar: ProgressStyle,
    target: Output,
}

/// States after which a layer's line stops changing.
const FINAL: &[&str] = &[
    "Pull complete",
    "Already exists",
    "Pushed",
    "Layer already exists",
    "Mounted from",
];

impl Bars {
    fn new(target: Output) -> Bars {
        let mp = MultiProgress::with_draw_target(target.draw_target());
        let text = ProgressStyle::with_template("{prefix}: {msg}").expect("valid template");
        let bar = ProgressStyle::with_template(
            "{prefix}: {msg:<12} [{bar:40}] {decimal_bytes:>9}/{decimal_total_bytes}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        Bars {
            mp,
            bars: HashMap::new(),
            trailer: Vec::new(),
            decoder: Decoder::default(),
            text,
            bar,
            target,
        }
    }

    fn line(&mut self, id: &str) -> &ProgressBar {
        let (mp, text) = (&self.mp, &self.text);
        self.bars.entry(id.to_string()).or_insert_with(|| {
            let b = mp.add(ProgressBar::new(0));
            b.set_style(text.clone());
            b.set_prefix(id.to_string());
            b
        })
    }

    fn show(&mut self, m: &JsonMessage) -> Result<()> {
        fail_on_error(m)?;
        if let Some(s) = &m.stream {
            self.mp.println(s.trim_end())?;
            return Ok(());
        }
        let Some(status) = m.status.as_deref() else {
            return Ok(());
        };
        let id = m.id.as_deref().unwrap_or("");
        let is_layer = id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_layer {
            let line = if id.is_empty() {
                status.to_string()
            } else {
                format!("{id}: {status}")
            };
            if self.bars.is_empty() {
                self.mp.println(line)?;
            } else {
                self.trailer.push(line);
            }
            return Ok(());
        }
        let (bar_style, text_style) = (self.bar.clone(), self.text.clone());
        let b = self.line(id).clone();
        match m
            .progress_detail
            .as_ref()
            .and_then(|d| d.total.zip(d.current))
        {
            Some((total, current)) if total > 0 => {
                if b.length() != Some(total as u64) {
                    b.set_style(bar_style);
                    b.set_length(total as u64);
                }
                b.set_position(current.max(0) as u64);
                b.set_message(status.to_string());
            }
            _ => {
                if b.length().unwrap_or(0) > 0 {
                    b.set_style(text_style);
                }
                if FINAL.iter().any(|f| status.starts_with(f)) {
                    b.finish_with_message(status.to_string());
                } else {
                    b.set_message(status.to_string());
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) {
        for b in self.bars.values() {
            if !b.is_finished() {
                b.finish();
            }
        }
        for line in self.trailer.drain(..) {
            self.target.line(&line);
        }
    }

    fn abandon(&mut self) {
        for b in self.bars.values() {
            b.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_like_docker() {
        let r = CliRef::parse("busybox").unwrap();
        assert_eq!((r.domain.as_str(), r.tag.as_deref()), ("docker.io", None));
        assert_eq!(r.canonical_name(), "docker.io/library/busybox");
        let r = CliRef::parse("127.0.0.1:5000/team/app:v1").unwrap();
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.name, "127.0.0.1:5000/team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let r = CliRef::parse("localhost/app@sha256:abc").unwrap();
        assert_eq!(r.domain, "localhost");
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(
            CliRef::parse("team/app").unwrap().canonical_name(),
            "docker.io/team/app"
        );
        assert!(CliRef::parse("a:").is_err());
        assert!(CliRef::parse("").is_err());
    }

    #[test]
    fn decodes_messages_across_chunks_and_fails_on_errors() {
        let mut d = Decoder::default();
        let all = b"{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1,\"total\":2},\"id\":\"0123456789ab\"}\r\n{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}\r\n";
        let mut msgs = Vec::new();
        for c in all.chunks(5) {
            msgs.extend(d.push(c).unwrap());
        }
        d.finish().unwrap();
        assert_eq!(msgs.len(), 2);
        assert!(fail_on_error(&msgs[0]).is_ok());
        assert_eq!(fail_on_error(&msgs[1]).unwrap_err().to_string(), "boom");
    }
}
