//! `create`: the image resolved, the request merged over its config, the
//! executor chosen, the container's directory and record made.

use super::*;

impl Containers {
    /// `POST /containers/create`.
    #[tracing::instrument(level = "debug", skip_all, fields(name = name.unwrap_or_default(), image = %request.config.image))]
    pub async fn create(
        &self,
        name: Option<&str>,
        request: wire::CreateRequest,
    ) -> Result<wire::CreateResponse> {
        let began = std::time::Instant::now();
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err(Error::conflict("berthd is shutting down"));
        }
        if request.config.image.is_empty() {
            return Err(Error::invalid(
                "Config.Image is required: give the image to create the container from",
            ));
        }
        let image = self.images.resolve(&request.config.image)?;
        if let Some(want) = request.platform.as_deref().filter(|p| !p.is_empty()) {
            check_platform(&request.config.image, &image, want)?;
        }
        let handle = self.images.handle(&image)?;
        let kind = spec::choose_executor(
            image.kind.executor(),
            &request.host_config.runtime,
            &self.native.runtimes,
        )?;
        let executor = self.executor(kind)?.clone();
        let config = spec::merge(&request, &handle.config.container_config());
        let warnings = spec::check_supported(kind, &config, &request.host_config)?;
        fs::volume_paths(&config)?;

        let module = match (&image.kind, kind) {
            (ImageKind::Wasm { form, .. }, ExecutorKind::Wasm) => {
                let entry = config
                    .entrypoint
                    .as_ref()
                    .and_then(|e| e.first())
                    .or_else(|| config.cmd.as_ref().and_then(|c| c.first()))
                    .cloned();
                Some(image::wasm::find_module(
                    &self.images,
                    &handle,
                    form,
                    entry.as_deref(),
                )?)
            }
            _ => None,
        };
        let argv = spec::argv(&config, module.as_ref().and_then(|m| m.argv0.as_deref()))?;
        let native = match kind {
            ExecutorKind::Wasm => None,
            ExecutorKind::Native => Some(self.native_record(&request, &handle).await?),
        };

