//! Container filesystem endpoints: archive (docker cp), export, changes
//! (being written).

use super::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
