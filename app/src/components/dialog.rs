use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

/// A modal dialog. Escape, the backdrop or × closes it unless `held` (a one-time secret on
/// screen must be closed by its own button). Focus moves in when it opens (to the first
/// `autofocus` field, else the first control), Tab stays inside, and focus goes back to what
/// opened it when it closes.
#[component]
pub fn Dialog(
    /// A signal, so one dialog can be "New …" or "Edit …" as it opens.
    #[prop(into)]
    title: Signal<String>,
    open: RwSignal<bool>,
    children: ChildrenFn,
    #[prop(into, optional)] class: String,
    #[prop(into, optional)] held: Signal<bool>,
) -> impl IntoView {
    let class = StoredValue::new(class);
    let panel = NodeRef::<leptos::html::Div>::new();
    let dismiss = move || {
        if !held.get_untracked() {
            open.set(false);
        }
    };
    // On the window, not the dialog: focus may have left it (a button disabled while pending).
    Effect::new(move |_| {
        let handle = window_event_listener(leptos::ev::keydown, move |ev: KeyboardEvent| {
            if ev.key() == "Escape" && open.get_untracked() {
                dismiss();
            }
        });
        on_cleanup(move || handle.remove());
    });
    focus::manage(open, panel);
    view! {
        <Show when=move || open.get()>
            <div class="backdrop" on:click=move |_| dismiss()></div>
            <div
                node_ref=panel
                class=move || format!("dialog {}", class.get_value())
                role="dialog"
                aria-modal="true"
                aria-label=move || title.get()
                on:keydown=move |ev: KeyboardEvent| focus::trap(&ev, panel)
            >
                <header class="dialog-header">
                    <h2>{move || title.get()}</h2>
                    <Show when=move || !held.get()>
                        <button class="icon-button" type="button" aria-label="Close" on:click=move |_| open.set(false)>
                            "×"
                        </button>
                    </Show>
                </header>
                {children()}
            </div>
        </Show>
    }
}

/// Focus in, around and back out of a dialog; only the browser has focus.
mod focus {
    use leptos::ev::KeyboardEvent;
    use leptos::prelude::*;

    const FOCUSABLE: &str = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), \
        select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

    #[cfg(feature = "hydrate")]
    fn controls(panel: &web_sys::Element) -> Vec<web_sys::HtmlElement> {
        use leptos::wasm_bindgen::JsCast;
        let Ok(list) = panel.query_selector_all(FOCUSABLE) else { return Vec::new() };
        (0..list.length())
            .filter_map(|i| list.item(i))
            .filter_map(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
            // Hidden by layout (a collapsed section): not reachable by Tab either.
            .filter(|e| e.offset_parent().is_some() || e.get_client_rects().length() > 0)
            .collect()
    }

    /// Remembers what had focus when `open` turned true, moves focus into the panel once it is
    /// in the page, and gives focus back when `open` turns false.
    pub fn manage(open: RwSignal<bool>, panel: NodeRef<leptos::html::Div>) {
        #[cfg(feature = "hydrate")]
        Effect::new(move |opener: Option<Option<web_sys::HtmlElement>>| {
            use leptos::wasm_bindgen::JsCast;
            let opener = opener.flatten();
            if !open.get() {
                if let Some(o) = opener.filter(|o| o.is_connected()) {
                    let _ = o.focus();
                }
                return None;
            }
            let active = document().active_element();
            let opener = opener.or_else(|| active.clone().and_then(|a| a.dyn_into::<web_sys::HtmlElement>().ok()));
            if let Some(el) = panel.get() {
                let el: &web_sys::Element = &el;
                if !active.is_some_and(|a| el.contains(Some(&a))) {
                    let all = controls(el);
                    let first = el
                        .query_selector("[autofocus]")
                        .ok()
                        .flatten()
                        .and_then(|a| a.dyn_into::<web_sys::HtmlElement>().ok())
                        .or_else(|| {
                            all.iter().find(|c| c.get_attribute("aria-label").as_deref() != Some("Close")).cloned()
                        })
                        .or_else(|| all.first().cloned());
                    if let Some(f) = first {
                        let _ = f.focus();
                    }
                }
            }
            opener
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (open, panel);
    }

    /// Tab from the last control goes to the first, Shift+Tab from the first to the last.
    pub fn trap(ev: &KeyboardEvent, panel: NodeRef<leptos::html::Div>) {
        #[cfg(feature = "hydrate")]
        {
            if ev.key() != "Tab" {
                return;
            }
            let Some(el) = panel.get_untracked() else { return };
            let all = controls(&el);
            let (Some(first), Some(last)) = (all.first(), all.last()) else {
                ev.prevent_default();
                return;
            };
            let active = document().active_element();
            let at = |e: &web_sys::HtmlElement| active.as_ref().is_some_and(|a| a == &**e);
            let inside = active.as_ref().is_some_and(|a| el.contains(Some(a)));
            if ev.shift_key() && (at(first) || !inside) {
                ev.prevent_default();
                let _ = last.focus();
            } else if !ev.shift_key() && (at(last) || !inside) {
                ev.prevent_default();
                let _ = first.focus();
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, panel, FOCUSABLE);
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
