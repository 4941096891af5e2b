use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

/// A modal dialog. Escape or the backdrop closes it; focus starts on its first `autofocus` field.
#[component]
pub fn Dialog(
    /// A signal, so one dialog can be "New …" or "Edit …" as it opens.
    #[prop(into)]
    title: Signal<String>,
    open: RwSignal<bool>,
    children: ChildrenFn,
    #[prop(into, optional)] class: String,
) -> impl IntoView {
    let class = StoredValue::new(class);
    // On the window, not the dialog: focus may have left it (a button disabled while pending).
    Effect::new(move |_| {
        let handle = window_event_listener(leptos::ev::keydown, move |ev: KeyboardEvent| {
            if ev.key() == "Escape" && open.get_untracked() {
                open.set(false);
            }
        });
        on_cleanup(move || handle.remove());
    });
    view! {
        <Show when=move || open.get()>
            <div class="backdrop" on:click=move |_| open.set(false)></div>
            <div
                class=move || format!("dialog {}", class.get_value())
                role="dialog"
                aria-modal="true"
                aria-label=move || title.get()
            >
                <header class="dialog-header">
                    <h2>{move || title.get()}</h2>
                    <button class="icon-button" type="button" aria-label="Close" on:click=move |_| open.set(false)>
                        "×"
                    </button>
                </header>
                {children()}
            </div>
        </Show>
    }
}
