//! The IndexedDB store in real headless Chromium: what a user does survives closing and reopening the
//! database (a reload), and one edit lands whole.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use lamina_app::store::runs::{PredictionRecord, RunRecord};
use lamina_app::store::{delete_database, AssetRecord, Store, SCHEMA_VERSION};
use lamina_core::edit::{instance_from_mask, Edit};
use lamina_core::labels::{Asset, LabelStatus, Ontology, Project, Provenance, Tool};
use lamina_core::mask::Mask;
use lamina_runs::run::RunSpec;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn project(id: &str) -> Project {
    Project {
        id: id.into(),
        name: "p".into(),
        created: "2026-01-01T00:00:00Z".into(),
        ontology: Ontology::pannuke(),
        reviewers: vec![],
    }
}

fn record(project_id: &str, id: &str, position: u32) -> AssetRecord {
    AssetRecord {
        project_id: project_id.into(),
        position,
        asset: Asset {
            id: id.into(),
            name: format!("{id}.png"),
            sha256: "ab".repeat(32),
            width: 16,
            height: 16,
            metadata: [("organ".to_string(), serde_json::json!("liver"))]
                .into_iter()
                .collect(),
            uri: None,
            status: LabelStatus::Unlabeled,
            stage: Default::default(),
        },
        remote: None,
        review_note: None,
        label_counts: None,
        imported: None,
    }
}

fn square(asset: &str, id: &str, x0: f64) -> lamina_core::labels::Instance {
    let mut m = Mask::new(16, 16);
    m.fill_rect(x0, 0.0, x0 + 4.0, 4.0, true);
    let prov = Provenance {
        tool: Tool::Brush,
        prompts: vec![],
        model_id: None,
        author: Some("tester".into()),
        created: format!("t{x0}"),
        updated: format!("t{x0}"),
        score: None,
    };
    instance_from_mask(id.into(), asset.into(), "neoplastic".into(), &m, prov)
}

fn blob(bytes: &[u8]) -> web_sys::Blob {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap()
}

#[wasm_bindgen_test]
async fn everything_written_is_there_after_reopening() {
    let name = "lamina-test-reopen";
    delete_database(name).await.unwrap();
    let store = Store::open(name).await.unwrap();
    store.put_project(&project("p1")).await.unwrap();
    store
        .add_asset(&record("p1", "a2", 1), &blob(b"second"))
        .await
        .unwrap();
    store
        .add_asset(&record("p1", "a1", 0), &blob(b"first"))
        .await
        .unwrap();
    store
        .add_asset(&record("other", "b1", 0), &blob(b"elsewhere"))
        .await
        .unwrap();
    let mut rec = record("p1", "a1", 0);
    rec.asset.status = LabelStatus::InProgress;
    let edit = Edit {
        removed: vec![],
        added: vec![square("a1", "i1", 0.0), square("a1", "i2", 8.0)],
    };
    store.apply_edit(&rec, &edit, None).await.unwrap();
    store.put_setting("last_project", "p1").await.unwrap();
    store.close();

    let store = Store::open(name).await.unwrap();
    assert_eq!(store.projects().await.unwrap(), vec![project("p1")]);
    let assets = store.assets("p1").await.unwrap();
    let ids: Vec<_> = assets.iter().map(|r| r.asset.id.as_str()).collect();
    assert_eq!(
        ids,
        ["a1", "a2"],
        "assets come back in import order, only the project's own"
    );
    assert_eq!(assets[0].asset.status, LabelStatus::InProgress);
    assert_eq!(assets[0].asset.metadata["organ"], "liver");
    let instances = store.instances("a1").await.unwrap();
    assert_eq!(instances, edit.added);
    let stored_blob = store.blob("a2").await.unwrap().unwrap();
    assert_eq!(stored_blob.size(), 6.0);
    assert_eq!(
        store.setting("last_project").await.unwrap().as_deref(),
        Some("p1")
    );
    store.close();
}

