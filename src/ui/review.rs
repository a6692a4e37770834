//! Review on screen: the stage tabs above the image list (counts, queues), the review panel (stage, why
//! it needs attention, decisions, issues with their threads, history, reviewers) and the issue pins drawn
//! on the image.

use lamina_core::review::{self, IssueCategory, ReviewEvent, Stage};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::editing::review as actions;
use crate::features::review::{act, decide, open_queue, set_reviewers, start_review};
use crate::state::AppState;

/// "All · To label · In review · Rework · Done · Skipped", each with its count; a tab is a queue.
#[component]
pub fn StageTabs(state: AppState) -> impl IntoView {
    let tab = move |stage: Option<Stage>| {
        let (key, label) = stage.map_or(("all", "All"), |s| (s.key(), s.label()));
        let count = move || {
            state.assets.with(|all| {
                all.iter()
                    .filter(|r| stage.is_none_or(|s| r.asset.stage == s))
                    .count()
            })
        };
        view! {
            <button class:active=move || state.review.queue.get() == stage
                data-testid=format!("stage-{key}")
                on:click=move |_| spawn_local(open_queue(state, stage))>
                {label}" "<b class="count">{count}</b>
            </button>
        }
    };
    let tabs = std::iter::once(None)
        .chain(Stage::ALL.into_iter().map(Some))
        .map(tab)
        .collect_view();
    view! { <nav class="stage-tabs">{tabs}</nav> }
}

/// Issue pins on the image, numbered as in the panel, plus the drafts being pinned. They sit in the
/// transformed stage, so their coordinates are image pixels; the size is undone by the zoom.
#[component]
pub fn Pins(state: AppState) -> impl IntoView {
    // Only a zoom changes the pins' size; panning moves the stage they sit in, redrawing nothing.
    let scale = Memo::new(move |_| state.view.with(|v| v.scale.max(1e-6)));
    let pins = move || {
        let scale = scale.get();
        let events = state.review.events.get();
        let refs: Vec<&ReviewEvent> = events.iter().collect();
        let issues = review::issues(&refs);
        let placed = issues.into_iter().enumerate().map(move |(n, issue)| {
            let [x, y] = issue.point_image;
            let class = if issue.open { "pin open" } else { "pin resolved" };
            let title = format!("#{} {}: {}", n + 1, issue.category.label(), issue.comment);
            view! {
                <div class=class data-testid="pin" title=title
                    data-x=x.to_string() data-y=y.to_string()
                    style=format!("left:{x}px;top:{y}px;transform:translate(-50%,-100%) scale({});", 1.0 / scale)>
                    {(n + 1).to_string()}
                </div>
            }
        });
        let drafts = state.review.drafts.get().into_iter().map(move |d| {
            let [x, y] = d.point_image;
            view! {
                <div class="pin draft" data-testid="draft-pin"
                    style=format!("left:{x}px;top:{y}px;transform:translate(-50%,-100%) scale({});", 1.0 / scale)>
                    "+"
                </div>
            }
        });
        placed
            .map(IntoAny::into_any)
            .chain(drafts.map(IntoAny::into_any))
            .collect_view()
    };
    view! { <div class="pins">{pins}</div> }
}

fn category_options(selected: IssueCategory) -> impl IntoView {
    IssueCategory::ALL
        .into_iter()
        .map(|c| view! { <option value=c.key() selected=c == selected>{c.label()}</option> })
        .collect_view()
}

