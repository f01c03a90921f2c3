//! Resolves settings once: paths from flags and environment, then the layered configuration.

use anyhow::Context as _;
use docent_config::{Paths, Settings};
use docent_engine::Context;

use crate::cli::GlobalArgs;

pub fn resolve(global: &GlobalArgs) -> anyhow::Result<Context> {
    let paths = Paths::resolve(
        global.data_dir.clone(),
        None,
        std::env::var_os("DOCENT_MODELS").map(Into::into),
    )?;
    // The data directory holds the text of every indexed document: private to its owner.
    match docent_store::private::tighten_dir(&paths.data_dir) {
        Ok(None) => {}
        Ok(Some(old)) => eprintln!(
            "warning: {}: the data directory was open to other users (mode {old:o}); it is private now (700)",
            crate::commands::shown(&paths.data_dir.display().to_string())
        ),
        Err(e) => eprintln!(
            "warning: {}: cannot make the data directory private: {e}\nhint: chmod 700 it yourself",
            crate::commands::shown(&paths.data_dir.display().to_string())
        ),
    }
    let user_file = global.config.clone().unwrap_or_else(|| paths.config_file());
    if global.config.is_some() && !user_file.exists() {
        anyhow::bail!(
            "{}: configuration file not found\nhint: check --config / DOCENT_CONFIG",
            user_file.display()
        );
    }
    let settings =
        Settings::load(Some(&user_file), std::env::vars()).context("invalid configuration")?;
    let mut ctx = Context::new(paths, settings);
    ctx.pdf_worker = std::env::current_exe().ok();
    Ok(ctx)
}
