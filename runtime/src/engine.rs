//! The facade berthd drives: one [`Engine`] per daemon root, owning the
//! stores, the container manager and the executors.
//!
//! Opening an engine takes an exclusive lock on the root (two daemons must
//! never share one), opens the blob store and metadata database, reconciles
//! container records with reality and sweeps blobs left by interrupted
//! writes.

use crate::container::{Containers, NativeSetup};
use crate::error::{Error, Result, ResultExt};
use crate::executor::native::cgroups::CgroupManager;
use crate::executor::native::{NativeConfig, NativeExecutor, default_shim_path};
use crate::executor::wasm::{WasmConfig, WasmExecutor};
use crate::executor::{Executor, WasiTarget, WasmModule};
use crate::image::layers::LayerStore;
use crate::image::{self, Images, Reference};
use crate::store::{BlobStore, Db};
use crate::util::{self, Digest};
use berth_api_types::image::WasmImportResponse;
use berth_api_types::system as wire;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The berth version, as `berth version` shows it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The wasmtime version berth was built with.
pub const WASMTIME_VERSION: &str = env!("BERTH_WASMTIME_VERSION");

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub root: PathBuf,
    /// How many Wasm containers may run at once.
    pub wasm_pool_slots: u32,
    /// What compiling one Wasm module may cost (`--wasm-limit`).
    pub wasm_limits: crate::executor::wasm::WasmLimits,
    /// The binary that compiles Wasm modules in a process of its own, with
    /// the memory and time limits; berthd names itself. `None` compiles in
    /// this process (without a memory limit).
    pub wasm_compile_helper: Option<PathBuf>,
    /// External OCI runtimes by name (`--add-runtime NAME=PATH`); `crun` and
    /// `runc` found on `PATH` are added unless named here.
    pub runtimes: HashMap<String, PathBuf>,
    /// The `berth-shim` binary; next to berthd by default.
    pub shim: Option<PathBuf>,
    /// Parent cgroup of every container.
    pub cgroup_parent: String,
    /// Leave native containers running when the daemon stops.
    pub live_restore: bool,
    /// Registries (`HOST[:PORT]`) reached over plain HTTP; loopback ones
    /// always are (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// What one image layer may unpack to (`--max-layer-*`).
    pub layer_limits: crate::image::unpack::UnpackLimits,
    /// How long registries may take (`--registry-*-timeout`,
    /// `--registry-min-rate`).
    pub registry_timeouts: crate::registry::RegistryTimeouts,
}

impl EngineConfig {
    pub fn new(root: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            root: root.into(),
            wasm_pool_slots: crate::executor::wasm::DEFAULT_POOL_SLOTS,
            wasm_limits: Default::default(),
            wasm_compile_helper: None,
            runtimes: HashMap::new(),
            shim: None,
            cgroup_parent: "berth".into(),
            live_restore: false,
            insecure_registries: Vec::new(),
            layer_limits: Default::default(),
            registry_timeouts: Default::default(),
        }
    }
}

/// `crun` and `runc` on `PATH`, unless configured otherwise.
fn detect_runtimes(configured: &HashMap<String, PathBuf>) -> HashMap<String, PathBuf> {
    let mut out = configured.clone();
    for name in ["crun", "runc"] {
        if out.contains_key(name) {
            continue;
        }
        if let Some(p) = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        }) {
            out.insert(name.to_string(), p);
        }
    }
    out
}

pub struct Engine {
    root: PathBuf,
    id: String,
    _lock: nix::fcntl::Flock<File>,
    images: Arc<Images>,
    registry: Arc<crate::registry::Registry>,
    containers: Arc<Containers>,
    wasm: Arc<WasmExecutor>,
    /// `None` when berth-shim is missing: native containers are refused.
    native: Option<Arc<NativeExecutor>>,
    runtimes: HashMap<String, PathBuf>,
    cgroups: Option<CgroupManager>,
    live_restore: bool,
}