/// The drafts pinned so far, each with its category and comment.
#[component]
fn Drafts(state: AppState) -> impl IntoView {
    let rows = move || {
        state
            .review
            .drafts
            .get()
            .into_iter()
            .map(|d| {
                let (id_cat, id_text, id_drop) = (d.id.clone(), d.id.clone(), d.id.clone());
                let update = move |id: String, f: Box<dyn Fn(&mut crate::state::review::DraftIssue)>| {
                    state.review.drafts.update(|list| {
                        if let Some(d) = list.iter_mut().find(|d| d.id == id) {
                            f(d)
                        }
                    })
                };
                view! {
                    <li data-testid="draft">
                        <select data-testid="draft-category" on:change=move |ev| {
                            let key = event_target_value(&ev);
                            let c = IssueCategory::ALL.into_iter().find(|c| c.key() == key).unwrap_or(IssueCategory::Other);
                            update(id_cat.clone(), Box::new(move |d| d.category = c));
                        }>{category_options(d.category)}</select>
                        <input placeholder="what is wrong" data-testid="draft-comment" prop:value=d.comment.clone()
                            on:change=move |ev| {
                                let text = event_target_value(&ev);
                                update(id_text.clone(), Box::new(move |d| d.comment = text.clone()));
                            }/>
                        <button title="Remove this pin" on:click=move |_| {
                            let id = id_drop.clone();
                            state.review.drafts.update(|l| l.retain(|d| d.id != id))
                        }>"×"</button>
                    </li>
                }
            })
            .collect_view()
    };
    view! { <ul class="drafts">{rows}</ul> }
}

/// The image's issues with their threads: reply, resolve, reopen.
#[component]
fn Issues(state: AppState) -> impl IntoView {
    let list = move || {
        let events = state.review.events.get();
        let refs: Vec<&ReviewEvent> = events.iter().collect();
        review::issues(&refs)
            .into_iter()
            .enumerate()
            .map(|(n, issue)| {
                let reply = RwSignal::new(String::new());
                let (id_reply, id_toggle) = (issue.id.clone(), issue.id.clone());
                let open = issue.open;
                let thread = issue
                    .thread
                    .iter()
                    .map(|(who, at, text)| view! { <li><b>{who.clone()}</b>" "<small>{at.clone()}</small>" "{text.clone()}</li> })
                    .collect_view();
                view! {
                    <li class:resolved=!open data-testid="issue">
                        <div>
                            <b>{format!("#{} ", n + 1)}</b>
                            <span class="category">{issue.category.label()}</span>
                            " · "{if open { "open" } else { "resolved" }}
                        </div>
                        <div class="comment" data-testid="issue-comment">{issue.comment.clone()}</div>
                        <small>{format!("{}, {}", issue.author, issue.at)}</small>
                        <ul class="thread">{thread}</ul>
                        <div class="row">
                            <input placeholder="reply" data-testid="issue-reply" prop:value=move || reply.get()
                                on:input=move |ev| reply.set(event_target_value(&ev))/>
                            <button data-testid="issue-send-reply" on:click=move |_| {
                                let (id, text) = (id_reply.clone(), reply.get_untracked());
                                reply.set(String::new());
                                spawn_local(act(state, "Reply not saved", actions::reply(state, id, text)));
                            }>"Reply"</button>
                            <button data-testid=if open { "issue-resolve" } else { "issue-reopen" } on:click=move |_| {
                                let id = id_toggle.clone();
                                spawn_local(act(state, "Issue not updated", actions::set_issue_open(state, id, !open)));
                            }>{if open { "Resolve" } else { "Reopen" }}</button>
                        </div>
                    </li>
                }
            })
            .collect_view()
    };
    view! { <ol class="issues">{list}</ol> }
}

/// Who labeled, submitted, reviewed, raised and answered issues, with times.
#[component]
fn History(state: AppState) -> impl IntoView {
    let lines = move || {
        let events = state.review.events.get();
        let refs: Vec<&ReviewEvent> = events.iter().collect();
        state.instances.with(|list| review::history(list, &refs))
            .into_iter()
            .map(|l| view! { <li data-testid="history-line"><small>{l.at}</small>" "<b>{l.author}</b>" "{l.text}</li> })
            .collect_view()
    };
    view! {
        <details class="history">
            <summary>"History"</summary>
            <ul>{lines}</ul>
        </details>
    }
}