#[wasm_bindgen_test]
async fn an_edit_replaces_and_deletes_in_one_step_and_undo_restores() {
    let name = "lamina-test-edit";
    delete_database(name).await.unwrap();
    let store = Store::open(name).await.unwrap();
    let rec = record("p", "a", 0);
    store.add_asset(&rec, &blob(b"x")).await.unwrap();
    let (i1, i2) = (square("a", "i1", 0.0), square("a", "i2", 8.0));
    store
        .apply_edit(
            &rec,
            &Edit {
                removed: vec![],
                added: vec![i1.clone(), i2.clone()],
            },
            None,
        )
        .await
        .unwrap();
    let mut grown = i1.clone();
    grown.class_id = "dead".into();
    let edit = Edit {
        removed: vec![i1.clone(), i2.clone()],
        added: vec![grown.clone()],
    };
    store.apply_edit(&rec, &edit, None).await.unwrap();
    assert_eq!(store.instances("a").await.unwrap(), vec![grown]);
    store.apply_edit(&rec, &edit.inverse(), None).await.unwrap();
    let mut back = store.instances("a").await.unwrap();
    back.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(back, vec![i1, i2]);
    store.close();
}

#[wasm_bindgen_test]
async fn a_new_database_gets_the_current_schema_and_reopening_keeps_it() {
    let name = "lamina-test-schema";
    delete_database(name).await.unwrap();
    let store = Store::open(name).await.unwrap();
    store.close();
    // Reopening at the same version runs no migration and finds every store.
    let store = Store::open(name).await.unwrap();
    assert_eq!(store.version().unwrap(), 6);
    assert_eq!(
        store.store_names(),
        [
            "assets",
            "blobs",
            "embeddings",
            "instances",
            "model_files",
            "outbox",
            "projects",
            "review_events",
            "run_predictions",
            "runs",
            "settings",
            "sync_assets",
            "sync_batches",
            "thumbs"
        ],
        "every store of schema version 6, and no other"
    );
    assert!(store.projects().await.unwrap().is_empty());
    assert!(store.assets("none").await.unwrap().is_empty());
    assert!(store.instances("none").await.unwrap().is_empty());
    assert_eq!(store.setting("none").await.unwrap(), None);
    store.close();
}

/// A database as version 1 of the app left it: its stores, with a project in it.
async fn make_v1_database(name: &str) {
    use idb::{DatabaseEvent, Factory, IndexParams, KeyPath, ObjectStoreParams, TransactionMode};
    let mut request = Factory::new().unwrap().open(name, Some(1)).unwrap();
    request.on_upgrade_needed(|event| {
        let db = event.database().unwrap();
        let mut by_id = ObjectStoreParams::new();
        by_id.key_path(Some(KeyPath::new_single("id")));
        db.create_object_store("projects", by_id.clone()).unwrap();
        let assets = db
            .create_object_store("assets", ObjectStoreParams::new())
            .unwrap();
        assets
            .create_index(
                "project",
                KeyPath::new_single("project_id"),
                Some(IndexParams::new()),
            )
            .unwrap();
        db.create_object_store("blobs", ObjectStoreParams::new())
            .unwrap();
        let instances = db.create_object_store("instances", by_id).unwrap();
        instances
            .create_index(
                "asset",
                KeyPath::new_single("asset_id"),
                Some(IndexParams::new()),
            )
            .unwrap();
        db.create_object_store("settings", ObjectStoreParams::new())
            .unwrap();
    });
    let db = request.await.unwrap();
    let tx = db
        .transaction(&["projects"], TransactionMode::ReadWrite)
        .unwrap();
    let value = serde_wasm_bindgen::to_value(&project("old")).unwrap();
    tx.object_store("projects")
        .unwrap()
        .put(&value, None)
        .unwrap();
    tx.await.unwrap();
    db.close();
}

#[wasm_bindgen_test]
async fn a_version_1_database_is_migrated_and_keeps_its_projects() {
    let name = "lamina-test-migrate";
    delete_database(name).await.unwrap();
    make_v1_database(name).await;
    let store = Store::open(name).await.unwrap();
    assert_eq!(
        store.version().unwrap(),
        SCHEMA_VERSION,
        "upgraded to the current version"
    );
    assert_eq!(store.projects().await.unwrap(), vec![project("old")]);
    // The stores version 2 added work.
    let f16 = js_sys::Uint8Array::from(&[1u8, 2, 3, 4][..]);
    store.put_embedding("model@abc/sha", &f16).await.unwrap();
    assert_eq!(
        store
            .embedding("model@abc/sha")
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
        vec![1, 2, 3, 4]
    );
    let bytes = js_sys::Uint8Array::from(&[9u8; 16][..]).buffer();
    store.put_model_file("ff", &bytes).await.unwrap();
    assert_eq!(
        store.model_file("ff").await.unwrap().unwrap().byte_length(),
        16
    );
    assert!(store.model_file("missing").await.unwrap().is_none());
    // The stores version 3 added (team sync) work too.
    assert!(store.outbox("old").await.unwrap().is_empty());
    // And those of version 4 (model runs).
    assert!(store.runs("old").await.unwrap().is_empty());
    store.close();
}

