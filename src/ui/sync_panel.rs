//! The "Team sync" panel: connect to an S3 or WebDAV-style endpoint and pull a batch, the sync status
//! (synced / N pending / error with the reason), push and pull now, and the conflicts to resolve.

use lamina_sync::endpoint::{S3Credentials, S3Location};
use lamina_sync::Endpoint;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::editing::push::push;
use crate::features::navigate;
use crate::features::sync::{self, ConnectForm};
use crate::state::sync::{ConflictView, SyncStatus};
use crate::state::AppState;

fn text_input(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    kind: &'static str,
) -> impl IntoView {
    view! {
        <label class="field">{label}
            <input id=id type=kind prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
        </label>
    }
}

#[component]
pub fn SyncPanel(state: AppState) -> impl IntoView {
    let kind = RwSignal::new("s3".to_owned());
    let endpoint = RwSignal::new(String::new());
    let bucket = RwSignal::new(String::new());
    let region = RwSignal::new("us-east-1".to_owned());
    let prefix = RwSignal::new(String::new());
    let path_style = RwSignal::new(true);
    let access_key = RwSignal::new(String::new());
    let secret_key = RwSignal::new(String::new());
    let session_token = RwSignal::new(String::new());
    let token = RwSignal::new(String::new());
    let read_only = RwSignal::new(false);
    let remember = RwSignal::new(false);
    let batch = RwSignal::new(String::new());
    let labeler = RwSignal::new(String::new());

    // Opening a synced project fills the form with its endpoint (never with a secret not remembered).
    // Only when the project or its endpoint changes: every push and pull updates the link's ledger, and
    // that must not overwrite what the user is typing.
    let linked = Memo::new(move |_| {
        state.sync.link.with(|l| {
            l.as_ref().map(|l| {
                (
                    l.project_id.clone(),
                    l.batch.clone(),
                    l.labeler.clone(),
                    l.remember,
                    l.endpoint.clone(),
                )
            })
        })
    });
    Effect::new(move |_| {
        if let Some((_, link_batch, link_labeler, link_remember, link_endpoint)) = linked.get() {
            batch.set(link_batch);
            labeler.set(link_labeler);
            remember.set(link_remember);
            match link_endpoint {
                Endpoint::S3 {
                    location,
                    credentials,
                } => {
                    kind.set("s3".into());
                    endpoint.set(location.endpoint);
                    bucket.set(location.bucket);
                    region.set(location.region);
                    prefix.set(location.prefix);
                    path_style.set(location.path_style);
                    if let Some(c) = credentials {
                        access_key.set(c.access_key);
                    }
                }
                Endpoint::Http {
                    base_url, writable, ..
                } => {
                    kind.set("webdav".into());
                    endpoint.set(base_url);
                    read_only.set(!writable);
                }
            }
        }
    });

    let connect = move |_| {
        let blank = |s: RwSignal<String>| {
            let v = s.get_untracked().trim().to_owned();
            (!v.is_empty()).then_some(v)
        };
        let endpoint_value = if kind.get_untracked() == "s3" {
            let credentials = match (blank(access_key), blank(secret_key)) {
                (Some(a), Some(s)) => Some(S3Credentials {
                    access_key: a,
                    secret_key: s,
                    session_token: blank(session_token),
                }),
                _ => None,
            };
            Endpoint::S3 {
                location: S3Location {
                    endpoint: endpoint.get_untracked().trim().to_owned(),
                    bucket: bucket.get_untracked().trim().to_owned(),
                    region: region.get_untracked().trim().to_owned(),
                    path_style: path_style.get_untracked(),
                    prefix: prefix.get_untracked().trim().to_owned(),
                },
                credentials,
            }
        } else {
            Endpoint::Http {
                base_url: endpoint.get_untracked().trim().to_owned(),
                token: blank(token),
                writable: !read_only.get_untracked(),
            }
        };
        let labeler_value = blank(labeler)
            .or_else(|| {
                let author = state.author.get_untracked();
                let cleaned: String = author
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '-'
                        }
                    })
                    .collect();
                (!cleaned.trim_matches('-').is_empty())
                    .then(|| cleaned.trim_matches('-').to_owned())
            })
            .unwrap_or_default();
        spawn_local(sync::connect(
            state,
            ConnectForm {
                endpoint: endpoint_value,
                batch: batch.get_untracked().trim().to_owned(),
                labeler: labeler_value,
                remember: remember.get_untracked(),
            },
        ));
    };

    let status_text = move || {
        let pending = state.sync.pending.get();
        match state.sync.status.get() {
            SyncStatus::Off => {
                "not synced: connect to an endpoint to share this project".to_owned()
            }
            SyncStatus::Synced => "synced".to_owned(),
            SyncStatus::Pending => format!("{pending} pending"),
            SyncStatus::Syncing(what) => format!("{what}… ({pending} pending)"),
            SyncStatus::Error(why) => format!("error: {why} ({pending} pending)"),
        }
    };
    let conflicts = move || {
        state
            .sync
            .conflicts
            .get()
            .into_iter()
            .map(|c| conflict_row(state, c))
            .collect_view()
    };
    let is_s3 = move || kind.get() == "s3";

    view! {
        <section class="sync-panel" data-testid="sync-panel">
            <h2>"Team sync"</h2>
            <div id="sync-status" data-testid="sync-status"
                data-state=move || state.sync.status.get().key()
                data-pending=move || state.sync.pending.get().to_string()
                data-conflicts=move || state.sync.conflicts.with(Vec::len).to_string()
                class=move || format!("sync-status {}", state.sync.status.get().key())>
                {status_text}
            </div>
            <div class="sync-actions">
                <button id="sync-push" disabled=move || state.sync.link.with(Option::is_none)
                    on:click=move |_| spawn_local(push(state))>"Push now"</button>
                <button id="sync-pull" disabled=move || state.sync.link.with(Option::is_none)
                    on:click=move |_| spawn_local(sync::pull(state))>"Pull labels"</button>
            </div>
            <ul class="sync-conflicts">{conflicts}</ul>
            <details class="sync-connect" open=move || state.sync.link.with(Option::is_none)>
                <summary>"Endpoint and batch"</summary>
                <label class="field">"Kind"
                    <select id="sync-kind" prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="s3">"S3 (AWS, Garage, MinIO, R2, Ceph)"</option>
                        <option value="webdav">"WebDAV-style HTTP folder"</option>
                    </select>
                </label>
                {text_input("sync-endpoint", "Endpoint URL", endpoint, "url")}
                <Show when=is_s3>
                    {text_input("sync-bucket", "Bucket", bucket, "text")}
                    {text_input("sync-region", "Region", region, "text")}
                    {text_input("sync-prefix", "Key prefix (optional, ends with /)", prefix, "text")}
                    <label class="check"><input id="sync-path-style" type="checkbox" prop:checked=move || path_style.get()
                        on:change=move |ev| path_style.set(event_target_checked(&ev))/>"Path-style addressing"</label>
                    {text_input("sync-access-key", "Access key", access_key, "text")}
                    {text_input("sync-secret-key", "Secret key", secret_key, "password")}
                    {text_input("sync-session-token", "Session token (optional)", session_token, "password")}
                </Show>
                <Show when=move || !is_s3()>
                    {text_input("sync-token", "Bearer token (optional)", token, "password")}
                    <label class="check"><input id="sync-readonly" type="checkbox" prop:checked=move || read_only.get()
                        on:change=move |ev| read_only.set(event_target_checked(&ev))/>"Read-only host (GET only: pull, no push)"</label>
                </Show>
                <label class="check" title="Otherwise secrets stay in memory and are asked for again after a reload">
                    <input id="sync-remember" type="checkbox" prop:checked=move || remember.get()
                        on:change=move |ev| remember.set(event_target_checked(&ev))/>"Remember credentials on this device"</label>
                {text_input("sync-batch", "Batch id", batch, "text")}
                {text_input("sync-labeler", "Your labeler name", labeler, "text")}
                <button id="sync-connect" data-testid="sync-connect" on:click=connect>"Connect and pull batch"</button>
            </details>
        </section>
    }
}

