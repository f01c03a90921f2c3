//! `docent config`: the effective settings and where things live.

use std::process::ExitCode;

use docent_engine::Context;

use crate::cli::ConfigArgs;

pub fn run(ctx: &Context, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    if args.default {
        print!("{}", docent_config::DEFAULT_CONFIG);
        return Ok(ExitCode::SUCCESS);
    }
    println!("# data directory:   {}", ctx.paths.data_dir.display());
    println!("# models directory: {}", ctx.paths.models_dir.display());
    println!("# user config:      {}", ctx.paths.config_file().display());
    println!("# embedding model:  {}", ctx.embed_model_dir().display());
    println!();
    print!("{}", toml::to_string(&ctx.settings)?);
    Ok(ExitCode::SUCCESS)
}
