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
    let ocr = docent_parse::ocr::installed();
    match (&ocr.tesseract, &ocr.pdftoppm) {
        (Some(tesseract), pdftoppm) => {
            let langs = docent_parse::ocr::languages(tesseract);
            println!(
                "# OCR:              {} (languages installed: {}){}",
                crate::commands::display_path(&tesseract.to_string_lossy()),
                if langs.is_empty() {
                    "none".to_string()
                } else {
                    langs.join(", ")
                },
                if pdftoppm.is_none() {
                    "; pdftoppm missing: scanned PDF pages need poppler"
                } else {
                    ""
                }
            );
        }
        (None, _) => println!(
            "# OCR:              not available: {}",
            docent_parse::OcrUnavailable::NotInstalled("tesseract")
        ),
    }
    println!();
    print!("{}", toml::to_string(&ctx.settings)?);
    Ok(ExitCode::SUCCESS)
}