impl Engine {
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>> {
        let root = config.root.clone();
        std::fs::create_dir_all(&root).ctx(format!("creating {}", root.display()))?;
        let lock = lock_root(&root)?;
        // A daemon that died during a `cp` from a stopped container left its
        // overlay mounted under ROOT/tmp-mounts.
        crate::container::fs::sweep_temp_mounts(&root);
        let db = Arc::new(Db::open(&root.join("berth.redb"))?);
        let id = match db.get::<String>(crate::store::db::META, "daemon-id")? {
            Some(id) => id,
            None => {
                let id = util::random_id();
                db.write(crate::store::Durability::Immediate, |tx| {
                    tx.put(crate::store::db::META, "daemon-id", &id)
                })?;
                id
            }
        };
        let blobs = Arc::new(BlobStore::open(&root)?);
        let layers = Arc::new(LayerStore::open(&root)?.with_limits(config.layer_limits));
        let images = Arc::new(Images::open(blobs, db.clone())?.with_layer_store(layers.clone()));
        let registry = Arc::new(crate::registry::Registry::new(
            images.clone(),
            crate::registry::RegistryConfig {
                insecure: config.insecure_registries.clone(),
                timeouts: config.registry_timeouts,
            },
        )?);
        match images.collect_garbage() {
            Ok(0) => {}
            Ok(n) => tracing::info!(blobs = n, "removed blobs no image refers to"),
            Err(e) => tracing::warn!(error = %e, "could not sweep unused blobs"),
        }
        let mut wasm_config = WasmConfig::new(root.join("wasm-cache"));
        wasm_config.pool_slots = config.wasm_pool_slots;
        wasm_config.limits = config.wasm_limits.clone();
        wasm_config.compile_helper = config.wasm_compile_helper.clone();
        image::wasm::set_max_module_size(config.wasm_limits.module_size);
        let wasm = Arc::new(WasmExecutor::new(wasm_config)?);
        let mut executors: Vec<Arc<dyn Executor>> = vec![wasm.clone()];
        let native = match NativeExecutor::new(NativeConfig {
            shim: config.shim.clone().unwrap_or_else(default_shim_path),
            cgroup_parent: config.cgroup_parent.clone(),
        }) {
            Ok(n) => {
                let n = Arc::new(n);
                executors.push(n.clone());
                Some(n)
            }
            Err(e) => {
                tracing::warn!(error = %e, "native Linux containers are unavailable");
                None
            }
        };
        let runtimes = detect_runtimes(&config.runtimes);
        let cgroups = CgroupManager::detect().ok();
        let containers = Arc::new(Containers::open(
            root.join("containers"),
            db,
            images.clone(),
            executors,
            NativeSetup {
                layers,
                runtimes: runtimes.clone(),
                cgroup_parent: config.cgroup_parent.clone(),
                cgroups: cgroups
                    .clone()
                    .and_then(|m| m.with_parent(&config.cgroup_parent).ok()),
            },
        )?);
        containers.restore().await;
        // Layers unpacked for images that are gone (removed, or a pull that
        // died before its image was recorded).
        if let Some(store) = images.layer_store() {
            match store.list() {
                Ok(all) => {
                    let freed = sweep_layers(&images, &containers, all);
                    if freed > 0 {
                        tracing::info!(bytes = freed, "removed unpacked layers no image uses");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not list unpacked layers"),
            }
        }
        let engine = Arc::new(Engine {
            root,
            id,
            _lock: lock,
            images,
            containers,
            wasm,
            native,
            runtimes,
            cgroups,
            live_restore: config.live_restore,
            registry,
        });
        engine.spawn_flusher();
        Ok(engine)
    }

    /// Starts containers whose restart policy asks for it. Call once the
    /// daemon serves its API.
    pub async fn restart_on_boot(&self) {
        self.containers.restart_on_boot().await;
    }

    fn spawn_flusher(self: &Arc<Self>) {
        tokio::spawn(Containers::run_flusher(Arc::downgrade(&self.containers)));
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn images(&self) -> &Arc<Images> {
        &self.images
    }

    /// Pulls, pushes and logins.
    pub fn registry(&self) -> &Arc<crate::registry::Registry> {
        &self.registry
    }

    pub fn containers(&self) -> &Arc<Containers> {
        &self.containers
    }

    pub fn wasm(&self) -> &Arc<WasmExecutor> {
        &self.wasm
    }

    /// Stops running containers and makes all state durable.
    pub async fn shutdown(&self) {
        self.containers.shutdown(self.live_restore).await;
    }

    /// Makes an image from a `.wasm` module or component (or WAT text) in
    /// memory, refusing one that could never run here.
    pub async fn import_wasm(
        &self,
        bytes: Vec<u8>,
        tag: &str,
        title: Option<&str>,
    ) -> Result<WasmImportResponse> {
        let images = self.images.clone();
        let limit = image::wasm::max_module_size();
        let received = tokio::task::spawn_blocking(move || {
            image::wasm::receive(&images, std::io::Cursor::new(bytes), limit)
        })
        .await
        .ctx("importing module")?
        .map_err(|e| e.into_error())?;
        self.import_wasm_received(received, tag, title).await
    }

    /// Makes an image of a module [`image::wasm::receive`] took into the
    /// content store, refusing one that could never run here (its blob is
    /// removed then, unless it was there before).
    pub async fn import_wasm_received(
        &self,
        received: image::wasm::Received,
        tag: &str,
        title: Option<&str>,
    ) -> Result<WasmImportResponse> {
        let image::wasm::Received {
            digest,
            size,
            target,
            existed,
        } = received;
        let refuse = |e: Error| {
            if !existed {
                let _ = self.images.blobs().delete(&digest);
            }
            e
        };
        let reference = Reference::parse(tag).map_err(refuse)?.with_default_tag();
        if reference.digest().is_some() {
            return Err(refuse(Error::invalid(format!(
                "cannot name an image with a digest reference: {tag}"
            ))));
        }
        let module = WasmModule {
            digest: digest.clone(),
            path: self.images.blobs().path(&digest),
            target,
        };
        let component = self.wasm.check(&module).await.map_err(refuse)?;
        let title = title
            .filter(|t| !t.is_empty())
            .map(|t| {
                Path::new(t)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(t)
                    .to_string()
            })
            .unwrap_or_else(|| {
                format!(
                    "{}.wasm",
                    reference.path().rsplit('/').next().unwrap_or("module")
                )
            });
        let images = self.images.clone();
        let r2 = reference.clone();
        let record = tokio::task::spawn_blocking(move || {
            image::wasm::import(&images, digest, size, target, &title, &r2, component)
        })
        .await
        .ctx("importing module")??;
        self.events()
            .image("import", &record.id.to_string(), &reference.to_string());
        Ok(WasmImportResponse {
            id: record.id.to_string(),
            reference: reference.to_string(),
            os: target.as_str().to_string(),
            manifest_digest: record.manifest.digest.to_string(),
        })
    }

    /// `GET /version`.
    pub fn version(&self) -> wire::Version {
        let uname = nix::sys::utsname::uname().ok();
        let kernel = uname
            .as_ref()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        wire::Version {
            platform: wire::PlatformName {
                name: format!("berth {VERSION}"),
            },
            components: vec![
                wire::Component {
                    name: "Engine".into(),
                    version: VERSION.into(),
                    details: [
                        (
                            "ApiVersion".to_string(),
                            berth_api_types::API_VERSION.to_string(),
                        ),
                        (
                            "MinAPIVersion".to_string(),
                            berth_api_types::MIN_API_VERSION.to_string(),
                        ),
                        ("Os".to_string(), "linux".to_string()),
                        ("Arch".to_string(), oci_arch().to_string()),
                        ("KernelVersion".to_string(), kernel.clone()),
                    ]
                    .into(),
                },
                wire::Component {
                    name: "wasmtime".into(),
                    version: WASMTIME_VERSION.into(),
                    details: Default::default(),
                },
            ],
            version: VERSION.into(),
            api_version: berth_api_types::API_VERSION.into(),
            min_api_version: berth_api_types::MIN_API_VERSION.into(),
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("").into(),
            go_version: String::new(),
            os: "linux".into(),
            arch: oci_arch().into(),
            kernel_version: kernel,
            experimental: false,
            build_time: String::new(),
        }
    }

    /// `GET /info`.
    pub fn info(&self) -> wire::Info {
        let (containers, running, paused) = self.containers.count();
        let uname = nix::sys::utsname::uname().ok();
        let cgroup_version = self.cgroups.as_ref().map(|c| c.version()).unwrap_or(0);
        let features = self
            .cgroups
            .as_ref()
            .map(|c| c.features())
            .unwrap_or_default();
        let mut runtimes = serde_json::Map::new();
        runtimes.insert(
            "berth".into(),
            serde_json::json!({"path": if self.native.is_some() { "built-in (berth-shim)" } else { "unavailable: berth-shim not found" }, "runtimeType": "berth"}),
        );
        for (name, path) in &self.runtimes {
            runtimes.insert(name.clone(), serde_json::json!({"path": path}));
        }
        for r in crate::container::spec::WASM_RUNTIMES {
            runtimes.insert(
                (*r).into(),
                serde_json::json!({"path": "built-in (wasmtime)", "runtimeType": "wasm"}),
            );
        }
        wire::Info {
            id: self.id.clone(),
            containers,
            containers_running: running,
            containers_paused: paused,
            containers_stopped: containers - running - paused,
            images: self.images.count() as i64,
            driver: "berth".into(),
            driver_status: vec![["Backing Filesystem".into(), "content store".into()]],
            docker_root_dir: self.root.display().to_string(),
            memory_limit: features.memory,
            swap_limit: features.swap,
            cpu_cfs_period: features.cpu_cfs,
            cpu_cfs_quota: features.cpu_cfs,
            cpu_shares: features.cpu_shares,
            pids_limit: features.pids,
            kernel_version: uname
                .as_ref()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            operating_system: os_pretty_name(),
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
            mem_total: mem_total(),
            name: uname
                .as_ref()
                .map(|u| u.nodename().to_string_lossy().into_owned())
                .unwrap_or_default(),
            server_version: VERSION.into(),
            runtimes,
            default_runtime: "berth".into(),
            swarm: wire::Swarm {
                local_node_state: "inactive".into(),
            },
            security_options: if self.native.is_some() {
                vec![
                    "name=seccomp,profile=builtin".into(),
                    "name=no-new-privileges".into(),
                ]
            } else {
                vec![]
            },
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: if cgroup_version == 0 {
                String::new()
            } else {
                cgroup_version.to_string()
            },
            logging_driver: "json-file".into(),
            labels: vec![],
            experimental_build: false,
            warnings: vec![],
            wasm: wire::WasmInfo {
                engine: "wasmtime".into(),
                version: WASMTIME_VERSION.into(),
                targets: vec![
                    WasiTarget::Wasip1.as_str().into(),
                    WasiTarget::Wasip2.as_str().into(),
                ],
                pool_slots: self.wasm.config().pool_slots as u64,
                running: self.wasm.running(),
                compiled_cache_dir: self.wasm.cache_dir().display().to_string(),
            },
            live_restore_enabled: self.live_restore,
            // Debug, descriptors, tasks, time, registries: the API fills them.
            ..Default::default()
        }
    }
}

/// What `POST /images/prune` removed.
#[derive(Debug, Clone, Default)]
pub struct ImagePruneReport {
    pub deleted: Vec<berth_api_types::image::DeleteItem>,
    pub space_reclaimed: u64,
}

/// Pruning and disk usage (`docker image prune`, `docker system df`), and
/// the event bus.
impl Engine {
    /// The daemon's event bus (`GET /events`). Image code publishes with
    /// [`EventBus::image`](crate::container::events::EventBus::image).
    pub fn events(&self) -> &Arc<crate::container::events::EventBus> {
        self.containers.events()
    }

    /// `DELETE /images/{name}` (`rmi`): untags or removes the image as
    /// Docker does, publishes the `untag`/`delete` events, and removes its
    /// unpacked layers that nothing else needs.
    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<berth_api_types::image::DeleteItem>> {
        let images = self.images.clone();
        let containers = self.containers.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            let record = images.resolve(&name)?;
            let layers: Vec<Digest> = images
                .handle(&record)
                .map(|h| h.manifest.layers.into_iter().map(|l| l.digest).collect())
                .unwrap_or_default();
            let items = images.remove(&name, force, |id| containers.users_of(id))?;
            let events = containers.events();
            for item in &items {
                if let Some(t) = &item.untagged {
                    events.image("untag", &record.id.to_string(), t);
                }
                if let Some(d) = &item.deleted {
                    events.image("delete", d, "");
                }
            }
            if items.iter().any(|i| i.deleted.is_some()) {
                sweep_layers(&images, &containers, layers);
            }
            Ok(items)
        })
        .await
        .ctx("removing an image")?
    }

    /// `POST /images/prune`: removes images no container uses; only
    /// dangling (untagged) ones unless `dangling=false`, as Docker. The
    /// space reclaimed is that of the blobs that went, plus the unpacked
    /// layers that no image or container needs any more.
    pub async fn prune_images(
        &self,
        filters: &crate::container::prune::PruneFilters,
    ) -> Result<ImagePruneReport> {
        let images = self.images.clone();
        let containers = self.containers.clone();
        let filters = filters.clone();
        tokio::task::spawn_blocking(move || prune_images(&images, &containers, &filters))
            .await
            .ctx("pruning images")?
    }

    /// `GET /system/df`: images (size, shared size, containers using
    /// them), containers (`SizeRw`, `SizeRootFs`), and no volumes or build
    /// cache, which berth does not have. `types` picks the sections
    /// (`image`, `container`, `volume`, `build-cache`); empty is all.
    pub async fn disk_usage(&self, types: &[String]) -> Result<serde_json::Value> {
        for t in types {
            if !["container", "image", "volume", "build-cache"].contains(&t.as_str()) {
                return Err(Error::invalid(format!(
                    "invalid type {t:?}: use container, image, volume or build-cache"
                )));
            }
        }
        let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
        let images = self.images.clone();
        let containers = self.containers.clone();
        let (want_images, want_containers) = (want("image"), want("container"));
        let (layers_size, image_list, container_list) = tokio::task::spawn_blocking(move || {
            let (layers_size, image_list) = if want_images {
                image_usage(&images, &containers)
            } else {
                (0, Vec::new())
            };
            let mut container_list = Vec::new();
            if want_containers {
                let filters = crate::container::ListFilters::default();
                for summary in containers.list(true, &filters)? {
                    let (rw, rootfs) = containers.sizes(&summary.id).unwrap_or((0, 0));
                    let mut v = serde_json::to_value(&summary)
                        .map_err(|e| Error::internal(format!("encoding a container: {e}")))?;
                    v["SizeRw"] = rw.into();
                    v["SizeRootFs"] = rootfs.into();
                    container_list.push(v);
                }
            }
            Ok::<_, Error>((layers_size, image_list, container_list))
        })
        .await
        .ctx("measuring disk usage")??;
        let mut out = serde_json::Map::new();
        if want("image") {
            out.insert("LayersSize".into(), layers_size.into());
            out.insert("Images".into(), image_list.into());
        }
        if want("container") {
            out.insert("Containers".into(), container_list.into());
        }
        if want("volume") {
            out.insert("Volumes".into(), serde_json::json!([]));
        }
        if want("build-cache") {
            out.insert("BuildCache".into(), serde_json::json!([]));
        }
        Ok(out.into())
    }
}

fn prune_images(
    images: &Images,
    containers: &Containers,
    filters: &crate::container::prune::PruneFilters,
) -> Result<ImagePruneReport> {
    let dangling_only = filters.dangling.unwrap_or(true);
    let blob_sizes = || -> Result<HashMap<Digest, u64>> {
        Ok(images
            .blobs()
            .list()?
            .into_iter()
            .map(|d| {
                let size = images.blobs().size(&d).unwrap_or(0);
                (d, size)
            })
            .collect())
    };
    let before = blob_sizes()?;
    let events = containers.events();
    let mut report = ImagePruneReport::default();
    let mut dropped_layers = Vec::new();
    for (record, tags) in images.list() {
        if dangling_only && !tags.is_empty() {
            continue;
        }
        if !containers.users_of(&record.id).is_empty() {
            continue;
        }
        let handle = images.handle(&record).ok();
        let labels = handle
            .as_ref()
            .and_then(|h| h.config.config.as_ref().map(|c| c.labels.clone()))
            .unwrap_or_default();
        if !filters.matches(&record.created, &labels) {
            continue;
        }
        // Any container that uses it by now, stopped or not, keeps it: it
        // is reported as running so that the removal refuses.
        let result = images.remove(&record.id.to_string(), true, |id| {
            containers
                .users_of(id)
                .into_iter()
                .map(|(c, _)| (c, true))
                .collect()
        });
        match result {
            Ok(items) => {
                for item in &items {
                    if let Some(t) = &item.untagged {
                        events.image("untag", &record.id.to_string(), t);
                    }
                    if let Some(d) = &item.deleted {
                        events.image("delete", d, "");
                    }
                }
                report.deleted.extend(items);
                if let Some(h) = handle {
                    dropped_layers.extend(h.manifest.layers.into_iter().map(|l| l.digest));
                }
            }
            Err(e) => tracing::debug!(image = %record.id, error = %e, "not pruned"),
        }
    }
    let after = blob_sizes()?;
    report.space_reclaimed = before
        .iter()
        .filter(|(d, _)| !after.contains_key(*d))
        .map(|(_, s)| *s)
        .sum();
    report.space_reclaimed += sweep_layers(images, containers, dropped_layers);
    events.publish_prune("image", report.space_reclaimed);
    Ok(report)
}

/// Removes those of `candidates` (unpacked layers) that no image and no
/// container needs any more; returns the bytes freed. A layer whose blob
/// is still stored is kept: an image being pulled or loaded has stored it
/// and will commit its record in a moment.
fn sweep_layers(images: &Images, containers: &Containers, candidates: Vec<Digest>) -> u64 {
    let Some(store) = images.layer_store() else {
        return 0;
    };
    let mut keep = containers.layers_in_use();
    for (r, _) in images.list() {
        if let Ok(h) = images.handle(&r) {
            keep.extend(h.manifest.layers.into_iter().map(|l| l.digest));
        }
    }
    let mut freed = 0;
    for d in candidates {
        if keep.contains(&d) || images.blobs().contains(&d) {
            continue;
        }
        let size = crate::container::prune::dir_size(&store.path(&d));
        match store.remove(&d) {
            Ok(true) => freed += size,
            Ok(false) => {}
            Err(e) => tracing::warn!(layer = %d, error = %e, "removing an unpacked layer"),
        }
    }
    freed
}

/// Image summaries for `system df` with `SharedSize` (bytes of layers
/// another image has too) and `Containers`, and the bytes of all unique
/// layers and configs (`LayersSize`).
fn image_usage(images: &Images, containers: &Containers) -> (u64, Vec<serde_json::Value>) {
    let list = images.list();
    let mut blobs: HashMap<Digest, (u64, usize)> = HashMap::new();
    let mut per_image = Vec::new();
    for (record, tags) in list {
        let layers: Vec<(Digest, u64)> = images
            .handle(&record)
            .map(|h| {
                h.manifest
                    .layers
                    .iter()
                    .map(|l| (l.digest.clone(), l.size.max(0) as u64))
                    .chain(std::iter::once((
                        h.manifest.config.digest.clone(),
                        h.manifest.config.size.max(0) as u64,
                    )))
                    .collect()
            })
            .unwrap_or_default();
        for (d, size) in &layers {
            blobs.entry(d.clone()).or_insert((*size, 0)).1 += 1;
        }
        per_image.push((record, tags, layers));
    }
    let layers_size = blobs.values().map(|(s, _)| *s).sum();
    let out = per_image
        .into_iter()
        .map(|(record, tags, layers)| {
            let shared: u64 = layers
                .iter()
                .filter(|(d, _)| blobs.get(d).is_some_and(|(_, n)| *n > 1))
                .map(|(_, s)| *s)
                .sum();
            let users = containers.users_of(&record.id).len() as i64;
            let mut summary = images.summary(&record, tags, users);
            summary.shared_size = shared as i64;
            serde_json::to_value(&summary).unwrap_or_default()
        })
        .collect();
    (layers_size, out)
}

/// The architecture as OCI names it.
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Takes the exclusive lock on the root, or says who holds it.
///
/// A berthd that died may leave its lock held a little longer by a child
/// it was spawning (a standby shim shares its descriptors until its
/// `exec`, which under `SCHED_IDLE` may wait for an idle CPU): while the
/// pid the lock file names is gone, the lock is tried again for a while.
fn lock_root(root: &Path) -> Result<nix::fcntl::Flock<File>> {
    use nix::fcntl::{Flock, FlockArg};
    let path = root.join("berthd.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .ctx(format!("opening {}", path.display()))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                lock.set_len(0).ctx("writing the lock file")?;
                write!(&mut *lock, "{}", std::process::id()).ctx("writing the lock file")?;
                return Ok(lock);
            }
            Err((mut held, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = held.read_to_string(&mut pid);
                let pid = pid.trim().to_string();
                let holder_gone = pid
                    .parse::<u32>()
                    .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists());
                if !holder_gone || std::time::Instant::now() >= deadline {
                    return Err(Error::conflict(format!(
                        "another berthd (pid {pid}) is using {}: stop it, or give this one its own --root",
                        root.display()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::io::Seek::rewind(&mut held).ctx("reading the lock file")?;
                file = held;
            }
            Err((_, e)) => return Err(Error::internal(format!("locking {}: {e}", path.display()))),
        }
    }
}