        let id = util::random_id();
        let name = self.reserve_name(name, &id)?;
        let result = self
            .create_reserved(
                &id, &name, &request, config, argv, &image, kind, module, native, &executor,
            )
            .await;
        match result {
            Ok(()) => {
                if let Ok(c) = self.get(&id) {
                    c.inner.lock().unwrap().timings.create_micros =
                        began.elapsed().as_micros() as u64;
                    self.emit(&c, "create", &[]);
                }
                Ok(wire::CreateResponse { id, warnings })
            }
            Err(e) => {
                self.registry.write().unwrap().by_name.remove(&name);
                let _ = util::fsutil::remove_dir_all_if_exists(&self.dir.join(&id));
                Err(e)
            }
        }
    }

    /// A native container's layers (unpacked, so start mounts at once),
    /// capabilities and runtime, checked at create.
    pub(super) async fn native_record(
        &self,
        request: &wire::CreateRequest,
        handle: &image::ImageHandle,
    ) -> Result<NativeRecord> {
        let host = &request.host_config;
        let caps =
            crate::executor::native::caps::resolve(&host.cap_add, &host.cap_drop, host.privileged)?;
        let security = spec::SecurityOpts::parse(&host.security_opt)?;
        if let Some(p) = &security.seccomp_profile {
            crate::executor::native::seccomp::parse(p.as_bytes())?;
        }
        let runtime = match host.runtime.as_str() {
            "" | "berth" => None,
            name => Some(name.to_string()),
        };
        let layers = handle.manifest.layers.clone();
        let store = self.native.layers.clone();
        // Usually all are: a stat each here, instead of a hop to a blocking
        // thread and back on every create.
        if !layers.iter().all(|l| store.contains(&l.digest)) {
            let blobs = self.images.blobs().clone();
            let to_unpack = layers.clone();
            tokio::task::spawn_blocking(move || {
                for l in &to_unpack {
                    store.ensure(&blobs, l)?;
                }
                Ok::<_, Error>(())
            })
            .await
            .ctx("unpacking layers")??;
        }
        Ok(NativeRecord {
            layers,
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            runtime,
        })
    }

    pub(super) fn reserve_name(&self, requested: Option<&str>, id: &str) -> Result<String> {
        let mut reg = self.registry.write().unwrap();
        if let Some(n) = requested.filter(|n| !n.is_empty()) {
            let n = names::validate(n)?;
            if let Some(other) = reg.by_name.get(&n) {
                return Err(Error::conflict(format!(
                    "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". \
                     You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            reg.by_name.insert(n.clone(), id.to_string());
            return Ok(n);
        }
        for attempt in 0..100 {
            let n = names::random(attempt / 10);
            if !reg.by_name.contains_key(&n) {
                reg.by_name.insert(n.clone(), id.to_string());
                return Ok(n);
            }
        }
        Err(Error::internal("could not find a free container name"))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_reserved(
        &self,
        id: &str,
        name: &str,
        request: &wire::CreateRequest,
        config: wire::Config,
        argv: Vec<String>,
        image: &image::ImageRecord,
        kind: ExecutorKind,
        module: Option<image::wasm::ModuleRef>,
        native: Option<NativeRecord>,
        executor: &Arc<dyn Executor>,
    ) -> Result<()> {
        let dir = self.dir.join(id);
        let spare = match kind {
            ExecutorKind::Wasm => spares::Kind::Wasm,
            ExecutorKind::Native => spares::Kind::Native,
        };
        self.spares
            .take_into(&dir, spare)
            .ctx(format!("creating {}", dir.display()))?;
        if native.is_some() {
            write_etc_files(&dir, &spec::hostname(&config, id))?;
        }
        let wasm = match module {
            None => None,
            Some(m) => {
                let path = dir.join("module.wasm");
                let target = match m.data {
                    image::wasm::ModuleData::Blob(blob) => {
                        if std::fs::hard_link(&blob, &path).is_err() {
                            std::fs::copy(&blob, &path).ctx("copying the module")?;
                        }
                        image::wasm::detect_blob(&path, &m.digest)?
                    }
                    image::wasm::ModuleData::Bytes(bytes) => {
                        std::fs::write(&path, &bytes).ctx("writing the module")?;
                        image::wasm::detect(&bytes)?
                    }
                };
                Some(WasmRecord {
                    digest: m.digest,
                    target,
                })
            }
        };
        let workload = match (wasm, native) {
            (Some(w), None) => WorkloadRecord::Wasm(w),
            (None, Some(n)) => WorkloadRecord::Native(n),
            _ => {
                return Err(Error::internal(format!(
                    "a {} container needs {}",
                    kind.as_str(),
                    match kind {
                        ExecutorKind::Wasm => "its module and no native layers",
                        ExecutorKind::Native => "its layers and no Wasm module",
                    }
                )));
            }
        };
        let platform = match &workload {
            WorkloadRecord::Wasm(w) => w.target.as_str().to_string(),
            WorkloadRecord::Native(_) => image.os.clone(),
        };
        let mut config = config;
        config.image = request.config.image.clone();
        // The log driver in effect, as Docker records it (docker-py reads
        // it to decide whether `containers.run` can return the logs).
        let mut host_config = request.host_config.clone();
        if host_config.log_config.kind.is_empty() {
            host_config.log_config.kind = "json-file".into();
        }
        let record = ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            created: util::now_rfc3339(),
            image: request.config.image.clone(),
            image_id: image.id.clone(),
            config,
            host_config,
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            platform,
            workload,
            state: StateRecord {
                status: Status::Created,
                pid: 0,
                exit_code: 0,
                error: String::new(),
                oom_killed: false,
                started_at: util::ZERO_TIME.into(),
                finished_at: util::ZERO_TIME.into(),
            },
            restart_count: 0,
            manually_stopped: false,
            stopped_by_daemon: false,
        };
        let c = Self::container(&self.dir, record.clone())?;
        let launch = self.launch(&c, &record)?;
        executor.prepare(&launch).await?;
        // `Config.Volumes` paths exist in a native container (a Wasm
        // container's would be WASI preopens, which wait for volumes).
        if let Some(n) = record.workload.native() {
            let paths = fs::volume_paths(&record.config)?;
            if !paths.is_empty() {
                let lowers = self.native.layers.lowers(&n.layers)?;
                let (dir, cdir, id) = (self.dir.clone(), c.dir.clone(), id.to_string());
                tokio::task::spawn_blocking(move || {
                    fs::make_volume_dirs(&dir, &id, &lowers, &cdir, &paths)
                })
                .await
                .ctx("making the volume directories")??;
            }
        }
        // Committed at once, fsynced by the flusher a moment later (group
        // commit): an fsync here would be most of a Wasm container's
        // create-to-exit time.
        self.persist(&record, Durability::None)?;
        self.registry
            .write()
            .unwrap()
            .by_id
            .insert(id.to_string(), c);
        executor.created(&launch);
        Ok(())
    }
}

/// `create?platform=...` on a local image, as Docker checks it: an image of
/// another platform is "not found" (so a client pulls the one asked for).
/// A Wasm image satisfies any WASI platform, whatever OS its config names.
pub(super) fn check_platform(
    reference: &str,
    image: &image::ImageRecord,
    want: &str,
) -> Result<()> {
    use image::manifest::Platform;
    let want = Platform::parse(want)?;
    if image.os.is_empty() {
        return Ok(());
    }
    let have = Platform {
        os: image.os.clone(),
        architecture: image.architecture.clone(),
        ..Default::default()
    };
    if have.satisfies(&want) || (want.is_wasm() && matches!(image.kind, ImageKind::Wasm { .. })) {
        return Ok(());
    }
    Err(Error::not_found(format!(
        "image with reference {reference} was found but its platform ({}) does not match the specified platform ({})",
        have.name(),
        want.name()
    )))
}

pub(super) fn write_etc_files(dir: &Path, hostname: &str) -> Result<()> {
    std::fs::write(dir.join("hostname"), format!("{hostname}\n")).ctx("writing hostname")?;
    std::fs::write(
        dir.join("hosts"),
        format!(
            "127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        ),
    )
    .ctx("writing hosts")?;
    // The host's resolver settings, without loopback servers the container
    // cannot reach.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv: String = host
        .lines()
        .filter(|l| {
            !(l.trim_start().starts_with("nameserver")
                && l.split_whitespace()
                    .nth(1)
                    .is_some_and(|ip| ip.starts_with("127.") || ip == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("resolv.conf"), resolv).ctx("writing resolv.conf")?;
    Ok(())
}
