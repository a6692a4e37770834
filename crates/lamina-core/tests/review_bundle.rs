//! The label bundle carries review: stages, decisions, issues and replies survive a round trip, a
//! version-1 bundle still reads (stages derived from statuses), and bad review data is named, never
//! half-read.

use lamina_core::bundle::{parse_bundle, Bundle, BundleError, BundleProject};
use lamina_core::edit::instance_from_mask;
use lamina_core::labels::{Asset, LabelStatus, Ontology, Provenance, Tool};
use lamina_core::mask::Mask;
use lamina_core::review::{labels_digest, EventKind, IssueCategory, ReviewEvent, Stage};

fn asset(id: &str, status: LabelStatus) -> Asset {
    Asset {
        id: id.into(),
        name: format!("{id}.png"),
        sha256: "ab".repeat(32),
        width: 32,
        height: 24,
        metadata: Default::default(),
        uri: None,
        status,
        stage: Stage::ToLabel,
    }
}

fn event(id: &str, asset: &str, at: &str, author: &str, kind: EventKind) -> ReviewEvent {
    ReviewEvent {
        id: id.into(),
        asset_id: asset.into(),
        author: author.into(),
        at: at.into(),
        kind,
    }
}

/// Three submitted images: `a` approved, `b` rejected with two pinned issues (one answered and resolved),
/// `c` waiting for review; `d` skipped.
fn reviewed() -> Bundle {
    let project = BundleProject {
        id: "p".into(),
        name: "P".into(),
    };
    let mut b = Bundle::new(project, Ontology::pannuke());
    b.assets = vec![
        asset("a", LabelStatus::Submitted),
        asset("b", LabelStatus::Submitted),
        asset("c", LabelStatus::Submitted),
        asset("d", LabelStatus::Skipped),
    ];
    for (n, id) in ["a", "b", "c"].iter().enumerate() {
        let mut m = Mask::new(32, 24);
        m.paint_disc(8.0 + n as f64, 8.0, 3.0, true);
        let prov = Provenance {
            tool: Tool::Brush,
            prompts: vec![],
            model_id: None,
            author: Some("lab".into()),
            created: "2026-12-01T10:00:00Z".into(),
            updated: "2026-12-01T10:00:00Z".into(),
            score: None,
        };
        b.instances.push(instance_from_mask(
            format!("{id}/1"),
            id.to_string(),
            "neoplastic".into(),
            &m,
            prov,
        ));
    }
    let digest = |id: &str| {
        let own: Vec<_> = b
            .instances
            .iter()
            .filter(|i| i.asset_id == id)
            .cloned()
            .collect();
        labels_digest(&own)
    };
    let (da, db, dc) = (digest("a"), digest("b"), digest("c"));
    let submit = |labels: &str| EventKind::Submit {
        labels: labels.into(),
        replaces: vec![],
    };
    b.review = vec![
        event("s-a", "a", "2026-12-01T11:00:00Z", "lab", submit(&da)),
        event("s-b", "b", "2026-12-01T11:00:00Z", "lab", submit(&db)),
        event("s-c", "c", "2026-12-01T11:00:00Z", "lab", submit(&dc)),
        event(
            "ok-a",
            "a",
            "2026-12-01T12:00:00Z",
            "rev",
            EventKind::Approve {
                labels: da,
                replaces: vec!["s-a".into()],
            },
        ),
        event(
            "i1",
            "b",
            "2026-12-01T12:00:00Z",
            "rev",
            EventKind::Issue {
                point_image: [20.5, 12.0],
                instance_id: None,
                category: IssueCategory::MissedNucleus,
                comment: "a nucleus here has no label".into(),
            },
        ),
        event(
            "i2",
            "b",
            "2026-12-01T12:00:01Z",
            "rev",
            EventKind::Issue {
                point_image: [8.0, 8.0],
                instance_id: Some("b/1".into()),
                category: IssueCategory::BadBoundary,
                comment: "<script>alert(1)</script> too wide".into(),
            },
        ),
        event(
            "no-b",
            "b",
            "2026-12-01T12:00:02Z",
            "rev",
            EventKind::Reject {
                labels: db,
                replaces: vec!["s-b".into()],
            },
        ),
        event(
            "re1",
            "b",
            "2026-12-01T13:00:00Z",
            "lab",
            EventKind::Reply {
                issue: "i2".into(),
                text: "tightened".into(),
            },
        ),
        event(
            "rs1",
            "b",
            "2026-12-01T13:00:01Z",
            "lab",
            EventKind::Resolve { issue: "i2".into() },
        ),
    ];
    b
}

