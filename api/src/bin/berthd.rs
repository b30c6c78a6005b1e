//! berthd: the berth daemon. Serves the Docker Engine API on a unix socket
//! (and, for local tools, plain HTTP on a loopback TCP port) over one
//! engine rooted at `--root`.

use anyhow::{Context, Result, bail};
use berth_runtime::{Engine, EngineConfig};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};

#[derive(Parser, Debug)]
#[command(
    name = "berthd",
    version,
    about = "The berth daemon: Linux and Wasm containers behind the Docker Engine API"
)]
struct Args {
    /// Where berthd keeps images, containers and its database.
    #[arg(long, default_value = "/var/lib/berth", env = "BERTHD_ROOT")]
    root: PathBuf,

    /// Address to serve the API on: unix:///path/to.sock, or
    /// tcp://127.0.0.1:PORT (loopback only: TLS is not supported yet).
    /// Repeat to listen on several.
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    hosts: Vec<String>,

    /// How many Wasm containers may run at once (wasmtime instance pool;
    /// each slot reserves address space, not memory).
    #[arg(long, default_value_t = berth_runtime::executor::wasm::DEFAULT_POOL_SLOTS)]
    wasm_pool_slots: u32,

    /// Change a bound on what compiling a Wasm module may cost: NAME=VALUE
    /// (repeatable). Counts: functions, locals, types, imports, exports,
    /// globals, tables, memories, data-segments, element-segments, modules,
    /// instances, nesting, compile-jobs; sizes (k/m/g suffixes):
    /// module-size, function-size, compile-memory; compile-time in seconds.
    #[arg(long = "wasm-limit", value_name = "NAME=VALUE", value_parser = |s: &str| {
        berth_runtime::executor::wasm::WasmLimits::default().set(s).map(|()| s.to_string())
    })]
    wasm_limits: Vec<String>,

    /// Register an external OCI runtime: NAME=PATH (repeatable). crun and
    /// runc found on PATH are registered by default.
    #[arg(long = "add-runtime", value_name = "NAME=PATH")]
    add_runtime: Vec<String>,

    /// Keep native containers running when berthd stops; the next berthd
    /// re-adopts them (Wasm containers live in the daemon and always stop).
    #[arg(long)]
    live_restore: bool,

    /// Reach the registry HOST[:PORT] over plain HTTP (repeatable).
    /// Loopback registries (localhost, 127.0.0.0/8, ::1) always are.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    insecure_registries: Vec<String>,

    /// The most one image layer may unpack to (its tar stream, or the file
    /// content it writes), in bytes or with a unit (k, m, g, t: powers of
    /// 1024). A pull, load or import with a larger layer fails and keeps
    /// nothing of it. 0: no limit.
    #[arg(long, value_name = "SIZE", default_value = "100GiB",
          value_parser = berth_runtime::util::parse_size)]
    max_layer_size: u64,

    /// The most one image layer may unpack to per byte of its compressed
    /// blob (every layer may unpack to 16 MiB). gzip cannot expand more
    /// than 1032 times; this stops zstd streams and sparse tar entries
    /// that do. 0: no limit.
    #[arg(long, value_name = "RATIO",
          default_value_t = berth_runtime::image::unpack::DEFAULT_MAX_LAYER_RATIO)]
    max_layer_ratio: u64,

    /// The most tar entries (files, directories, links) in one image
    /// layer. 0: no limit.
    #[arg(long, value_name = "N",
          default_value_t = berth_runtime::image::unpack::DEFAULT_MAX_LAYER_ENTRIES)]
    max_layer_entries: u64,

    /// The longest path or link target in an image layer, in bytes.
    #[arg(long, value_name = "BYTES",
          default_value_t = berth_runtime::image::unpack::DEFAULT_MAX_LAYER_PATH,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1 << 20))]
    max_layer_path_length: usize,

    /// The deepest path in an image layer, in directories.
    #[arg(long, value_name = "N",
          default_value_t = berth_runtime::image::unpack::DEFAULT_MAX_LAYER_DEPTH,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    max_layer_depth: usize,

    /// How long connecting to a registry may take (500ms, 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = berth_runtime::util::parse_duration)]
    registry_connect_timeout: Duration,

    /// How long a registry (or its token service, or the storage it
    /// redirects to) may take to start answering a request.
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = berth_runtime::util::parse_duration)]
    registry_response_timeout: Duration,

    /// A download from a registry fails when, over this long, it brings
    /// less than --registry-min-rate per second: a registry that stalls,
    /// or sends a byte a second, fails the pull within twice this time,
    /// and the next pull starts the download again.
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = berth_runtime::util::parse_duration)]
    registry_stall_timeout: Duration,

    /// The slowest pace a registry download may keep, in bytes per second
    /// (units as for --max-layer-size), averaged over
    /// --registry-stall-timeout.
    #[arg(long, value_name = "SIZE", default_value = "1KiB",
          value_parser = berth_runtime::util::parse_size)]
    registry_min_rate: u64,

    /// How long an API client has to send a request's head (from its
    /// connect, or from the first byte of the next request on a kept-alive
    /// connection) before berthd closes the connection (500ms, 30s, 2m; at
    /// most 24h); 0 for no limit.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = api_timeout)]
    api_header_timeout: Duration,

    /// How long a kept-alive API connection may wait for its next request
    /// before berthd closes it (at most 24h); 0 for no limit. Streams
    /// (attach, logs -f, events, wait) and uploads are never cut.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = api_timeout)]
    api_idle_timeout: Duration,

    /// API connections served at once on each listener (attached and
    /// exec sessions included); more wait until one closes.
    #[arg(long, value_name = "N", default_value_t = berth_api::server::ConnLimits::DEFAULT_MAX_CONNECTIONS as u32, value_parser = clap::value_parser!(u32).range(1..))]
    api_max_connections: u32,
}

