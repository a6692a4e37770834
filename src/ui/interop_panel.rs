//! The summary of an import from another tool, shown before anything changes: what matched, how
//! classes map, what is skipped and why, and what to do with images that already have labels.

use leptos::prelude::*;
use leptos::task::spawn_local;

use lamina_interop::plan::Existing;

use crate::features::interop;
use crate::state::AppState;

#[component]
pub fn ImportPlanPanel(state: AppState) -> impl IntoView {
    let ui = state.interop;
    let replan = move || spawn_local(interop::replan(state));
    let heading = move || {
        ui.pending.with(|p| {
            p.as_ref().map_or(String::new(), |p| {
                format!("Import from {}: {}", p.format.tool(), p.files.join(", "))
            })
        })
    };
    let summary = move || {
        ui.plan
            .with(|p| p.as_ref().map(|p| p.summary()).unwrap_or_default())
    };
    let labeled = move || {
        ui.plan
            .with(|p| p.as_ref().map_or(0, |p| p.already_labeled()))
    };
    let class_options = move || {
        state
            .project()
            .map(|p| p.ontology.classes)
            .unwrap_or_default()
            .into_iter()
            .map(|c| view! { <option value=c.id.clone()>{c.name.clone()}</option> })
            .collect::<Vec<_>>()
    };
    view! {
        <Show when=move || ui.plan.with(Option::is_some)>
            <section class="import-plan" data-testid="import-plan">
                <h2>{heading}</h2>
                <pre data-testid="import-summary">{summary}</pre>
                <Show when=move || { labeled() > 0 }>
                    <label>{move || format!("{} images already have labels: ", labeled())}
                        <select data-testid="import-existing" on:change=move |ev| {
                            let choice = Existing::parse(&event_target_value(&ev)).unwrap_or_default();
                            ui.existing.set(choice);
                        }>
                            <option value="skip">"leave them as they are"</option>
                            <option value="add">"add the imported labels beside theirs"</option>
                            <option value="replace">"replace their labels"</option>
                        </select>
                    </label>
                </Show>
                <label>
                    <input type="checkbox" data-testid="import-add-classes"
                        prop:checked=move || ui.add_classes.get()
                        on:change=move |ev| { ui.add_classes.set(event_target_checked(&ev)); replan(); }/>
                    "Add the file's classes this project lacks"
                </label>
                <label>"Labels without a class: "
                    <select data-testid="import-unclassified" on:change=move |ev| {
                        let id = event_target_value(&ev);
                        ui.unclassified.set((!id.is_empty()).then_some(id));
                        replan();
                    }>
                        <option value="">"skip them"</option>
                        {class_options}
                    </select>
                </label>
                <span class="group">
                    <button data-testid="import-apply" on:click=move |_| spawn_local(interop::apply(state))>"Import"</button>
                    <button data-testid="import-cancel" on:click=move |_| interop::cancel(state)>"Cancel"</button>
                </span>
            </section>
        </Show>
    }
}