fn run_record(id: &str, project_id: &str, created: &str) -> RunRecord {
    let spec = RunSpec {
        name: format!("run {id}"),
        ..RunSpec::default()
    };
    let bundle = lamina_core::bundle::Bundle::new(
        lamina_core::bundle::BundleProject {
            id: project_id.into(),
            name: "p".into(),
        },
        Ontology::pannuke(),
    );
    let (info, frozen) = lamina_runs::run::make_run(&bundle, &spec, id, created);
    RunRecord {
        id: id.into(),
        project_id: project_id.into(),
        info,
        bundle_json: serde_json::to_string(&frozen).unwrap(),
    }
}

#[wasm_bindgen_test]
async fn runs_and_their_prediction_sets_survive_a_reopen_and_go_together() {
    let name = "lamina-test-runs";
    delete_database(name).await.unwrap();
    let store = Store::open(name).await.unwrap();
    let (a, b) = (
        run_record("r1", "p", "2026-01-02"),
        run_record("r2", "p", "2026-01-01"),
    );
    store.put_run(&a).await.unwrap();
    store.put_run(&b).await.unwrap();
    store
        .put_run(&run_record("r3", "other", "2026-01-01"))
        .await
        .unwrap();
    let set = PredictionRecord {
        id: "s1".into(),
        run_id: "r1".into(),
        name: "#1".into(),
        imported: "2026-01-03".into(),
        source: "results.json".into(),
        count: 0,
        predictions_json: "[]".into(),
    };
    store.put_prediction_set(&set).await.unwrap();
    store.close();

    let store = Store::open(name).await.unwrap();
    // Oldest first, only this project's.
    assert_eq!(store.runs("p").await.unwrap(), vec![b.clone(), a]);
    assert_eq!(store.prediction_set("s1").await.unwrap(), Some(set.clone()));
    assert_eq!(store.prediction_set("missing").await.unwrap(), None);
    assert_eq!(store.prediction_sets("r1").await.unwrap(), vec![set]);
    store.delete_run("r1").await.unwrap();
    assert_eq!(store.runs("p").await.unwrap(), vec![b]);
    assert!(
        store.prediction_sets("r1").await.unwrap().is_empty(),
        "a run's sets go with it"
    );
    store.close();
}

#[wasm_bindgen_test]
async fn review_events_land_with_their_image_and_stay_unpushed_until_a_push_carried_them() {
    use lamina_app::store::review::ReviewRecord;
    use lamina_core::review::{EventKind, ReviewEvent, Stage};
    let name = "lamina-test-review";
    delete_database(name).await.unwrap();
    let store = Store::open(name).await.unwrap();
    let mut img = record("p", "img", 0);
    img.asset.status = LabelStatus::Submitted;
    img.asset.stage = Stage::Done;
    let approve = ReviewEvent {
        id: "e2".into(),
        asset_id: "img".into(),
        author: "rev".into(),
        at: "2026-12-02T10:00:01Z".into(),
        kind: EventKind::Approve {
            labels: "d".into(),
            replaces: vec!["e1".into()],
        },
    };
    let submit = ReviewEvent {
        id: "e1".into(),
        at: "2026-12-02T10:00:00Z".into(),
        kind: EventKind::Submit {
            labels: "d".into(),
            replaces: vec![],
        },
        ..approve.clone()
    };
    let records = [
        ReviewRecord::new("p", approve.clone(), false),
        ReviewRecord::new("p", submit.clone(), false),
    ];
    store.record_review(&img, &records, None).await.unwrap();
    store
        .record_review(
            &record("other", "x", 0),
            &[ReviewRecord::new(
                "other",
                ReviewEvent {
                    id: "e3".into(),
                    asset_id: "x".into(),
                    ..submit.clone()
                },
                false,
            )],
            None,
        )
        .await
        .unwrap();
    store.close();

    let store = Store::open(name).await.unwrap();
    assert_eq!(
        store.review_events("img").await.unwrap(),
        vec![submit, approve],
        "oldest first, this image's only"
    );
    let stored = store.assets("p").await.unwrap();
    assert_eq!(
        stored[0].asset.stage,
        Stage::Done,
        "the stage came with the events"
    );
    let project = store.project_review("p").await.unwrap();
    assert_eq!(project.len(), 2);
    assert!(project.iter().all(|r| !r.pushed));
    store.mark_review_pushed(&project[..1]).await.unwrap();
    let after = store.project_review("p").await.unwrap();
    assert_eq!(after.iter().filter(|r| r.pushed).count(), 1);
    store.close();
}

