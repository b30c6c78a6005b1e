//! Registries: pulling and pushing images (being written).
