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

/// The open state of a dialog about one thing: open while `target` holds it; closing forgets it.
pub fn open_for<T: Send + Sync + 'static>(target: RwSignal<Option<T>>) -> RwSignal<bool> {
    let open = RwSignal::new(false);
    Effect::new(move |_| {
        if target.with(Option::is_some) {
            open.set(true);
        }
    });
    Effect::new(move |_| {
        if !open.get() {
            target.set(None);
        }
    });
    open
}

/// "Do this to that?" with Cancel and a danger button; closes itself when `done` turns true.
#[component]
pub fn ConfirmDialog(
    #[prop(into)] title: String,
    open: RwSignal<bool>,
    #[prop(into)] confirm: String,
    #[prop(into)] pending: Signal<bool>,
    #[prop(into)] done: Signal<bool>,
    on_confirm: Callback<()>,
    children: ChildrenFn,
) -> impl IntoView {
    Effect::new(move |_| {
        if done.get() {
            open.set(false);
        }
    });
    let children = StoredValue::new(children);
    let confirm = StoredValue::new(confirm);
    view! {
        <Dialog title=title open>
            <div class="form">
                {children.with_value(|c| c())}
                <div class="form-actions">
                    <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                    <button class="button danger" type="button" disabled=move || pending.get()
                        on:click=move |_| on_confirm.run(())>{confirm.get_value()}</button>
                </div>
            </div>
        </Dialog>
    }
}