#[wasm_bindgen_test]
async fn a_change_queues_its_push_in_the_same_commit_and_a_push_clears_only_what_it_sent() {
    use lamina_app::store::sync::{BatchLink, Pushed};
    use lamina_app::store::OutboxEntry;
    let name = "lamina-test-outbox";
    delete_database(name).await.unwrap();
    let store = Store::open(name).await.unwrap();
    let rec = record("p", "b~a", 0);
    store.add_asset(&rec, &blob(b"x")).await.unwrap();
    let entry = |generation: &str| OutboxEntry {
        asset_id: "b~a".into(),
        project_id: "p".into(),
        generation: generation.into(),
    };
    let edit = Edit {
        removed: vec![],
        added: vec![square("b~a", "i1", 0.0)],
    };
    store
        .apply_edit(&rec, &edit, Some(&entry("g1")))
        .await
        .unwrap();
    assert_eq!(store.outbox("p").await.unwrap().len(), 1);
    // A push that read generation g1 lands after the image changed again (g2): the entry stays queued.
    store
        .apply_edit(&rec, &Edit::default(), Some(&entry("g2")))
        .await
        .unwrap();
    let mut link = BatchLink {
        project_id: "p".into(),
        batch: "b".into(),
        labeler: "alice".into(),
        endpoint: lamina_sync::Endpoint::Http {
            base_url: "http://127.0.0.1:1/".into(),
            token: Some("secret-token".into()),
            writable: true,
        },
        remember: false,
        needs_credentials: false,
        ledger: Default::default(),
    };
    let pushed = |generation: &str| Pushed {
        asset_id: "b~a".into(),
        generation: generation.into(),
        revision: "r1".into(),
    };
    // The revision is noted before the upload, and stays noted until the upload is recorded (storage
    // full or a crash in between: the next push names it as a parent).
    store.begin_push(&[pushed("g1")]).await.unwrap();
    store.begin_push(&[pushed("g1")]).await.unwrap();
    assert_eq!(store.sync_records().await.unwrap()["b~a"].sent, ["r1"]);
    store.finish_push(&link, &[pushed("g1")]).await.unwrap();
    assert_eq!(
        store.outbox("p").await.unwrap().len(),
        1,
        "a newer change stays queued"
    );
    assert!(
        store.sync_records().await.unwrap()["b~a"].sent.is_empty(),
        "a recorded upload is no longer pending"
    );
    store.finish_push(&link, &[pushed("g2")]).await.unwrap();
    assert!(store.outbox("p").await.unwrap().is_empty());
    assert_eq!(
        store.sync_records().await.unwrap()["b~a"].base.as_deref(),
        Some("r1")
    );
    // The token is not written to disk unless the user asked to remember it.
    let stored = store.sync_batch("p").await.unwrap().unwrap();
    assert!(matches!(
        stored.endpoint,
        lamina_sync::Endpoint::Http { token: None, .. }
    ));
    assert!(stored.needs_credentials);
    link.remember = true;
    store.put_sync_batch(&link).await.unwrap();
    let stored = store.sync_batch("p").await.unwrap().unwrap();
    assert_eq!(stored.endpoint, link.endpoint);
    store.close();
}

