//! The native executor: Linux containers from an OCI runtime spec, run with
//! namespaces, an overlayfs root, cgroups, capabilities and seccomp, each
//! under a small shim process that outlives the daemon.

pub mod caps;
pub mod cgroups;
pub mod seccomp;
