//! # docent-engine
