use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

/// A modal dialog. Escape or the backdrop closes it; focus starts on its first `autofocus` field.
#[component]
pub fn Dialog(
    #[prop(into)] title: String,
    open: RwSignal<bool>,
    children: ChildrenFn,
    #[prop(into, optional)] class: String,
) -> impl IntoView {
    let title = StoredValue::new(title);
    let class = StoredValue::new(class);
    let on_key = move |ev: KeyboardEvent| {
        if ev.key() == "Escape" {
            open.set(false);
        }
    };
    view! {
        <Show when=move || open.get()>
            <div class="backdrop" on:click=move |_| open.set(false)></div>
            <div
                class=move || format!("dialog {}", class.get_value())
                role="dialog"
                aria-modal="true"
                aria-label=title.get_value()
                on:keydown=on_key
            >
                <header class="dialog-header">
                    <h2>{title.get_value()}</h2>
                    <button class="icon-button" type="button" aria-label="Close" on:click=move |_| open.set(false)>
                        "×"
                    </button>
                </header>
                {children()}
            </div>
        </Show>
    }
}
