//! Launch assembly: a container's record turned into what its executor
//! runs (the OCI spec and a [`Workload`]), at create and at every start.

use super::*;

impl Containers {
    pub(super) fn executor(&self, kind: ExecutorKind) -> Result<&Arc<dyn Executor>> {
        self.executors.get(&kind).ok_or_else(|| {
            Error::not_implemented(format!(
                "this berthd cannot run {} containers yet",
                match kind {
                    ExecutorKind::Native => "native Linux",
                    ExecutorKind::Wasm => "Wasm",
                }
            ))
        })
    }

    pub(super) fn launch(&self, c: &Container, rec: &ContainerRecord) -> Result<Launch> {
        let mut argv = vec![rec.path.clone()];
        argv.extend(rec.args.iter().cloned());
        let rootfs = c.dir.join("rootfs");
        let (spec, workload) = match &rec.workload {
            WorkloadRecord::Wasm(w) => (
                spec::oci_spec(&argv, &rec.config, &rec.host_config, &rootfs)?,
                Workload::Wasm(WasmModule {
                    digest: w.digest.clone(),
                    path: c.dir.join("module.wasm"),
                    target: w.target,
                }),
            ),
            WorkloadRecord::Native(n) => {
                let spec = spec::native_spec(&spec::NativeSpecInput {
                    id: &rec.id,
                    argv: &argv,
                    config: &rec.config,
                    host: &rec.host_config,
                    rootfs: &rootfs,
                    capabilities: &n.capabilities,
                    cgroups_path: &format!("/{}/{}", self.native.cgroup_parent, rec.id),
                })?;
                let runtime = match &n.runtime {
                    None => None,
                    Some(name) => {
                        Some(self.native.runtimes.get(name).cloned().ok_or_else(|| {
                            Error::invalid(format!(
                                "runtime {name} is no longer registered with berthd"
                            ))
                        })?)
                    }
                };
                let mut lowers = self.native.layers.lowers(&n.layers)?;
                match self.native.layers.init_layer(&lowers) {
                    Ok(Some(init)) => lowers.insert(0, init),
                    Ok(None) => {}
                    // The child then creates the files in the upper.
                    Err(e) => {
                        tracing::warn!(container = %rec.id, error = %e, "starting without an init layer")
                    }
                }
                let native = NativeLaunch {
                    lowers,
                    runtime,
                    init: rec.host_config.init.unwrap_or(false),
                    open_stdin: rec.config.open_stdin,
                    console_size: rec
                        .host_config
                        .console_size
                        .filter(|[h, w]| *h > 0 && *w > 0)
                        .map(|[h, w]| {
                            [h.min(u16::MAX as u64) as u16, w.min(u16::MAX as u64) as u16]
                        }),
                };
                (spec, Workload::Native(native))
            }
        };
        Ok(Launch {
            id: rec.id.clone(),
            spec,
            bundle: c.dir.clone(),
            rootfs,
            workload,
        })
    }
}