/// A push finishing while one image's sync record is unreadable: the whole transaction aborts, so the
/// other image's outbox entry is not dropped either (before, the deletes made before the failing read were
/// committed: a change counted as pushed whose base was never recorded).
#[wasm_bindgen_test]
async fn a_step_that_fails_half_way_leaves_nothing_written() {
    use lamina_app::store::sync::{BatchLink, Pushed};
    use lamina_app::store::OutboxEntry;
    let name = "lamina-test-abort";
    delete_database(name).await.unwrap();
    let store = Store::open(name).await.unwrap();
    for id in ["a", "b"] {
        let rec = record("p", id, 0);
        let entry = OutboxEntry {
            asset_id: id.into(),
            project_id: "p".into(),
            generation: "g1".into(),
        };
        store
            .apply_edit(&rec, &Edit::default(), Some(&entry))
            .await
            .unwrap();
    }
    // Image b's sync record is damaged (what a bug or a hand edit could leave).
    {
        let mut raw = idb::Factory::new()
            .unwrap()
            .open(name, Some(SCHEMA_VERSION))
            .unwrap();
        raw.on_upgrade_needed(|_| {});
        let db = raw.await.unwrap();
        let tx = db
            .transaction(&["sync_assets"], idb::TransactionMode::ReadWrite)
            .unwrap();
        tx.object_store("sync_assets")
            .unwrap()
            .put(
                &wasm_bindgen::JsValue::from(42),
                Some(&wasm_bindgen::JsValue::from_str("b")),
            )
            .unwrap();
        tx.await.unwrap();
        db.close();
    }
    let link = BatchLink {
        project_id: "p".into(),
        batch: "b".into(),
        labeler: "alice".into(),
        endpoint: lamina_sync::Endpoint::Http {
            base_url: "http://127.0.0.1:1/".into(),
            token: None,
            writable: true,
        },
        remember: false,
        needs_credentials: false,
        ledger: Default::default(),
    };
    let pushed = |id: &str| Pushed {
        asset_id: id.into(),
        generation: "g1".into(),
        revision: "r1".into(),
    };
    assert!(store
        .finish_push(&link, &[pushed("a"), pushed("b")])
        .await
        .is_err());
    let queued: Vec<String> = store
        .outbox("p")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.asset_id)
        .collect();
    assert_eq!(queued.len(), 2, "both still queued: {queued:?}");
    store.close();
}

/// Every write asks for strict durability (seen by wrapping the browser's `IDBDatabase.transaction`).
#[wasm_bindgen_test]
async fn writes_ask_for_strict_durability() {
    let name = "lamina-test-durability";
    delete_database(name).await.unwrap();
    let store = Store::open(name).await.unwrap();
    js_sys::eval(
        "window.__durability = [];
         const original = IDBDatabase.prototype.transaction;
         IDBDatabase.prototype.transaction = function (names, mode, options) {
           if (mode === 'readwrite') window.__durability.push(options && options.durability);
           return original.apply(this, arguments);
         };",
    )
    .unwrap();
    store.put_project(&project("p")).await.unwrap();
    store
        .apply_edit(&record("p", "x", 0), &Edit::default(), None)
        .await
        .unwrap();
    let seen = js_sys::eval("window.__durability").unwrap();
    let seen: Vec<Option<String>> = serde_wasm_bindgen::from_value(seen).unwrap();
    assert_eq!(seen, vec![Some("strict".to_string()); 2]);
    store.close();
}

/// A version 2 database that already holds a store version 3 creates ("outbox", as a newer or broken
/// build might have left it): the upgrade cannot run.
async fn make_v2_database_with_a_clash(name: &str) {
    use idb::{DatabaseEvent, Factory, KeyPath, ObjectStoreParams, TransactionMode};
    let mut request = Factory::new().unwrap().open(name, Some(2)).unwrap();
    request.on_upgrade_needed(|event| {
        let db = event.database().unwrap();
        let mut by_id = ObjectStoreParams::new();
        by_id.key_path(Some(KeyPath::new_single("id")));
        db.create_object_store("projects", by_id).unwrap();
        db.create_object_store("outbox", ObjectStoreParams::new())
            .unwrap();
    });
    let db = request.await.unwrap();
    let tx = db
        .transaction(&["projects"], TransactionMode::ReadWrite)
        .unwrap();
    let value = serde_wasm_bindgen::to_value(&project("kept")).unwrap();
    tx.object_store("projects")
        .unwrap()
        .put(&value, None)
        .unwrap();
    tx.await.unwrap();
    db.close();
}

#[wasm_bindgen_test]
async fn a_failed_migration_aborts_the_upgrade_says_why_and_changes_nothing() {
    let name = "lamina-test-failed-migration";
    delete_database(name).await.unwrap();
    make_v2_database_with_a_clash(name).await;
    let err = match Store::open(name).await {
        Ok(_) => panic!("a migration that fails must not open the store"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with(&format!(
            "Lamina cannot open its storage: upgrading its data from version 2 to {SCHEMA_VERSION} failed"
        )),
        "{err}"
    );
    // The database is still version 2, with its project: nothing half-upgraded.
    let db = idb::Factory::new()
        .unwrap()
        .open(name, None)
        .unwrap()
        .await
        .unwrap();
    assert_eq!(db.version().unwrap(), 2);
    let mut names = db.store_names();
    names.sort();
    assert_eq!(names, ["outbox", "projects"]);
    db.close();
}
