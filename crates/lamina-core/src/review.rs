//! Review: the quality gate after labeling. An image's **stage** (To label, In review, Rework, Done,
//! Skipped) is never stored as a fact of its own: it is derived from the labels' status and a log of
//! immutable, append-only **review events** (submit, approve, reject, issues and their replies). Events
//! from several devices merge by union, so sync needs no new conflict rule for issues and replies.
//!
//! Stage events (submit, approve, reject) form a small history like label revisions do: each names the
//! stage events it answers (`replaces`, the heads its author's device knew). Two that answer the same
//! heads were made without seeing each other: when they disagree (one approves, one rejects) the image
//! stays In review with a listed conflict until someone decides again. A verdict names the labels it
//! judged (`labels`, [`labels_digest`]); an approval of labels that have changed since is not applied.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::labels::{Instance, LabelStatus, Timestamp};
use crate::model_manifest::sha256_hex;

/// Where an image stands in the label → review → rework → done loop.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    ToLabel,
    InReview,
    Rework,
    Done,
    Skipped,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::ToLabel,
        Stage::InReview,
        Stage::Rework,
        Stage::Done,
        Stage::Skipped,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Stage::ToLabel => "To label",
            Stage::InReview => "In review",
            Stage::Rework => "Rework",
            Stage::Done => "Done",
            Stage::Skipped => "Skipped",
        }
    }

    /// The stage's name in files and on the command line (`done`, `in_review`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Stage::ToLabel => "to_label",
            Stage::InReview => "in_review",
            Stage::Rework => "rework",
            Stage::Done => "done",
            Stage::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Result<Stage, String> {
        let wanted = s.trim().to_lowercase().replace(['-', ' '], "_");
        Stage::ALL
            .into_iter()
            .find(|st| st.key() == wanted)
            .ok_or_else(|| {
                let keys: Vec<&str> = Stage::ALL.iter().map(|s| s.key()).collect();
                format!("unknown stage {s:?}; one of {}", keys.join(", "))
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCategory {
    MissedNucleus,
    WrongClass,
    BadBoundary,
    Other,
}

impl IssueCategory {
    pub const ALL: [IssueCategory; 4] = [
        IssueCategory::MissedNucleus,
        IssueCategory::WrongClass,
        IssueCategory::BadBoundary,
        IssueCategory::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            IssueCategory::MissedNucleus => "missed nucleus",
            IssueCategory::WrongClass => "wrong class",
            IssueCategory::BadBoundary => "bad boundary",
            IssueCategory::Other => "other",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            IssueCategory::MissedNucleus => "missed_nucleus",
            IssueCategory::WrongClass => "wrong_class",
            IssueCategory::BadBoundary => "bad_boundary",
            IssueCategory::Other => "other",
        }
    }
}

/// What happened, in one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The labeler hands the image in (first time, or after rework).
    Submit {
        labels: String,
        #[serde(default)]
        replaces: Vec<String>,
    },
    Approve {
        labels: String,
        #[serde(default)]
        replaces: Vec<String>,
    },
    /// Sends the image to rework; the issues raised with it are their own events.
    Reject {
        labels: String,
        #[serde(default)]
        replaces: Vec<String>,
    },
    /// A problem pinned at a point of the image, optionally on one instance.
    Issue {
        point_image: [f64; 2],
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance_id: Option<String>,
        category: IssueCategory,
        comment: String,
    },
    Reply {
        issue: String,
        text: String,
    },
    Resolve {
        issue: String,
    },
    Reopen {
        issue: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewEvent {
    /// Unique across devices (a random id), so merging logs is a union.
    pub id: String,
    pub asset_id: String,
    pub author: String,
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl ReviewEvent {
    /// Submit, approve and reject: the events that move an image between stages.
    fn stage_move(&self) -> Option<(&str, &[String])> {
        match &self.kind {
            EventKind::Submit { labels, replaces }
            | EventKind::Approve { labels, replaces }
            | EventKind::Reject { labels, replaces } => Some((labels, replaces)),
            _ => None,
        }
    }

    /// The issue this event is about (its own id for an issue).
    pub fn issue_id(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Issue { .. } => Some(&self.id),
            EventKind::Reply { issue, .. }
            | EventKind::Resolve { issue }
            | EventKind::Reopen { issue } => Some(issue),
            _ => None,
        }
    }
}

/// The longest comment or reply kept; a longer one is refused with this limit named.
pub const MAX_TEXT_CHARS: usize = 4000;

/// What a reviewer judges, independent of which device or file holds it: each instance's id, class and
/// mask. Neither the image's id (batch and device ids differ), the status nor provenance times count.
pub fn labels_digest(instances: &[Instance]) -> String {
    let mut parts: Vec<(&str, &str, [u32; 2], &str)> = instances
        .iter()
        .map(|i| {
            (
                i.id.as_str(),
                i.class_id.as_str(),
                i.mask.size,
                i.mask.counts.as_str(),
            )
        })
        .collect();
    parts.sort();
    let bytes = serde_json::to_vec(&parts).unwrap_or_default();
    sha256_hex(&bytes)
}

/// Why a derived stage needs a person's attention.
#[derive(Clone, Debug, PartialEq)]
pub enum StageNote {
    /// An approval judged labels that have changed since (`by` changed them after `at`).
    StaleApproval { reviewer: String, at: Timestamp },
    /// Verdicts made without seeing each other disagree; a new decision settles it.
    Conflict { verdicts: Vec<ReviewEvent> },
}

impl StageNote {
    pub fn text(&self) -> String {
        match self {
            StageNote::StaleApproval { reviewer, at } => format!(
                "{reviewer} approved an earlier version of these labels ({at}); they have changed since, so the image is back in review"
            ),
            StageNote::Conflict { verdicts } => {
                let who: Vec<String> = verdicts
                    .iter()
                    .map(|v| {
                        let verb = match v.kind {
                            EventKind::Approve { .. } => "approved",
                            _ => "rejected",
                        };
                        format!("{} {verb} ({})", v.author, v.at)
                    })
                    .collect();
                format!(
                    "Conflicting decisions made at the same time: {}. Decide again to settle it.",
                    who.join(", ")
                )
            }
        }
    }
}

/// An image's stage with what it rests on.
#[derive(Clone, Debug, PartialEq)]
pub struct StageView {
    pub stage: Stage,
    pub note: Option<StageNote>,
    /// Ids of the current stage events: what the next submit or decision replaces.
    pub heads: Vec<String>,
}

/// The stage of one image from its labels' status, their digest and its review events (other images'
/// events are ignored). Deterministic: every device derives the same stage from the same events.
pub fn stage_of(status: LabelStatus, labels: &str, events: &[&ReviewEvent]) -> StageView {
    let moves: Vec<&ReviewEvent> = events
        .iter()
        .copied()
        .filter(|e| e.stage_move().is_some())
        .collect();
    let replaced: BTreeSet<&str> = moves
        .iter()
        .filter_map(|e| e.stage_move())
        .flat_map(|(_, r)| r.iter().map(String::as_str))
        .collect();
    let mut heads: Vec<&ReviewEvent> = moves
        .iter()
        .copied()
        .filter(|e| !replaced.contains(e.id.as_str()))
        .collect();
    heads.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
    let head_ids = heads.iter().map(|e| e.id.clone()).collect();
    let view = |stage, note| StageView {
        stage,
        note,
        heads: head_ids,
    };
    match status {
        LabelStatus::Skipped => return view(Stage::Skipped, None),
        LabelStatus::Unlabeled | LabelStatus::InProgress => return view(Stage::ToLabel, None),
        LabelStatus::Submitted => {}
    }
    let verdicts: Vec<&ReviewEvent> = heads
        .iter()
        .copied()
        .filter(|e| !matches!(e.kind, EventKind::Submit { .. }))
        .collect();
    let approvals: Vec<&ReviewEvent> = verdicts
        .iter()
        .copied()
        .filter(|e| matches!(e.kind, EventKind::Approve { .. }))
        .collect();
    let stale = |approval: &ReviewEvent| StageNote::StaleApproval {
        reviewer: approval.author.clone(),
        at: approval.at.clone(),
    };
    if heads
        .iter()
        .any(|e| matches!(e.kind, EventKind::Submit { .. }))
    {
        // Handed in again after (or while) someone decided: review it. A verdict made at the same time
        // on other labels is said, not applied.
        let note = approvals
            .iter()
            .find(|a| a.stage_move().is_some_and(|(l, _)| l != labels))
            .map(|a| stale(a));
        return view(Stage::InReview, note);
    }
    if verdicts.is_empty() {
        return view(Stage::InReview, None);
    }
    if !approvals.is_empty() && approvals.len() < verdicts.len() {
        let verdicts = verdicts.into_iter().cloned().collect();
        return view(Stage::InReview, Some(StageNote::Conflict { verdicts }));
    }
    if approvals.is_empty() {
        return view(Stage::Rework, None);
    }
    match approvals
        .iter()
        .find(|a| a.stage_move().is_some_and(|(l, _)| l != labels))
    {
        Some(a) => {
            let note = stale(a);
            view(Stage::InReview, Some(note))
        }
        None => view(Stage::Done, None),
    }
}

/// An issue as the panels show it: where, what, whether it is open, and its replies.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueView {
    pub id: String,
    pub author: String,
    pub at: Timestamp,
    pub point_image: [f64; 2],
    pub instance_id: Option<String>,
    pub category: IssueCategory,
    pub comment: String,
    pub open: bool,
    /// Replies, resolutions and reopenings, oldest first: (author, time, text).
    pub thread: Vec<(String, Timestamp, String)>,
}

fn by_time<'a>(events: &[&'a ReviewEvent]) -> Vec<&'a ReviewEvent> {
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
    sorted
}

