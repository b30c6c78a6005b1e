//! berth's end-to-end tests: one binary, a real berthd per test.

mod api;
mod daemon;
mod harness;
mod images;
mod native;
mod wasm;
