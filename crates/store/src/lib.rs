//! # docent-store