/// The image's issues, oldest first. An issue is open until resolved; the latest resolve or reopen wins.
pub fn issues(events: &[&ReviewEvent]) -> Vec<IssueView> {
    let mut out: Vec<IssueView> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for e in by_time(events) {
        if let EventKind::Issue {
            point_image,
            instance_id,
            category,
            comment,
        } = &e.kind
        {
            index.insert(e.id.clone(), out.len());
            out.push(IssueView {
                id: e.id.clone(),
                author: e.author.clone(),
                at: e.at.clone(),
                point_image: *point_image,
                instance_id: instance_id.clone(),
                category: *category,
                comment: comment.clone(),
                open: true,
                thread: Vec::new(),
            });
        }
    }
    for e in by_time(events) {
        let Some(&i) = e.issue_id().and_then(|id| index.get(id)) else {
            continue;
        };
        let issue = &mut out[i];
        let line = match &e.kind {
            EventKind::Reply { text, .. } => text.clone(),
            EventKind::Resolve { .. } => {
                issue.open = false;
                "marked it resolved".into()
            }
            EventKind::Reopen { .. } => {
                issue.open = true;
                "reopened it".into()
            }
            _ => continue,
        };
        issue.thread.push((e.author.clone(), e.at.clone(), line));
    }
    out
}