#[test]
fn stages_decisions_and_issues_survive_a_round_trip() {
    let b = reviewed();
    let text = b.to_json_pretty();
    let back = parse_bundle(&text).expect("our own bundle reads back");
    let stages: Vec<Stage> = back.assets.iter().map(|a| a.stage).collect();
    assert_eq!(
        stages,
        [Stage::Done, Stage::Rework, Stage::InReview, Stage::Skipped]
    );
    assert_eq!(back.review, b.review);
    assert_eq!(back.version, 2);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["assets"][0]["stage"], "done");
    assert_eq!(json["review"][4]["kind"], "issue");
    assert_eq!(json["review"][4]["category"], "missed_nucleus");
}

#[test]
fn done_only_keeps_exactly_the_approved_image() {
    let b = parse_bundle(&reviewed().to_json_pretty()).unwrap();
    let done = b.only_stage(Stage::Done);
    assert_eq!(done.assets.len(), 1);
    assert_eq!(done.assets[0].id, "a");
    assert!(done.instances.iter().all(|i| i.asset_id == "a"));
    assert_eq!(done.instances.len(), 1);
    assert!(done.review.iter().all(|e| e.asset_id == "a"));
    parse_bundle(&done.to_json_pretty()).expect("a stage subset is a valid bundle");
}

#[test]
fn a_version_1_bundle_reads_with_stages_from_its_statuses() {
    let mut json: serde_json::Value = serde_json::from_str(&reviewed().to_json_pretty()).unwrap();
    json["version"] = 1.into();
    let obj = json.as_object_mut().unwrap();
    obj.remove("review");
    for a in obj["assets"].as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("stage");
    }
    obj["assets"][3]["status"] = "in_progress".into();
    let b = parse_bundle(&json.to_string()).expect("version 1 still reads");
    let stages: Vec<Stage> = b.assets.iter().map(|a| a.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::InReview,
            Stage::InReview,
            Stage::InReview,
            Stage::ToLabel
        ]
    );
}

fn problems(json: serde_json::Value) -> Vec<String> {
    match parse_bundle(&json.to_string()) {
        Err(BundleError::Invalid(p)) => p,
        other => panic!("expected a list of problems, got {other:?}"),
    }
}

#[test]
fn bad_review_data_is_named_and_nothing_is_read() {
    let good: serde_json::Value = serde_json::from_str(&reviewed().to_json_pretty()).unwrap();

    let mut outside = good.clone();
    outside["review"][4]["point_image"] = serde_json::json!([40.0, 3.0]);
    let p = problems(outside);
    assert!(
        p.iter()
            .any(|p| p.contains("review[4] (i1)") && p.contains("outside the 32x24 image")),
        "{p:?}"
    );

    let mut missing = good.clone();
    missing["review"][3]["asset_id"] = "zzz".into();
    let p = problems(missing);
    assert!(
        p.iter()
            .any(|p| p.contains("review[3] (ok-a)")
                && p.contains("image \"zzz\" is not in the file")),
        "{p:?}"
    );

    let mut unknown = good.clone();
    unknown["assets"][0]["stage"] = "finished".into();
    let err = parse_bundle(&unknown.to_string()).unwrap_err().to_string();
    assert!(err.contains("unknown variant `finished`"), "{err}");

    let mut forged = good.clone();
    forged["assets"][2]["stage"] = "done".into();
    let p = problems(forged);
    assert!(
        p.iter()
            .any(|p| p.contains("assets[2] (c): stage `done`") && p.contains("give `in_review`")),
        "{p:?}"
    );

    let mut dangling = good;
    dangling["review"][7]["issue"] = "nope".into();
    let p = problems(dangling);
    assert!(
        p.iter().any(|p| p.contains("answers issue \"nope\"")),
        "{p:?}"
    );
}
