//! The engine's logic with fake models (hash embeddings, whitespace tokens, scripted answers):
//! ingest, search, reindex and ask without model weights, so these run in seconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use docent_config::{Paths, Settings};
use docent_engine::{
    AskRequest, Asker, Context, IngestSummary, SearchRequest, Searcher, ingest, reindex,
};
use docent_retrieve::Mode;
use docent_test_support::{FakeModels, ScriptedGenerator};

pub fn rt() -> tokio::runtime::Runtime {
    // Multi-threaded: reindex and eval embed with `block_in_place`.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A context over a data directory in `home`, with fake models and no models directory.
pub fn fake_context(home: &Path, models: FakeModels) -> Context {
    let paths = Paths {
        data_dir: home.join("data"),
        models_dir: home.join("no-models"),
    };
    Context::new(paths, Settings::default()).with_models(Arc::new(models))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

async fn index(ctx: &Context, root: &Path) -> IngestSummary {
    ingest(ctx, &[root.to_path_buf()], &|_| {}).await.unwrap()
}

async fn paths_found(ctx: &Context, query: &str, mode: Mode) -> Vec<String> {
    let searcher = Searcher::open(ctx, mode).await.unwrap();
    let req = SearchRequest {
        query: query.into(),
        k: 5,
        mode,
    };
    let r = searcher.search(&req, Path::new("/")).await.unwrap();
    r.hits
        .into_iter()
        .map(|h| {
            Path::new(&h.hit.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

const ROOF: &str = "# Roof\n\nThe slate roof membrane is replaced in March by the roofer.\n";
const FLOOR: &str = "Cork flooring was chosen for the children's reading room.\n";
const RAMP: &str = "# Ramp\n\nThe entrance ramp may rise one unit in twelve.\n";

#[test]
fn ingest_is_incremental_follows_moves_and_reuses_vectors() {
    let home = docent_test_support::tempdir();
    let docs = home.path().join("docs");
    write(&docs, "roof.md", ROOF);
    write(&docs, "floor.txt", FLOOR);
    write(&docs, "ramp.md", RAMP);
    write(&docs, "empty.txt", "");
    let ctx = fake_context(home.path(), FakeModels::new());
    rt().block_on(async {
        let s = index(&ctx, &docs).await;
        assert_eq!(
            (s.files_seen, s.files_indexed, s.files_unchanged),
            (4, 3, 0)
        );
        assert_eq!(s.files_skipped.len(), 1, "{:?}", s.files_skipped);
        assert!(!s.files_skipped[0].error);
        assert!(s.chunks_indexed >= 3);
        assert_eq!(s.chunks_embedded + s.chunks_cached, s.chunks_indexed);
        assert_eq!(
            paths_found(&ctx, "membrane", Mode::Hybrid).await[0],
            "roof.md"
        );

        // Nothing changed: nothing is read.
        let s = index(&ctx, &docs).await;
        assert_eq!(
            (s.files_unchanged, s.files_indexed, s.bytes_read),
            (4, 0, 0)
        );

        // A move keeps its vectors; the old path leaves the index.
        std::fs::rename(docs.join("roof.md"), docs.join("moved-roof.md")).unwrap();
        let s = index(&ctx, &docs).await;
        assert_eq!((s.files_moved, s.chunks_embedded), (1, 0), "{s:?}");
        assert_eq!(s.files_removed, 1);
        let found = paths_found(&ctx, "membrane", Mode::Bm25).await;
        assert_eq!(found, ["moved-roof.md"]);

        // Equal passages in a new file come from the cache, not the model.
        write(&docs, "copy.md", &format!("{ROOF}\n\n"));
        let s = index(&ctx, &docs).await;
        assert_eq!(s.files_indexed, 1, "{s:?}");
        assert_eq!(s.chunks_embedded, 0, "{s:?}");
        assert!(s.chunks_cached >= 1, "{s:?}");

        // A deleted file is gone from every search mode.
        std::fs::remove_file(docs.join("ramp.md")).unwrap();
        let s = index(&ctx, &docs).await;
        assert_eq!(s.files_removed, 1);
        for mode in [Mode::Bm25, Mode::Vector, Mode::Hybrid] {
            let found = paths_found(&ctx, "entrance ramp twelve", mode).await;
            assert!(!found.iter().any(|p| p == "ramp.md"), "{mode}: {found:?}");
        }
    });
}

#[test]
fn every_search_mode_finds_the_file_with_the_words() {
    let home = docent_test_support::tempdir();
    let docs = home.path().join("docs");
    write(&docs, "roof.md", ROOF);
    write(&docs, "floor.txt", FLOOR);
    write(&docs, "ramp.md", RAMP);
    let ctx = fake_context(home.path(), FakeModels::new());
    rt().block_on(async {
        index(&ctx, &docs).await;
        for mode in [Mode::Bm25, Mode::Vector, Mode::Hybrid] {
            let found = paths_found(&ctx, "cork flooring reading room", mode).await;
            assert_eq!(
                found.first().map(String::as_str),
                Some("floor.txt"),
                "{mode}"
            );
        }
    });
}

#[test]
fn reindex_gives_every_chunk_a_new_vector_and_search_keeps_working() {
    let home = docent_test_support::tempdir();
    let docs = home.path().join("docs");
    write(&docs, "roof.md", ROOF);
    write(&docs, "floor.txt", FLOOR);
    let ctx = fake_context(home.path(), FakeModels::new());
    rt().block_on(async {
        let s = index(&ctx, &docs).await;
        let progress = std::sync::Mutex::new(Vec::new());
        let r = reindex(&ctx, &|n| progress.lock().unwrap().push(n))
            .await
            .unwrap();
        assert_eq!(r.chunks, s.chunks);
        assert_eq!(r.to_model, "hash");
        assert_eq!(progress.lock().unwrap().last(), Some(&s.chunks));
        assert_eq!(
            paths_found(&ctx, "membrane", Mode::Vector).await[0],
            "roof.md"
        );
    });
}

#[test]
fn the_language_model_is_loaded_only_when_a_question_needs_it() {
    let home = docent_test_support::tempdir();
    let docs = home.path().join("docs");
    write(&docs, "roof.md", ROOF);
    write(&docs, "floor.txt", FLOOR);
    // No generator at all: loading one fails like a model that is not installed.
    let ctx = fake_context(home.path(), FakeModels::new());
    rt().block_on(async {
        index(&ctx, &docs).await;
        let asker = Asker::open_lazy(&ctx).await.unwrap();
        let ask = |q: &str| AskRequest {
            question: q.into(),
            history: vec![],
            k: None,
        };
        let cancel = Arc::new(AtomicBool::new(false));
        // Refused before the model is needed: no load, no error.
        let a = asker
            .ask(
                &ask("zebra quasar marmalade"),
                Path::new("/"),
                cancel.clone(),
                &mut |_| {},
            )
            .await
            .unwrap();
        assert!(a.refused, "{}", a.text);
        // Answerable: the model is needed, and its absence is the error.
        let e = asker
            .ask(
                &ask("When is the slate roof membrane replaced?"),
                Path::new("/"),
                cancel,
                &mut |_| {},
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not installed"), "{e}");
    });
}

#[test]
fn questions_are_answered_from_the_right_file_with_checked_citations() {
    let home = docent_test_support::tempdir();
    let docs = home.path().join("docs");
    write(&docs, "roof.md", ROOF);
    write(&docs, "floor.txt", FLOOR);
    write(&docs, "ramp.md", RAMP);
    let generator = ScriptedGenerator::responding(|messages| {
        let user = &messages
            .last()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let n = user
            .lines()
            .filter(|l| l.starts_with('[') && l.contains("roof.md"))
            .find_map(|l| l[1..].split(']').next()?.parse::<usize>().ok())
            .unwrap_or(99);
        format!("The slate roof membrane is replaced in March [{n}]. Also see [7].")
    });
    let log = generator.log();
    let ctx = fake_context(home.path(), FakeModels::with_generator(generator));
    rt().block_on(async {
        index(&ctx, &docs).await;
        let asker = Asker::open_lazy(&ctx).await.unwrap();
        let req = AskRequest {
            question: "When is the slate roof membrane replaced?".into(),
            history: vec![],
            k: None,
        };
        let a = asker
            .ask(
                &req,
                Path::new("/"),
                Arc::new(AtomicBool::new(false)),
                &mut |_| {},
            )
            .await
            .unwrap();
        assert!(!a.refused, "{}", a.text);
        assert_eq!(log.calls().len(), 1);
        assert_eq!(a.model, "scripted");
        assert_eq!(a.removed_citations, vec![7]);
        let c = &a.citations[0];
        assert!(c.path.ends_with("roof.md"), "{}", c.path);
        assert!(c.quote.contains("membrane"), "{}", c.quote);
    });
}