/// One line of an image's history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryLine {
    pub at: Timestamp,
    pub author: String,
    pub text: String,
}

/// Who labeled (per author: how many of the current labels, and when last), who submitted, reviewed,
/// raised and answered issues, oldest first.
pub fn history(instances: &[Instance], events: &[&ReviewEvent]) -> Vec<HistoryLine> {
    let mut by_author: BTreeMap<String, (usize, Timestamp)> = BTreeMap::new();
    for i in instances {
        let author = i
            .provenance
            .author
            .clone()
            .unwrap_or_else(|| "someone".into());
        let entry = by_author.entry(author).or_insert((0, String::new()));
        entry.0 += 1;
        if i.provenance.updated > entry.1 {
            entry.1 = i.provenance.updated.clone();
        }
    }
    let mut lines: Vec<HistoryLine> = by_author
        .into_iter()
        .map(|(author, (n, at))| HistoryLine {
            at,
            author,
            text: format!("labeled {n} of the current instance(s)"),
        })
        .collect();
    let issue_names: BTreeMap<&str, usize> = by_time(events)
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Issue { .. }))
        .enumerate()
        .map(|(n, e)| (e.id.as_str(), n + 1))
        .collect();
    let issue_name = |id: &str| {
        issue_names
            .get(id)
            .map_or_else(|| "an issue".to_owned(), |n| format!("issue #{n}"))
    };
    for e in events {
        let text = match &e.kind {
            EventKind::Submit { .. } => "submitted for review".to_owned(),
            EventKind::Approve { .. } => "approved".to_owned(),
            EventKind::Reject { .. } => "rejected (sent to rework)".to_owned(),
            EventKind::Issue {
                category, comment, ..
            } => format!(
                "raised {} ({}): {comment}",
                issue_name(&e.id),
                category.label()
            ),
            EventKind::Reply { issue, text } => format!("replied on {}: {text}", issue_name(issue)),
            EventKind::Resolve { issue } => format!("resolved {}", issue_name(issue)),
            EventKind::Reopen { issue } => format!("reopened {}", issue_name(issue)),
        };
        lines.push(HistoryLine {
            at: e.at.clone(),
            author: e.author.clone(),
            text,
        });
    }
    lines.sort_by(|a, b| a.at.cmp(&b.at));
    lines
}