/// Images whose stage needs a person: conflicting decisions, approvals of labels changed since.
#[component]
fn Attention(state: AppState) -> impl IntoView {
    let rows = move || {
        state.assets.with(|all| {
            all.iter()
                .enumerate()
                .filter_map(|(i, r)| r.review_note.clone().map(|n| (i, r.asset.name.clone(), n)))
                .map(|(i, name, note)| view! {
                    <li data-testid="attention" on:click=move |_| spawn_local(crate::features::navigate::open_asset(state, i))>
                        <b>{name}</b>": "{note}
                    </li>
                })
                .collect_view()
        })
    };
    let any = move || {
        state
            .assets
            .with(|all| all.iter().any(|r| r.review_note.is_some()))
    };
    view! {
        <Show when=any>
            <h3>"Needs a decision"</h3>
        </Show>
        <ul class="attention">{rows}</ul>
    }
}

#[component]
pub fn ReviewPanel(state: AppState) -> impl IntoView {
    // Derived once per change of the image, its labels or its events (the digest hashes every mask).
    let view_now = Memo::new(move |_| actions::current_view(state));
    let stage = move || view_now.with(|v| v.as_ref().map(|v| v.stage));
    let note =
        move || view_now.with(|v| v.as_ref().and_then(|v| v.note.as_ref()).map(|n| n.text()));
    let reviewers = move || {
        state
            .project()
            .map(|p| p.reviewers.join(", "))
            .unwrap_or_default()
    };
    let can_decide = move || matches!(stage(), Some(Stage::InReview | Stage::Rework));
    view! {
        <section class="review" data-testid="review-panel">
            <h2>"Review"</h2>
            <div class="row">
                <button data-testid="start-review" on:click=move |_| spawn_local(start_review(state))
                    title="Work through the images waiting for review">"Start review"</button>
                <span class="stage-badge" data-testid="stage">{move || stage().map(|s| s.label()).unwrap_or("")}</span>
            </div>
            <p class="note" data-testid="stage-note">{note}</p>
            <div class="row">
                <button data-testid="approve" disabled=move || !can_decide() title="A"
                    on:click=move |_| spawn_local(decide(state, true))>"Approve"</button>
                <button data-testid="reject" disabled=move || !can_decide() title="X: with the issues pinned"
                    on:click=move |_| spawn_local(decide(state, false))>"Reject"</button>
                <button data-testid="pin-issue" class:active=move || state.review.pin_mode.get() title="I, then click on the image"
                    on:click=move |_| state.review.pin_mode.update(|m| *m = !*m)>"Pin issue"</button>
                <button data-testid="skip" title="K"
                    on:click=move |_| spawn_local(act(state, "The image was not skipped", actions::toggle_skip(state)))>
                    {move || if stage() == Some(Stage::Skipped) { "Unskip" } else { "Skip" }}
                </button>
            </div>
            <Show when=move || state.review.pin_mode.get() || !state.review.drafts.with(Vec::is_empty)>
                <p class="hint">"Click on the image where the problem is; each click pins one issue."</p>
                <Drafts state/>
                <button data-testid="add-issues" disabled=move || state.review.drafts.with(Vec::is_empty)
                    on:click=move |_| spawn_local(act(state, "Issues not saved", actions::add_issues(state)))>
                    "Add issues without deciding"</button>
            </Show>
            <Show when=move || stage() == Some(Stage::Rework)>
                <button data-testid="resubmit" on:click=move |_| spawn_local(act(state, "Not resubmitted", actions::submit(state)))>
                    "Resubmit for review"</button>
            </Show>
            <Issues state/>
            <History state/>
            <Attention state/>
            <label class="reviewers">"Reviewers "
                <input placeholder="anyone" data-testid="reviewers" prop:value=reviewers
                    on:change=move |ev| spawn_local(set_reviewers(state, event_target_value(&ev)))/>
            </label>
            <p class="hint">"Names, comma-separated; empty lets anyone approve. This only shapes this app: a teammate with write access to the shared bucket can still act as a reviewer."</p>
        </section>
    }
}
