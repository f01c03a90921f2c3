//! Integration tests of the engine over a real index of `fixtures/` (built once per run with the
//! real embedding model), with fakes where a test is about logic rather than a model.

mod ask;
mod logic;

use std::path::PathBuf;
use std::sync::OnceLock;

use docent_config::{Paths, Settings};
use docent_engine::Context;

/// The fixtures, indexed once into a temporary data directory shared by the tests.
pub fn fixture_index() -> &'static Context {
    static INDEX: OnceLock<(tempfile::TempDir, Context)> = OnceLock::new();
    &INDEX
        .get_or_init(|| {
            docent_test_support::require_model("all-MiniLM-L6-v2");
            let home = docent_test_support::tempdir();
            let paths = Paths {
                data_dir: home.path().join("data"),
                models_dir: docent_test_support::models_dir(),
            };
            let ctx = Context::new(paths, Settings::default());
            let roots: Vec<PathBuf> = ["pdf", "notes", "mail"]
                .iter()
                .map(|d| docent_test_support::fixture(d))
                .collect();
            let c = ctx.clone();
            // A runtime of its own: each test has its own, and this one outlives none of them.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().expect("runtime");
                rt.block_on(docent_engine::ingest(&c, &roots, &|_| {}))
                    .expect("index the fixtures")
            })
            .join()
            .expect("indexing thread");
            (home, ctx)
        })
        .1
}
