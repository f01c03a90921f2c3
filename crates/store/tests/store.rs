//! Integration tests of the index: both stores, their agreement, and recovery.

use std::collections::HashMap;
use std::path::Path;

use docent_core::{
    ChunkId, ContentHash, DocId, DocKind, EmbedderIdentity, LineRange, SearchFilter,
};
use docent_store::{ChunkRecord, Index, OpenMode, StoreError, VectorIndexKind};

const DIM: usize = 8;

fn ident() -> EmbedderIdentity {
    EmbedderIdentity {
        model: "fake-model-a".into(),
        checksum: "blake3:aaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
        dim: DIM,
    }
}

fn other_ident() -> EmbedderIdentity {
    EmbedderIdentity {
        model: "fake-model-b".into(),
        checksum: "blake3:bbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
        dim: DIM,
    }
}

/// A deterministic unit vector for a text: a stand-in for an embedding model.
fn fake_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; DIM];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    for x in v.iter_mut() {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        *x = ((h % 2000) as f32 / 1000.0) - 1.0;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn rec(path: &str, ordinal: u32, kind: DocKind, text: &str) -> ChunkRecord {
    let doc_id = DocId::for_source(path, None);
    ChunkRecord {
        id: ChunkId::derive(&doc_id, text, 0),
        doc_id,
        path: path.to_string(),
        part: None,
        kind,
        ordinal,
        text: text.to_string(),
        context: Some("Context heading".into()),
        page: (kind == DocKind::Pdf).then_some(ordinal + 1),
        lines: LineRange::new(ordinal * 10 + 1, ordinal * 10 + 9),
        bytes: (ordinal as usize * 100)..(ordinal as usize * 100 + text.len()),
        heading: Some("Context heading".into()),
        title: None,
        subject: None,
        from: None,
        date: None,
        thread_id: None,
        message_id: None,
        content_hash: ContentHash::of(text.as_bytes()),
        vector: fake_vector(text),
    }
}

fn email(
    path: &str,
    ordinal: u32,
    text: &str,
    from: &str,
    subject: &str,
    date: &str,
) -> ChunkRecord {
    let mut r = rec(path, ordinal, DocKind::Email, text);
    r.part = Some(format!("message {}", ordinal + 1));
    r.doc_id = DocId::for_source(path, r.part.as_deref());
    r.id = ChunkId::derive(&r.doc_id, text, 0);
    r.from = Some(from.into());
    r.subject = Some(subject.into());
    r.context = Some(subject.into());
    r.heading = None;
    r.date = Some(date.into());
    r.thread_id = Some("<t1@example.com>".into());
    r.message_id = Some(format!("<m{ordinal}@example.com>"));
    r
}

fn note_a() -> Vec<ChunkRecord> {
    vec![
        rec(
            "/docs/a.md",
            0,
            DocKind::Note,
            "The library opens at nine in the morning",
        ),
        rec(
            "/docs/a.md",
            1,
            DocKind::Note,
            "Borrowed books are due within three weeks",
        ),
        rec(
            "/docs/a.md",
            2,
            DocKind::Note,
            "Late fees were abolished in 2019",
        ),
    ]
}

fn pdf_b() -> Vec<ChunkRecord> {
    vec![
        rec(
            "/docs/sub/b.pdf",
            0,
            DocKind::Pdf,
            "Annual budget report for the library board",
        ),
        rec(
            "/docs/sub/b.pdf",
            1,
            DocKind::Pdf,
            "Roof repairs cost more than expected",
        ),
    ]
}

async fn open(dir: &Path) -> Index {
    Index::open(dir, &ident(), OpenMode::ReadWrite)
        .await
        .unwrap()
}

async fn populated(dir: &Path) -> Index {
    let mut index = open(dir).await;
    index
        .write(
            &["/docs/a.md".into(), "/docs/sub/b.pdf".into()],
            [note_a(), pdf_b()].concat(),
        )
        .await
        .unwrap();
    index
}

fn ids(hits: &[docent_core::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.chunk_id.to_string()).collect()
}

fn manifest(entries: &[(&str, u32)]) -> HashMap<String, u32> {
    entries.iter().map(|(p, n)| (p.to_string(), *n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_open_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Index::stored_identity(dir.path()).unwrap(), None);
    let index = open(dir.path()).await;
    assert!(dir.path().join("index/meta.json").exists());
    assert!(dir.path().join("index/lance").is_dir());
    assert!(dir.path().join("index/tantivy").is_dir());
    let stats = index.stats().await.unwrap();
    assert_eq!((stats.chunks, stats.paths), (0, 0));
    assert!(stats.bytes_on_disk > 0);
    drop(index);

    assert_eq!(Index::stored_identity(dir.path()).unwrap(), Some(ident()));
    let mut index = populated(dir.path()).await;
    drop(index);
    index = open(dir.path()).await;
    let ro = Index::open(dir.path(), &ident(), OpenMode::ReadOnly)
        .await
        .unwrap();
    for i in [&index, &ro] {
        let stats = i.stats().await.unwrap();
        assert_eq!((stats.chunks, stats.paths), (5, 2));
        assert_eq!(i.keyword_count(), 5);
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index/meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["format"], 1);
    assert_eq!(meta["embedder"]["model"], "fake-model-a");
    assert!(meta["created"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_open_of_a_missing_index_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let err = Index::open(dir.path(), &ident(), OpenMode::ReadOnly)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoIndex { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("hint: run `docent index <FOLDER>` first"),
        "{msg}"
    );
    assert!(
        !dir.path().join("index").exists(),
        "a reader creates nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_index_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()).await);
    let mut ro = Index::open(dir.path(), &ident(), OpenMode::ReadOnly)
        .await
        .unwrap();
    let err = ro
        .write(&["/docs/a.md".into()], Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert!(ro.reconcile(&HashMap::new()).await.is_err());
    assert_eq!(ro.stats().await.unwrap().chunks, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_embedding_model_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()).await);
    for mode in [OpenMode::ReadWrite, OpenMode::ReadOnly] {
        let err = Index::open(dir.path(), &other_ident(), mode)
            .await
            .unwrap_err();
        let StoreError::EmbedderMismatch {
            index_model,
            current_model,
            ..
        } = &err
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(index_model, "fake-model-a");
        assert_eq!(current_model, "fake-model-b");
        let msg = err.to_string();
        assert!(
            msg.contains("built with the embedding model fake-model-a"),
            "{msg}"
        );
        assert!(
            msg.contains("the configured model is fake-model-b"),
            "{msg}"
        );
        assert!(
            msg.contains("hint: run `docent reindex` to rebuild the vectors with fake-model-b, or set embed.model back to fake-model-a"),
            "{msg}"
        );
    }
    // Same name, other weights or dimension: still a different model.
    let mut changed = ident();
    changed.checksum = "blake3:cccccccccccc".into();
    assert!(matches!(
        Index::open(dir.path(), &changed, OpenMode::ReadOnly).await,
        Err(StoreError::EmbedderMismatch { .. })
    ));
    let mut changed = ident();
    changed.dim = 16;
    assert!(matches!(
        Index::open(dir.path(), &changed, OpenMode::ReadOnly).await,
        Err(StoreError::EmbedderMismatch { index, current, .. }) if index.dim == 8 && current.dim == 16
    ));
    // The stored identity still opens it.
    let stored = Index::stored_identity(dir.path()).unwrap().unwrap();
    assert_eq!(
        Index::open(dir.path(), &stored, OpenMode::ReadOnly)
            .await
            .unwrap()
            .stats()
            .await
            .unwrap()
            .chunks,
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    let meta_path = dir.path().join("index/meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["format"] = 99.into();
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let err = Index::open(dir.path(), &ident(), OpenMode::ReadWrite)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::FormatVersion { found: 99, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("hint:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_replace_and_delete_keep_both_stores_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = populated(dir.path()).await;
    let all = SearchFilter::default();
    let fees = &note_a()[2];

    let hits = index.vector_search(&fees.vector, 1, &all).await.unwrap();
    assert_eq!(hits[0].chunk_id, fees.id);
    assert!(
        (hits[0].score - 1.0).abs() < 1e-4,
        "cosine similarity {}",
        hits[0].score
    );
    assert_eq!(hits[0].text, fees.text);
    assert_eq!(hits[0].lines, fees.lines);
    let hits = index.keyword_search("abolished fee", 10, &all).unwrap();
    assert_eq!(ids(&hits), vec![fees.id.to_string()]);
    assert!(hits[0].score > 0.0);
    // Stemming: "libraries" finds "library"; the context line is searchable too.
    assert_eq!(
        index.keyword_search("libraries", 10, &all).unwrap().len(),
        2
    );
    assert_eq!(index.keyword_search("heading", 10, &all).unwrap().len(), 5);

    // Replace a.md by a single new chunk.
    let new = rec(
        "/docs/a.md",
        0,
        DocKind::Note,
        "Opening hours changed to ten o'clock",
    );
    index
        .write(&["/docs/a.md".into()], vec![new.clone()])
        .await
        .unwrap();
    assert!(
        index
            .keyword_search("abolished", 10, &all)
            .unwrap()
            .is_empty()
    );
    let hits = index.vector_search(&fees.vector, 10, &all).await.unwrap();
    assert!(!ids(&hits).contains(&fees.id.to_string()));
    assert_eq!(hits.len(), 3);
    assert_eq!(
        ids(&index.keyword_search("hours", 10, &all).unwrap()),
        vec![new.id.to_string()]
    );

    // Writing the same batch again changes nothing (a redone batch after a crash).
    index
        .write(&["/docs/a.md".into()], vec![new.clone()])
        .await
        .unwrap();
    assert_eq!(index.stats().await.unwrap().chunks, 3);
    assert_eq!(index.keyword_count(), 3);

    // Delete b.pdf only (no records).
    index
        .write(&["/docs/sub/b.pdf".into()], Vec::new())
        .await
        .unwrap();
    assert!(
        index
            .keyword_search("budget roof", 10, &all)
            .unwrap()
            .is_empty()
    );
    let hits = index
        .vector_search(&pdf_b()[0].vector, 10, &all)
        .await
        .unwrap();
    assert_eq!(ids(&hits), vec![new.id.to_string()]);
    let stats = index.stats().await.unwrap();
    assert_eq!((stats.chunks, stats.paths), (1, 1));
    assert_eq!(index.keyword_count(), 1);

    // Nothing at all is a valid write.
    index.write(&[], Vec::new()).await.unwrap();
    // A vector of the wrong dimension is a bug, reported as one.
    let mut bad = new.clone();
    bad.vector = vec![1.0; 3];
    assert!(matches!(
        index.write(&[], vec![bad]).await,
        Err(StoreError::VectorDim {
            expected: 8,
            found: 3,
            ..
        })
    ));
    assert!(matches!(
        index.vector_search(&[1.0; 3], 3, &all).await,
        Err(StoreError::VectorDim { .. })
    ));
    assert_eq!(index.stats().await.unwrap().chunks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_with_quotes_spaces_and_wildcards() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path()).await;
    let odd = "/home/o'neil/My Notes/100% it's_done.md";
    let near = "/home/o'neil/My Notes/100x its-done.md";
    let a = rec(
        odd,
        0,
        DocKind::Note,
        "Quarterly planning with the 'quoted' team",
    );
    let b = rec(near, 0, DocKind::Note, "Quarterly planning without quotes");
    index
        .write(&[odd.into(), near.into()], vec![a.clone(), b.clone()])
        .await
        .unwrap();
    let back = index.chunks_by_path(odd).await.unwrap();
    assert_eq!(back, vec![a.clone()]);

    let only_odd = SearchFilter {
        path_prefix: Some("/home/o'neil/My Notes/100% it's_".into()),
        ..Default::default()
    };
    let v = index.vector_search(&b.vector, 10, &only_odd).await.unwrap();
    assert_eq!(
        ids(&v),
        vec![a.id.to_string()],
        "% and _ are literal in a prefix"
    );
    let k = index.keyword_search("quarterly", 10, &only_odd).unwrap();
    assert_eq!(ids(&k), vec![a.id.to_string()]);

    let hostile = "/x' OR '1'='1";
    assert!(index.chunks_by_path(hostile).await.unwrap().is_empty());
    index.write(&[hostile.into()], Vec::new()).await.unwrap();
    assert_eq!(index.stats().await.unwrap().chunks, 2);

    index.write(&[odd.into()], Vec::new()).await.unwrap();
    assert!(index.chunks_by_path(odd).await.unwrap().is_empty());
    assert_eq!(index.chunks_by_path(near).await.unwrap().len(), 1);
    assert_eq!(index.keyword_count(), 1);
}

async fn mixed(dir: &Path) -> (Index, Vec<ChunkRecord>) {
    let mut index = open(dir).await;
    let mut all = [note_a(), pdf_b()].concat();
    all.push(email(
        "/mail/inbox.mbox",
        0,
        "Can we move the library board meeting",
        "Alice Smith <alice@example.com>",
        "Board meeting",
        "2024-03-01T09:00:00Z",
    ));
    all.push(email(
        "/mail/inbox.mbox",
        1,
        "The library budget is approved",
        "Bob <bob@example.org>",
        "Budget approved",
        "2024-06-15T12:30:00+02:00",
    ));
    all.push(email(
        "/mail/inbox.mbox",
        2,
        "Library fundraiser next spring",
        "alice@example.com",
        "Fundraiser",
        "2023-11-20",
    ));
    let paths: Vec<String> = vec![
        "/docs/a.md".into(),
        "/docs/sub/b.pdf".into(),
        "/mail/inbox.mbox".into(),
    ];
    index.write(&paths, all.clone()).await.unwrap();
    (index, all)
}

/// Both searches under one filter: the vector search returns exactly `want` (k exceeds the
/// index), the keyword search for "library" the chunks of `want` that contain the word.
async fn check(
    index: &Index,
    all: &[ChunkRecord],
    q: &[f32],
    name: &str,
    f: SearchFilter,
    mut want: Vec<String>,
) {
    want.sort();
    let mut v = ids(&index.vector_search(q, 20, &f).await.unwrap());
    v.sort();
    assert_eq!(v, want, "vector search, {name}");
    let mut k = ids(&index.keyword_search("library", 20, &f).unwrap());
    k.sort();
    let want_k: Vec<String> = want
        .iter()
        .filter(|id| {
            all.iter()
                .any(|r| &r.id.to_string() == *id && r.text.to_lowercase().contains("library"))
        })
        .cloned()
        .collect();
    assert_eq!(k, want_k, "keyword search, {name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_apply_to_both_searches() {
    let dir = tempfile::tempdir().unwrap();
    let (index, all) = mixed(dir.path()).await;
    let by_text = |t: &str| {
        all.iter()
            .find(|r| r.text.contains(t))
            .unwrap()
            .id
            .to_string()
    };
    let q = fake_vector("library");

    check(
        &index,
        &all,
        &q,
        "kind",
        SearchFilter {
            kinds: vec![DocKind::Pdf],
            ..Default::default()
        },
        vec![by_text("Annual budget"), by_text("Roof")],
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "two kinds",
        SearchFilter {
            kinds: vec![DocKind::Pdf, DocKind::Note],
            ..Default::default()
        },
        [note_a(), pdf_b()]
            .concat()
            .iter()
            .map(|r| r.id.to_string())
            .collect(),
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "path prefix",
        SearchFilter {
            path_prefix: Some("/docs/sub/".into()),
            ..Default::default()
        },
        vec![by_text("Annual budget"), by_text("Roof")],
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "from",
        SearchFilter {
            from: Some("alice".into()),
            ..Default::default()
        },
        vec![by_text("board meeting"), by_text("fundraiser")],
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "from, mixed case",
        SearchFilter {
            from: Some("ALICE".into()),
            ..Default::default()
        },
        vec![by_text("board meeting"), by_text("fundraiser")],
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "subject",
        SearchFilter {
            subject: Some("budget".into()),
            ..Default::default()
        },
        vec![by_text("budget is approved")],
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "after",
        SearchFilter {
            after: Some("2024-01-01".into()),
            ..Default::default()
        },
        vec![by_text("board meeting"), by_text("budget is approved")],
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "before",
        SearchFilter {
            before: Some("2024-03-01".into()),
            ..Default::default()
        },
        vec![by_text("fundraiser")],
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "after and before, inclusive then exclusive",
        SearchFilter {
            after: Some("2024-03-01".into()),
            before: Some("2024-06-15".into()),
            ..Default::default()
        },
        vec![by_text("board meeting")],
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "everything at once",
        SearchFilter {
            kinds: vec![DocKind::Email],
            path_prefix: Some("/mail".into()),
            from: Some("bob".into()),
            subject: Some("approved".into()),
            after: Some("2024-01-01".into()),
            before: Some("2025-01-01".into()),
        },
        vec![by_text("budget is approved")],
    )
    .await;
    check(
        &index,
        &all,
        &q,
        "matches nothing",
        SearchFilter {
            from: Some("nobody".into()),
            ..Default::default()
        },
        Vec::new(),
    )
    .await;

    let bad = SearchFilter {
        before: Some("soon".into()),
        ..Default::default()
    };
    assert!(matches!(
        index.vector_search(&q, 5, &bad).await,
        Err(StoreError::BadFilter {
            field: "before",
            ..
        })
    ));
    assert!(matches!(
        index.keyword_search("library", 5, &bad),
        Err(StoreError::BadFilter { .. })
    ));

    // Hits carry every field.
    let f = SearchFilter {
        from: Some("bob".into()),
        ..Default::default()
    };
    let want = all
        .iter()
        .find(|r| r.text.contains("approved"))
        .unwrap()
        .to_hit(0.0);
    for mut h in [
        index.vector_search(&q, 1, &f).await.unwrap().remove(0),
        index.keyword_search("budget", 1, &f).unwrap().remove(0),
    ] {
        h.score = 0.0;
        assert_eq!(h, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selective_filter_still_yields_k_hits() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path()).await;
    let mut records = Vec::new();
    for i in 0..300 {
        records.push(rec(
            "/many/notes.md",
            i,
            DocKind::Note,
            &format!("note number {i} about gardens"),
        ));
    }
    for i in 0..4 {
        records.push(email(
            "/mail/x.mbox",
            i,
            &format!("mail number {i} about gardens"),
            "carol@example.com",
            "Gardens",
            "2024-05-05",
        ));
    }
    index
        .write(&["/many/notes.md".into(), "/mail/x.mbox".into()], records)
        .await
        .unwrap();
    let f = SearchFilter {
        kinds: vec![DocKind::Email],
        ..Default::default()
    };
    let q = fake_vector("note number 7 about gardens");
    assert_eq!(index.vector_search(&q, 3, &f).await.unwrap().len(), 3);
    assert_eq!(index.keyword_search("gardens", 3, &f).unwrap().len(), 3);
    let hits = index
        .keyword_search("gardens", 1000, &SearchFilter::default())
        .unwrap();
    assert_eq!(hits.len(), 304);
    assert!(index.vector_search(&q, 0, &f).await.unwrap().is_empty());
    assert!(index.keyword_search("gardens", 0, &f).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyword_search_is_safe_on_any_input() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = mixed(dir.path()).await;
    let all = SearchFilter::default();
    let long = "library ".repeat(1250);
    let noise: String = (0..10_000)
        .map(|i| char::from(b'!' + (i % 90) as u8))
        .collect();
    let inputs = [
        "\"((a:b]]~^2 OR NOT",
        "",
        "   \t\n",
        "the and of a",
        long.as_str(),
        noise.as_str(),
        "図書館の予算",
        "📚📚 library 🏛️",
        "title:library AND body:*",
        "\u{0}\u{1b}[31m",
        "'; DROP TABLE chunks; --",
    ];
    for q in inputs {
        let r = index.keyword_search(q, 10, &all);
        assert!(r.is_ok(), "{q:?}: {r:?}");
    }
    assert!(index.keyword_search("", 10, &all).unwrap().is_empty());
    assert!(
        index
            .keyword_search("the and of a", 10, &all)
            .unwrap()
            .is_empty()
    );
    assert!(!index.keyword_search(&long, 10, &all).unwrap().is_empty());
    assert!(
        !index
            .keyword_search("📚📚 library 🏛️", 10, &all)
            .unwrap()
            .is_empty()
    );
    assert!(
        !index
            .keyword_search("\"((library:b]]~^2 OR NOT", 10, &all)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_vectors_by_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    let index = populated(dir.path()).await;
    let a = note_a();
    let unknown = ContentHash::of(b"never stored");
    let wanted = vec![
        a[0].content_hash.clone(),
        a[2].content_hash.clone(),
        unknown.clone(),
        a[0].content_hash.clone(),
    ];
    let got = index.vectors_for(&wanted).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[&a[0].content_hash], a[0].vector);
    assert_eq!(got[&a[2].content_hash], a[2].vector);
    assert!(!got.contains_key(&unknown));
    assert!(index.vectors_for(&[]).await.unwrap().is_empty());
    // Many hashes at once (several IN batches).
    let many: Vec<ContentHash> = (0..1000)
        .map(|i| ContentHash::of(format!("{i}").as_bytes()))
        .collect();
    assert!(index.vectors_for(&many).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_by_path_round_trips_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let (index, all) = mixed(dir.path()).await;
    let want: Vec<ChunkRecord> = all
        .iter()
        .filter(|r| r.path == "/mail/inbox.mbox")
        .cloned()
        .collect();
    let got = index.chunks_by_path("/mail/inbox.mbox").await.unwrap();
    assert_eq!(got, want);
    assert_eq!(
        got[1].vector, want[1].vector,
        "vectors are identical, bit for bit"
    );
    assert_eq!(
        index.chunks_by_path("/docs/sub/b.pdf").await.unwrap(),
        pdf_b()
    );
    assert!(index.chunks_by_path("/nowhere").await.unwrap().is_empty());

    // Scan pages through everything exactly once.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = index.scan(offset, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        offset += page.len();
        seen.extend(page);
    }
    seen.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = all.clone();
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(seen, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_leaves_a_consistent_index_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = populated(dir.path()).await;
    let report = index
        .reconcile(&manifest(&[
            ("/docs/a.md", 3),
            ("/docs/sub/b.pdf", 2),
            ("/docs/empty.md", 0),
        ]))
        .await
        .unwrap();
    assert_eq!(report.orphans_removed, 0);
    assert!(report.stale_paths.is_empty());
    assert_eq!(index.stats().await.unwrap().chunks, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_removes_files_the_manifest_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = populated(dir.path()).await;
    let report = index
        .reconcile(&manifest(&[("/docs/a.md", 3)]))
        .await
        .unwrap();
    assert_eq!(report.orphans_removed, 2);
    assert!(report.stale_paths.is_empty());
    assert!(
        index
            .chunks_by_path("/docs/sub/b.pdf")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        index
            .keyword_search("roof", 10, &SearchFilter::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(index.keyword_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reports_counts_that_disagree_with_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = populated(dir.path()).await;
    let report = index
        .reconcile(&manifest(&[
            ("/docs/a.md", 5),
            ("/docs/sub/b.pdf", 2),
            ("/docs/lost.md", 4),
        ]))
        .await
        .unwrap();
    assert_eq!(report.orphans_removed, 0);
    assert_eq!(report.stale_paths, vec!["/docs/a.md", "/docs/lost.md"]);
    assert!(index.chunks_by_path("/docs/a.md").await.unwrap().is_empty());
    assert!(
        index
            .keyword_search("abolished", 10, &SearchFilter::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(index.stats().await.unwrap().chunks, 2);
    assert_eq!(index.keyword_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_repairs_a_lost_keyword_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()).await);
    // The keyword write never happened (or its files were lost).
    std::fs::remove_dir_all(dir.path().join("index/tantivy")).unwrap();
    let mut index = open(dir.path()).await;
    assert_eq!(index.keyword_count(), 0);
    let report = index
        .reconcile(&manifest(&[("/docs/a.md", 3), ("/docs/sub/b.pdf", 2)]))
        .await
        .unwrap();
    assert_eq!(report.stale_paths, vec!["/docs/a.md", "/docs/sub/b.pdf"]);
    assert_eq!(index.stats().await.unwrap().chunks, 0);

    // Re-indexing the stale files brings both stores back.
    index
        .write(&report.stale_paths, [note_a(), pdf_b()].concat())
        .await
        .unwrap();
    let again = index
        .reconcile(&manifest(&[("/docs/a.md", 3), ("/docs/sub/b.pdf", 2)]))
        .await
        .unwrap();
    assert!(again.stale_paths.is_empty());
    assert_eq!(
        index
            .keyword_search("roof", 10, &SearchFilter::default())
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_is_promoted_in_place_of_the_live_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()).await);
    // A leftover staging from an interrupted reindex is cleared.
    std::fs::create_dir_all(dir.path().join("index.staging/junk")).unwrap();
    let old = Index::open(dir.path(), &ident(), OpenMode::ReadOnly)
        .await
        .unwrap();
    let mut staging = Index::create_staging(dir.path(), &other_ident())
        .await
        .unwrap();
    assert!(!dir.path().join("index.staging/junk").exists());
    let mut rows = old.scan(0, 100).await.unwrap();
    for r in &mut rows {
        r.vector = fake_vector(&format!("b:{}", r.text));
    }
    staging.write(&[], rows).await.unwrap();
    // Until promoted, the live index is still the old one.
    assert_eq!(Index::stored_identity(dir.path()).unwrap(), Some(ident()));
    drop(staging);
    drop(old);
    Index::promote_staging(dir.path()).unwrap();
    assert!(!dir.path().join("index.staging").exists());
    assert!(!dir.path().join("index.old").exists());
    assert_eq!(
        Index::stored_identity(dir.path()).unwrap(),
        Some(other_ident())
    );
    let index = Index::open(dir.path(), &other_ident(), OpenMode::ReadWrite)
        .await
        .unwrap();
    assert_eq!(index.stats().await.unwrap().chunks, 5);
    assert_eq!(index.keyword_count(), 5);
    let v = fake_vector(&format!("b:{}", note_a()[1].text));
    let hits = index
        .vector_search(&v, 1, &SearchFilter::default())
        .await
        .unwrap();
    assert_eq!(hits[0].chunk_id, note_a()[1].id);
    assert!(matches!(
        Index::open(dir.path(), &ident(), OpenMode::ReadOnly).await,
        Err(StoreError::EmbedderMismatch { .. })
    ));
}

fn set_complete(staging: &Path) {
    let path = staging.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(meta["complete"], false);
    meta["complete"] = true.into();
    std::fs::write(&path, meta.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_promotion_is_finished_or_rolled_back() {
    // Crash after the live index was moved aside, staging complete: the writer finishes.
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()).await);
    let mut staging = Index::create_staging(dir.path(), &other_ident())
        .await
        .unwrap();
    staging
        .write(&[], vec![rec("/new.md", 0, DocKind::Note, "fresh")])
        .await
        .unwrap();
    drop(staging);
    set_complete(&dir.path().join("index.staging"));
    std::fs::rename(dir.path().join("index"), dir.path().join("index.old")).unwrap();
    assert_eq!(
        Index::stored_identity(dir.path()).unwrap(),
        Some(other_ident())
    );
    let ro = Index::open(dir.path(), &other_ident(), OpenMode::ReadOnly)
        .await
        .unwrap();
    assert_eq!(ro.stats().await.unwrap().chunks, 1);
    drop(ro);
    let index = Index::open(dir.path(), &other_ident(), OpenMode::ReadWrite)
        .await
        .unwrap();
    assert_eq!(index.stats().await.unwrap().chunks, 1);
    assert!(!dir.path().join("index.old").exists());
    assert!(!dir.path().join("index.staging").exists());
    drop(index);

    // Same crash point, but the staging was never finished: the old index comes back.
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()).await);
    let staging = Index::create_staging(dir.path(), &other_ident())
        .await
        .unwrap();
    drop(staging);
    std::fs::rename(dir.path().join("index"), dir.path().join("index.old")).unwrap();
    let index = Index::open(dir.path(), &ident(), OpenMode::ReadWrite)
        .await
        .unwrap();
    assert_eq!(index.stats().await.unwrap().chunks, 5);
    assert!(!dir.path().join("index.old").exists());
    drop(index);

    // Crash after the swap, before index.old was removed.
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()).await);
    std::fs::create_dir_all(dir.path().join("index.old/lance")).unwrap();
    let index = Index::open(dir.path(), &ident(), OpenMode::ReadWrite)
        .await
        .unwrap();
    assert_eq!(index.stats().await.unwrap().chunks, 5);
    assert!(!dir.path().join("index.old").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_builds_a_vector_index_past_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path()).await;
    for batch in 0..4 {
        let records: Vec<ChunkRecord> = (0..150)
            .map(|i| {
                let n = batch * 150 + i;
                let kind = if n % 10 == 0 {
                    DocKind::Email
                } else {
                    DocKind::Note
                };
                rec(
                    &format!("/bulk/{batch}.md"),
                    i,
                    kind,
                    &format!("bulk chunk {n} text"),
                )
            })
            .collect();
        index
            .write(&[format!("/bulk/{batch}.md")], records)
            .await
            .unwrap();
    }
    let below = index.optimize(1000).await.unwrap();
    assert_eq!(below.rows, 600);
    assert!(!below.vector_index_built);
    assert_eq!(below.vector_index, None);
    assert!(below.fragments_compacted >= 4, "{below:?}");

    for kind in [VectorIndexKind::IvfPq, VectorIndexKind::IvfHnswSq] {
        let dir = tempfile::tempdir().unwrap();
        let mut fresh = open(dir.path()).await;
        fresh
            .write(&[], index.scan(0, 1000).await.unwrap())
            .await
            .unwrap();
        let r = fresh.optimize_with(500, kind).await.unwrap();
        assert!(r.vector_index_built, "{r:?}");
        assert_eq!(r.vector_index.as_deref(), Some(kind.as_str()));
        // Queries still find the exact vector first, and a selective filter still yields k.
        let target = rec("/bulk/1.md", 7, DocKind::Note, "bulk chunk 157 text");
        let hits = fresh
            .vector_search(&target.vector, 5, &SearchFilter::default())
            .await
            .unwrap();
        assert_eq!(hits[0].chunk_id, target.id, "{kind:?}");
        let emails = SearchFilter {
            kinds: vec![DocKind::Email],
            ..Default::default()
        };
        assert_eq!(
            fresh
                .vector_search(&target.vector, 20, &emails)
                .await
                .unwrap()
                .len(),
            20
        );
        // Rows added later are searched too, and folded in by the next optimize.
        let late = rec("/late.md", 0, DocKind::Note, "added after the index");
        fresh
            .write(&["/late.md".into()], vec![late.clone()])
            .await
            .unwrap();
        let hits = fresh
            .vector_search(&late.vector, 1, &SearchFilter::default())
            .await
            .unwrap();
        assert_eq!(hits[0].chunk_id, late.id);
        let again = fresh.optimize_with(500, kind).await.unwrap();
        assert!(!again.vector_index_built);
        assert_eq!(again.unindexed_rows, 0, "{again:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_sees_a_writers_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = populated(dir.path()).await;
    let reader = Index::open(dir.path(), &ident(), OpenMode::ReadOnly)
        .await
        .unwrap();
    let late = rec("/late.md", 0, DocKind::Note, "zebra crossing");
    writer
        .write(&["/late.md".into()], vec![late.clone()])
        .await
        .unwrap();
    let all = SearchFilter::default();
    let mut seen = (false, false);
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        seen.0 = !reader.keyword_search("zebra", 1, &all).unwrap().is_empty();
        seen.1 = reader.vector_search(&late.vector, 1, &all).await.unwrap()[0].chunk_id == late.id;
        if seen == (true, true) {
            break;
        }
    }
    assert_eq!(seen, (true, true));
}