fn conflict_row(state: AppState, c: ConflictView) -> impl IntoView {
    let mine = c.conflict.mine.is_some().then(|| {
        let c = c.clone();
        view! {
            <button class="keep-mine" on:click=move |_| spawn_local(sync::resolve(state, c.clone(), None))>"Keep mine"</button>
        }
    });
    let theirs = c
        .conflict
        .theirs
        .iter()
        .map(|t| {
            let (c, revision) = (c.clone(), t.revision.clone());
            view! {
                <button class="take-theirs" data-labeler=t.labeler.clone()
                    title=format!("{} instance(s), {}", t.instance_count, t.created)
                    on:click=move |_| spawn_local(sync::resolve(state, c.clone(), Some(revision.clone())))>
                    {format!("Take {}'s ({})", t.labeler, t.instance_count)}
                </button>
            }
        })
        .collect_view();
    let open = {
        let id = c.asset_id.clone();
        move |_| {
            let index = state
                .assets
                .with_untracked(|a| a.iter().position(|r| r.asset.id == id));
            if let Some(i) = index {
                spawn_local(navigate::open_asset(state, i));
            }
        }
    };
    view! {
        <li class="sync-conflict" data-asset=c.sync_id.clone()>
            <a href="#" on:click=open>{c.name.clone()}</a>
            " was changed here and by others: "
            {mine}
            {theirs}
        </li>
    }
}