/// An API connection timeout: a duration of at most a day, or 0 for none.
fn api_timeout(s: &str) -> std::result::Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    let d = berth_runtime::util::parse_duration(s)?;
    if d > Duration::from_secs(86_400) {
        return Err(format!(
            "{s:?} is longer than a day (24h); use 0 for no limit"
        ));
    }
    Ok(d)
}

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

fn main() -> Result<()> {
    // berthd started by itself to compile a Wasm module within limits.
    if let Some(code) = berth_runtime::executor::wasm::helper_main() {
        std::process::exit(code);
    }
    // Before anything opens a file: what berthd inherited beyond its stdio
    // (a supervisor's or a shell's descriptors, perhaps of host
    // directories) is marked close-on-exec, so that it reaches no shim,
    // exec helper, runtime or container; and the descriptor limit is
    // raised for berthd itself (containers keep the one it was started
    // with, see `raise_nofile_limit`).
    use berth_runtime::executor::native as hygiene;
    let inherited = hygiene::cloexec_inherited();
    let nofile = hygiene::raise_nofile_limit();

    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match inherited {
        Ok(fds) if fds.is_empty() => {}
        Ok(fds) => tracing::info!(
            ?fds,
            "marked the descriptors berthd inherited close-on-exec: no process it starts gets them"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "could not mark inherited descriptors close-on-exec; start berthd without open descriptors beyond stdio"
        ),
    }
    match nofile {
        Ok(([soft, hard], [now, _])) => tracing::info!(
            soft = now,
            hard,
            was = soft,
            containers = soft,
            "RLIMIT_NOFILE: berthd's soft limit raised to its hard limit; containers keep the soft limit berthd was started with"
        ),
        Err(e) => tracing::warn!(error = %e, "RLIMIT_NOFILE could not be raised to its hard limit"),
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berthd")
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(serve(args));
    // Guests and streams still running must not hold the process.
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Err(e) = &result {
        eprintln!("berthd: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

async fn serve(args: Args) -> Result<()> {
    let mut listeners = Vec::new();
    for h in &args.hosts {
        listeners.push(bind(h).await?);
    }
    let mut config = EngineConfig::new(&args.root);
    config.wasm_pool_slots = args.wasm_pool_slots;
    for l in &args.wasm_limits {
        config.wasm_limits.set(l).map_err(anyhow::Error::msg)?;
    }
    config.wasm_compile_helper = Some(PathBuf::from("/proc/self/exe"));
    config.live_restore = args.live_restore;
    config.layer_limits = berth_runtime::image::unpack::UnpackLimits {
        max_bytes: args.max_layer_size,
        max_ratio: args.max_layer_ratio,
        max_entries: args.max_layer_entries,
        max_path: args.max_layer_path_length,
        max_depth: args.max_layer_depth,
    };
    config.registry_timeouts = berth_runtime::registry::RegistryTimeouts {
        connect: args.registry_connect_timeout,
        response: args.registry_response_timeout,
        stall: args.registry_stall_timeout,
        min_rate: args.registry_min_rate,
    };
    for r in &args.insecure_registries {
        let bare = r
            .strip_prefix("http://")
            .or_else(|| r.strip_prefix("https://"))
            .unwrap_or(r)
            .trim_end_matches('/');
        if bare.is_empty() || bare.contains(['/', ' ']) {
            bail!(
                "invalid --insecure-registry {r:?}: use HOST[:PORT] (CIDR ranges are not supported)"
            );
        }
        config.insecure_registries.push(r.clone());
    }
    for r in &args.add_runtime {
        let (name, path) = r
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .with_context(|| format!("invalid --add-runtime {r:?}: use NAME=PATH"))?;
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("--add-runtime {name}: {} does not exist", path.display());
        }
        config.runtimes.insert(name.to_string(), path);
    }
    let engine = match Engine::open(config).await {
        Ok(e) => e,
        Err(e) => {
            for l in &listeners {
                if let Listener::Unix(_, p) = l {
                    let _ = std::fs::remove_file(p);
                }
            }
            bail!("{e}");
        }
    };
    let app = berth_api::router(engine.clone())
        .layer(axum::middleware::from_fn(
            berth_api::server::drain_unread_body,
        ))
        .layer(axum::middleware::from_fn(berth_api::server::log_request));

    let limits = berth_api::server::ConnLimits {
        header_timeout: (!args.api_header_timeout.is_zero()).then_some(args.api_header_timeout),
        idle_timeout: (!args.api_idle_timeout.is_zero()).then_some(args.api_idle_timeout),
        max_connections: args.api_max_connections as usize,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    let mut sockets = Vec::new();
    for l in listeners {
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        match l {
            Listener::Unix(l, path) => {
                tracing::info!(socket = %path.display(), "serving the API");
                sockets.push(path);
                servers.push(tokio::spawn(berth_api::server::serve(
                    l, app, limits, shutdown,
                )));
            }
            Listener::Tcp(l) => {
                tracing::info!(address = %l.local_addr()?, "serving the API over plain HTTP on loopback");
                servers.push(tokio::spawn(berth_api::server::serve(
                    l, app, limits, shutdown,
                )));
            }
        }
    }
    tracing::info!(root = %args.root.display(), version = berth_runtime::engine::VERSION, "berthd ready");
    {
        let engine = engine.clone();
        tokio::spawn(async move { engine.restart_on_boot().await });
    }

    wait_for_signal().await;
    tracing::info!("shutting down: stopping containers");
    let _ = stop_tx.send(true);
    // A second signal while shutting down exits at once.
    tokio::spawn(async {
        wait_for_signal().await;
        eprintln!("berthd: second signal, exiting now");
        std::process::exit(130);
    });
    engine.shutdown().await;
    for s in servers {
        // Streams that outlive their containers do not hold the daemon.
        let _ = tokio::time::timeout(Duration::from_secs(3), s).await;
    }
    for p in sockets {
        let _ = std::fs::remove_file(p);
    }
    drop(engine);
    tracing::info!("berthd stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn bind(host: &str) -> Result<Listener> {
    if let Some(path) = host.strip_prefix("unix://") {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        remove_stale_socket(&path).await?;
        let l = UnixListener::bind(&path)
            .with_context(|| format!("listening on {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
            .with_context(|| format!("setting permissions of {}", path.display()))?;
        return Ok(Listener::Unix(l, path));
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = l.local_addr()?;
        if !local.ip().is_loopback() {
            bail!(
                "refusing to serve the API without TLS on {local}: TCP is allowed on loopback only \
                 (tcp://127.0.0.1:PORT) until mutual TLS is supported; use a unix socket otherwise"
            );
        }
        return Ok(Listener::Tcp(l));
    }
    bail!("unsupported address {host:?}: use unix:///path/to.sock or tcp://127.0.0.1:PORT")
}

/// A socket file left by a daemon that died is removed; one that a live
/// daemon answers on is not.
///
/// A socket that accepts connections but answers nothing is stale too: a
/// child the dead daemon was spawning (a standby shim, under `SCHED_IDLE`)
/// holds a copy of its listener until its `exec`, and the kernel queues
/// connections on it meanwhile. Only an HTTP answer means a daemon.
async fn remove_stale_socket(path: &Path) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !path.exists() {
        return Ok(());
    }
    let answers = async {
        let mut c = tokio::net::UnixStream::connect(path).await.ok()?;
        c.write_all(b"HEAD /_ping HTTP/1.1\r\nHost: berthd\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut b = [0u8; 5];
        c.read_exact(&mut b).await.ok()?;
        Some(&b == b"HTTP/")
    };
    // A daemon answers at once; a busy one within seconds.
    if let Ok(Some(true)) = tokio::time::timeout(Duration::from_secs(3), answers).await {
        bail!(
            "another daemon is already serving on {}: stop it, or give this one another --host",
            path.display()
        );
    }
    std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))
}
