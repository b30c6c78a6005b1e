//! What clients see of containers: `inspect`, `ps` (with its filters)
//! and `logs`.

use super::*;

impl Containers {
    /// `GET /containers/{id}/logs`: entries already logged and, with
    /// `follow`, those to come until the container stops.
    pub fn logs(
        &self,
        name: &str,
        opts: LogOptions,
    ) -> Result<(bool, mpsc::Receiver<logs::Entry>)> {
        let c = self.get(name)?;
        let tty = c.record().config.tty;
        let (tx, rx) = mpsc::channel(256);
        let sink = c.logs.clone();
        let mut progress = sink.progress();
        let path = sink.path().to_path_buf();
        let filter = opts.filter.clone();
        let follow = opts.follow;
        // Read the history now (tail applies to it only), then follow.
        let p = *progress.borrow_and_update();
        let (history, mut offset) = logs::read_range(&path, 0, p.len, &filter)?;
        let live_filter = logs::Filter {
            tail: None,
            ..filter
        };
        tokio::spawn(async move {
            for e in history {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            loop {
                let p = *progress.borrow_and_update();
                if p.len > offset {
                    let (entries, next) = match logs::read_range(&path, offset, p.len, &live_filter)
                    {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "following log");
                            return;
                        }
                    };
                    offset = next;
                    for e in entries {
                        if tx.send(e).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                if !p.open {
                    return;
                }
                tokio::select! {
                    r = progress.changed() => if r.is_err() { return },
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((tty, rx))
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name: &str) -> Result<wire::Inspect> {
        let c = self.get(name)?;
        let (rec, timings) = {
            let inner = c.inner.lock().unwrap();
            let t = &inner.timings;
            let known = t.create_micros > 0 || t.start_micros.is_some();
            (inner.record.clone(), known.then(|| t.clone()))
        };
        Ok(wire::Inspect {
            id: rec.id.clone(),
            created: rec.created.clone(),
            path: rec.path.clone(),
            args: rec.args.clone(),
            state: wire::State {
                status: rec.state.status.as_str().into(),
                // Docker's paused containers are running, and paused; its
                // restarting ones are running, and restarting.
                running: rec.state.status.counts_as_running(),
                paused: rec.state.status == Status::Paused,
                restarting: rec.state.status == Status::Restarting,
                oom_killed: rec.state.oom_killed,
                dead: rec.state.status == Status::Dead,
                pid: rec.state.pid,
                exit_code: rec.state.exit_code,
                error: rec.state.error.clone(),
                started_at: rec.state.started_at.clone(),
                finished_at: rec.state.finished_at.clone(),
            },
            image: rec.image_id.to_string(),
            // The files bind-mounted into a native container (a Wasm
            // container has none), as Docker shows them.
            resolv_conf_path: etc_path(&rec, &c.dir, "resolv.conf"),
            hostname_path: etc_path(&rec, &c.dir, "hostname"),
            hosts_path: etc_path(&rec, &c.dir, "hosts"),
            log_path: c.logs.path().display().to_string(),
            name: format!("/{}", rec.name),
            restart_count: rec.restart_count,
            driver: "berth".into(),
            platform: rec.platform.clone(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: Some(self.execs.of(&rec.id)).filter(|v| !v.is_empty()),
            host_config: wire::HostConfig {
                // The runtime that runs it, as Docker names its default
                // ("runc"): berth's own, for native and Wasm containers.
                runtime: Some(rec.host_config.runtime.as_str())
                    .filter(|r| !r.is_empty())
                    .unwrap_or(DEFAULT_RUNTIME)
                    .to_string(),
                ..rec.host_config.clone()
            },
            graph_driver: wire::GraphDriver {
                name: "berth".into(),
                data: [(
                    "RootDir".to_string(),
                    c.dir.join("rootfs").display().to_string(),
                )]
                .into(),
            },
            mounts: Vec::new(),
            config: rec.config.clone(),
            network_settings: serde_json::json!({"Networks": {}}),
            executor: rec.workload.kind().as_str().into(),
            timings,
        })
    }

    /// `GET /containers/json`.
    pub fn list(&self, all: bool, filters: &ListFilters) -> Result<Vec<wire::Summary>> {
        let cs: Vec<Arc<Container>> = self
            .registry
            .read()
            .unwrap()
            .by_id
            .values()
            .cloned()
            .collect();
        let mut recs: Vec<ContainerRecord> = cs.iter().map(|c| c.record()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let now = chrono::Utc::now();
        let mut out = Vec::new();
        for rec in recs {
            let running = rec.state.status.counts_as_running();
            if !all && !running && filters.status.is_empty() {
                continue;
            }
            if !filters.matches(&rec, &self.images) {
                continue;
            }
            let mut command = vec![rec.path.clone()];
            command.extend(rec.args.iter().cloned());
            out.push(wire::Summary {
                id: rec.id.clone(),
                names: vec![format!("/{}", rec.name)],
                image: rec.image.clone(),
                image_id: rec.image_id.to_string(),
                command: command.join(" "),
                created: util::parse_rfc3339(&rec.created)
                    .map(|t| t.timestamp())
                    .unwrap_or(0),
                ports: Vec::new(),
                labels: rec.config.labels.clone(),
                state: rec.state.status.as_str().into(),
                status: status_text(&rec.state, now),
                host_config: wire::SummaryHostConfig {
                    network_mode: if rec.host_config.network_mode.is_empty() {
                        "default".into()
                    } else {
                        rec.host_config.network_mode.clone()
                    },
                },
                network_settings: serde_json::json!({"Networks": {}}),
                mounts: Vec::new(),
                executor: rec.workload.kind().as_str().into(),
            });
        }
        Ok(out)
    }
}

/// `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for a native
/// container, bind-mounted over its own.
/// Where a native container's `/etc/<name>` comes from; empty for Wasm.
pub(super) fn etc_path(rec: &ContainerRecord, dir: &Path, name: &str) -> String {
    if rec.workload.native().is_some() {
        dir.join(name).display().to_string()
    } else {
        String::new()
    }
}

/// Docker's `Status` column: "Up 5 seconds", "Exited (0) 2 minutes ago".
pub fn status_text(st: &StateRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    use berth_api_types::units::human_duration;
    let since = |t: &str| {
        util::parse_rfc3339(t)
            .and_then(|t| (now - t).to_std().ok())
            .map(|d| human_duration(d.as_secs_f64()))
    };
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(&st.started_at).unwrap_or_default()),
        Status::Paused => format!("Up {} (Paused)", since(&st.started_at).unwrap_or_default()),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            since(&st.finished_at).unwrap_or_default()
        ),
        Status::Exited => match since(&st.finished_at) {
            Some(d) if st.finished_at != util::ZERO_TIME => {
                format!("Exited ({}) {} ago", st.exit_code, d)
            }
            _ => format!("Exited ({})", st.exit_code),
        },
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// `filters` of `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    pub id: Vec<String>,
    pub name: Vec<String>,
    pub label: Vec<String>,
    pub status: Vec<String>,
    pub exited: Vec<i64>,
    pub ancestor: Vec<String>,
}

/// Docker's filter JSON as (key, values) pairs: `{"status":["exited"]}`,
/// or the old `{"status":{"exited":true}}` whose keys are the values.
pub(crate) fn filter_pairs(json: &str) -> Result<Vec<(String, Vec<String>)>> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Error::invalid(format!("invalid filters: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::invalid("invalid filters: expected a JSON object"))?;
    let mut pairs = Vec::with_capacity(obj.len());
    for (key, values) in obj {
        let values: Vec<String> = match values {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect(),
            serde_json::Value::Object(o) => o.keys().cloned().collect(),
            _ => return Err(Error::invalid(format!("invalid filter values for '{key}'"))),
        };
        pairs.push((key.clone(), values));
    }
    Ok(pairs)
}

impl ListFilters {
    /// Parses Docker's filter JSON: `{"status":["exited"]}` (or the old
    /// `{"status":{"exited":true}}`).
    pub fn parse(json: &str) -> Result<ListFilters> {
        let mut f = ListFilters::default();
        if json.is_empty() {
            return Ok(f);
        }
        for (key, values) in filter_pairs(json)? {
            match key.as_str() {
                "id" => f.id = values,
                "name" => f.name = values,
                "label" => f.label = values,
                "status" => {
                    for s in &values {
                        if ![
                            "created",
                            "restarting",
                            "running",
                            "removing",
                            "paused",
                            "exited",
                            "dead",
                        ]
                        .contains(&s.as_str())
                        {
                            return Err(Error::invalid(format!(
                                "invalid filter 'status={s}': use created, restarting, running, removing, paused, exited or dead"
                            )));
                        }
                    }
                    f.status = values
                }
                "exited" => {
                    f.exited = values
                        .iter()
                        .map(|s| {
                            s.parse()
                                .map_err(|_| Error::invalid(format!("invalid filter 'exited={s}'")))
                        })
                        .collect::<Result<_>>()?
                }
                "ancestor" => f.ancestor = values,
                other => {
                    return Err(Error::invalid(format!(
                        "invalid filter '{other}': berth filters containers by id, name, label, status, exited and ancestor"
                    )));
                }
            }
        }
        Ok(f)
    }

    pub(super) fn matches(&self, rec: &ContainerRecord, images: &Images) -> bool {
        if !self.id.is_empty() && !self.id.iter().any(|p| rec.id.starts_with(p.as_str())) {
            return false;
        }
        if !self.name.is_empty()
            && !self
                .name
                .iter()
                .any(|n| rec.name.contains(n.trim_start_matches('/')))
        {
            return false;
        }
        for l in &self.label {
            let ok = match l.split_once('=') {
                Some((k, v)) => rec.config.labels.get(k).map(String::as_str) == Some(v),
                None => rec.config.labels.contains_key(l),
            };
            if !ok {
                return false;
            }
        }
        if !self.status.is_empty() && !self.status.iter().any(|s| s == rec.state.status.as_str()) {
            return false;
        }
        if !self.exited.is_empty()
            && (rec.state.status != Status::Exited || !self.exited.contains(&rec.state.exit_code))
        {
            return false;
        }
        if !self.ancestor.is_empty()
            && !self.ancestor.iter().any(|a| {
                *a == rec.image
                    || images
                        .resolve(a)
                        .map(|i| i.id == rec.image_id)
                        .unwrap_or(false)
            })
        {
            return false;
        }
        true
    }
}
