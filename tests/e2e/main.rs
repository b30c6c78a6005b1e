//! berth's end-to-end tests: one binary, a real berthd per test.

mod api;
mod daemon;
mod docker_cli;
mod docker_core;
mod docker_py;
mod fs;
mod harness;
mod images;
mod native;
mod registry;
mod wasm;