/// What is known of the image an event is filed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventImage {
    /// No such image in the file or batch.
    Missing,
    /// The image exists but its size is not known yet (a batch image not fetched): pins are not checked.
    SizeUnknown,
    /// Width and height in pixels.
    Size(u32, u32),
}

/// Problems with one event against the image it is filed under and the other events of the log, each
/// worded for the person who made the file.
pub fn event_problems(
    event: &ReviewEvent,
    image: EventImage,
    known: &BTreeMap<&str, &ReviewEvent>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let size = match image {
        EventImage::Missing => {
            problems.push(format!("image {:?} is not in the file", event.asset_id));
            return problems;
        }
        EventImage::SizeUnknown => None,
        EventImage::Size(w, h) => Some((w, h)),
    };
    if event.id.trim().is_empty() {
        problems.push("its id is empty".into());
    }
    if event.author.trim().is_empty() {
        problems.push("it names no author".into());
    }
    let long = |t: &str| t.chars().count() > MAX_TEXT_CHARS;
    match &event.kind {
        EventKind::Issue {
            point_image: [x, y],
            comment,
            ..
        } => {
            if !(x.is_finite() && y.is_finite()) {
                problems.push(format!("its pin ({x}, {y}) is not a point"));
            } else if let Some((width, height)) = size {
                let inside =
                    (0.0..=f64::from(width)).contains(x) && (0.0..=f64::from(height)).contains(y);
                if !inside {
                    problems.push(format!(
                        "its pin ({x}, {y}) is outside the {width}x{height} image"
                    ));
                }
            }
            if long(comment) {
                problems.push(format!("its comment is over {MAX_TEXT_CHARS} characters"));
            }
        }
        EventKind::Reply { issue, text } if long(text) => {
            let _ = issue;
            problems.push(format!("its text is over {MAX_TEXT_CHARS} characters"));
        }
        _ => {}
    }
    if let Some(issue) = event.issue_id().filter(|i| *i != event.id) {
        match known.get(issue) {
            Some(e)
                if matches!(e.kind, EventKind::Issue { .. }) && e.asset_id == event.asset_id => {}
            _ => problems.push(format!(
                "it answers issue {issue:?}, which this image does not have"
            )),
        }
    }
    if let Some((_, replaces)) = event.stage_move() {
        for r in replaces {
            match known.get(r.as_str()) {
                Some(e) if e.stage_move().is_some() && e.asset_id == event.asset_id => {}
                _ => problems.push(format!(
                    "it replaces decision {r:?}, which this image does not have"
                )),
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, at: &str, author: &str, kind: EventKind) -> ReviewEvent {
        ReviewEvent {
            id: id.into(),
            asset_id: "img".into(),
            author: author.into(),
            at: at.into(),
            kind,
        }
    }

    fn submit(id: &str, at: &str, labels: &str, replaces: &[&str]) -> ReviewEvent {
        let replaces = replaces.iter().map(|s| s.to_string()).collect();
        ev(
            id,
            at,
            "lab",
            EventKind::Submit {
                labels: labels.into(),
                replaces,
            },
        )
    }

    fn approve(id: &str, at: &str, who: &str, labels: &str, replaces: &[&str]) -> ReviewEvent {
        let replaces = replaces.iter().map(|s| s.to_string()).collect();
        ev(
            id,
            at,
            who,
            EventKind::Approve {
                labels: labels.into(),
                replaces,
            },
        )
    }

    fn reject(id: &str, at: &str, who: &str, labels: &str, replaces: &[&str]) -> ReviewEvent {
        let replaces = replaces.iter().map(|s| s.to_string()).collect();
        ev(
            id,
            at,
            who,
            EventKind::Reject {
                labels: labels.into(),
                replaces,
            },
        )
    }

    fn stage(status: LabelStatus, labels: &str, events: &[ReviewEvent]) -> StageView {
        let refs: Vec<&ReviewEvent> = events.iter().collect();
        stage_of(status, labels, &refs)
    }

    #[test]
    fn the_whole_loop_label_review_rework_done() {
        use LabelStatus::*;
        let mut log = vec![];
        assert_eq!(stage(InProgress, "L1", &log).stage, Stage::ToLabel);
        assert_eq!(stage(Submitted, "L1", &log).stage, Stage::InReview);
        log.push(submit("s1", "t1", "L1", &[]));
        assert_eq!(stage(Submitted, "L1", &log).stage, Stage::InReview);
        log.push(reject("r1", "t2", "rev", "L1", &["s1"]));
        assert_eq!(stage(Submitted, "L1", &log).stage, Stage::Rework);
        // Rework edits do not send it back to review by themselves: the labeler resubmits.
        assert_eq!(stage(Submitted, "L2", &log).stage, Stage::Rework);
        log.push(submit("s2", "t3", "L2", &["r1"]));
        let v = stage(Submitted, "L2", &log);
        assert_eq!((v.stage, v.note), (Stage::InReview, None));
        assert_eq!(v.heads, ["s2"]);
        log.push(approve("a1", "t4", "rev", "L2", &["s2"]));
        assert_eq!(stage(Submitted, "L2", &log).stage, Stage::Done);
        assert_eq!(stage(Skipped, "L2", &log).stage, Stage::Skipped);
    }

    #[test]
    fn an_approval_of_labels_that_changed_since_is_not_applied() {
        let log = vec![
            submit("s1", "t1", "L1", &[]),
            approve("a1", "t2", "ana", "L1", &["s1"]),
        ];
        let v = stage(LabelStatus::Submitted, "L1-edited", &log);
        assert_eq!(v.stage, Stage::InReview);
        let note = v.note.expect("a note says why").text();
        assert!(note.contains("ana approved an earlier version"), "{note}");
    }

    #[test]
    fn two_reviewers_deciding_at_once_disagreeing_is_a_conflict_until_decided_again() {
        let mut log = vec![
            submit("s1", "t1", "L1", &[]),
            approve("a1", "t2", "ana", "L1", &["s1"]),
            reject("r1", "t2", "ben", "L1", &["s1"]),
        ];
        let v = stage(LabelStatus::Submitted, "L1", &log);
        assert_eq!(v.stage, Stage::InReview);
        let Some(StageNote::Conflict { verdicts }) = &v.note else {
            panic!("expected a conflict, got {:?}", v.note)
        };
        assert_eq!(verdicts.len(), 2);
        assert_eq!(v.heads, ["a1", "r1"]);
        // Agreeing verdicts made at once are no conflict.
        let agree = vec![
            submit("s1", "t1", "L1", &[]),
            approve("a1", "t2", "ana", "L1", &["s1"]),
            approve("a2", "t2", "ben", "L1", &["s1"]),
        ];
        assert_eq!(
            stage(LabelStatus::Submitted, "L1", &agree).stage,
            Stage::Done
        );
        // A decision that saw both settles it.
        log.push(reject("r2", "t3", "ana", "L1", &["a1", "r1"]));
        let v = stage(LabelStatus::Submitted, "L1", &log);
        assert_eq!((v.stage, v.note), (Stage::Rework, None));
    }

    #[test]
    fn a_resubmission_made_while_a_reviewer_approved_goes_back_to_review() {
        let log = vec![
            submit("s1", "t1", "L1", &[]),
            approve("a1", "t3", "ana", "L1", &["s1"]),
            submit("s2", "t2", "L2", &["s1"]),
        ];
        let v = stage(LabelStatus::Submitted, "L2", &log);
        assert_eq!(v.stage, Stage::InReview);
        assert!(matches!(v.note, Some(StageNote::StaleApproval { .. })));
    }

    #[test]
    fn issues_open_close_and_keep_their_thread_in_order() {
        let pin = |id: &str, at: &str| {
            ev(
                id,
                at,
                "rev",
                EventKind::Issue {
                    point_image: [10.0, 20.0],
                    instance_id: None,
                    category: IssueCategory::MissedNucleus,
                    comment: "here".into(),
                },
            )
        };
        let log = [
            pin("i1", "t1"),
            pin("i2", "t1"),
            ev(
                "e1",
                "t2",
                "lab",
                EventKind::Reply {
                    issue: "i1".into(),
                    text: "fixed".into(),
                },
            ),
            ev("e2", "t3", "lab", EventKind::Resolve { issue: "i1".into() }),
            ev("e3", "t4", "rev", EventKind::Reopen { issue: "i1".into() }),
            ev("e4", "t5", "lab", EventKind::Resolve { issue: "i2".into() }),
        ];
        let refs: Vec<&ReviewEvent> = log.iter().collect();
        let list = issues(&refs);
        assert_eq!(list.len(), 2);
        assert!(list[0].open, "reopened after it was resolved");
        assert_eq!(list[0].thread.len(), 3);
        assert_eq!(list[0].thread[0].2, "fixed");
        assert!(!list[1].open);
        let h = history(&[], &refs);
        assert!(h.iter().any(|l| l.text == "reopened issue #1"), "{h:?}");
    }

    #[test]
    fn bad_events_are_named() {
        let pin = ev(
            "i1",
            "t1",
            "rev",
            EventKind::Issue {
                point_image: [300.0, 5.0],
                instance_id: None,
                category: IssueCategory::Other,
                comment: "x".into(),
            },
        );
        let known = BTreeMap::new();
        let p = event_problems(&pin, EventImage::Size(256, 256), &known);
        assert!(p[0].contains("outside the 256x256 image"), "{p:?}");
        let p = event_problems(&pin, EventImage::Missing, &known);
        assert!(p[0].contains("not in the file"), "{p:?}");
        let reply = ev(
            "e1",
            "t",
            "lab",
            EventKind::Reply {
                issue: "nope".into(),
                text: "?".into(),
            },
        );
        let p = event_problems(&reply, EventImage::Size(256, 256), &known);
        assert!(p[0].contains("does not have"), "{p:?}");
    }

    #[test]
    fn digest_ignores_order_image_id_and_times_but_not_shapes() {
        use crate::labels::{Provenance, Tool};
        use crate::rle::CompressedRle;
        let inst = |id: &str, asset: &str, t: &str, counts: &str| Instance {
            id: id.into(),
            asset_id: asset.into(),
            class_id: "c".into(),
            mask: CompressedRle {
                size: [4, 4],
                counts: counts.into(),
            },
            bbox: [0, 0, 1, 1],
            area: 2,
            provenance: Provenance {
                tool: Tool::Brush,
                prompts: vec![],
                model_id: None,
                author: None,
                created: t.into(),
                updated: t.into(),
                score: None,
            },
            status: Default::default(),
        };
        let a = [inst("a", "x", "t1", "02000"), inst("b", "x", "t1", "0200")];
        let b = [inst("b", "y", "t2", "0200"), inst("a", "y", "t2", "02000")];
        assert_eq!(labels_digest(&a), labels_digest(&b));
        let c = [inst("a", "x", "t1", "0300"), inst("b", "x", "t1", "0200")];
        assert_ne!(labels_digest(&a), labels_digest(&c));
    }

    #[test]
    fn stages_parse_from_their_keys_and_names() {
        assert_eq!(Stage::parse("done"), Ok(Stage::Done));
        assert_eq!(Stage::parse("In review"), Ok(Stage::InReview));
        assert!(Stage::parse("finished").unwrap_err().contains("to_label"));
    }
}
