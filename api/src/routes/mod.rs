//! One router table per area, as moby has: system, containers, images, and
//! the endpoints berth does not implement yet (501).

pub mod archive;
pub mod containers;
pub mod images;
pub mod system;
pub mod unimplemented;

use berth_runtime::Engine;
use std::sync::Arc;

/// What every handler gets.
pub type AppState = Arc<Engine>;
