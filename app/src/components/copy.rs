use leptos::prelude::*;
use std::time::Duration;

/// A block of text with a button that copies it.
#[component]
pub fn CopyBlock(
    #[prop(into)] text: String,
    #[prop(into)] label: String,
    #[prop(into, optional)] testid: String,
) -> impl IntoView {
    // None: not copied yet; Some(false): the browser refused, so the text is selected instead.
    let copied = RwSignal::new(None::<bool>);
    let t = StoredValue::new(text.clone());
    let block = NodeRef::<leptos::html::Pre>::new();
    let copy = move |_| {
        let ok = clipboard::write(&t.get_value());
        if !ok {
            clipboard::select(block);
        }
        copied.set(Some(ok));
        // The block may be re-rendered (and its signal gone) before the timer fires.
        set_timeout(
            move || {
                copied.try_set(None);
            },
            Duration::from_secs(4),
        );
    };
    view! {
        <div class="copy-block">
            <pre class="code" data-testid=testid node_ref=block>{text}</pre>
            <button class="button small" type="button" aria-label=label on:click=copy>
                {move || match copied.get() { Some(true) => "Copied", Some(false) => "Press Ctrl+C", None => "Copy" }}
            </button>
            <span class="sr-only" role="status">
                {move || match copied.get() { Some(true) => "Copied to the clipboard", Some(false) => "Selected: press Ctrl+C to copy", None => "" }}
            </span>
        </div>
    }
}

/// The clipboard outside secure contexts too: `navigator.clipboard` exists only over HTTPS or on
/// localhost, and the default install is plain HTTP on the host's address.
mod clipboard {
    use leptos::prelude::*;

    /// True when the text reached the clipboard (or the asynchronous API accepted it).
    pub fn write(text: &str) -> bool {
        #[cfg(feature = "hydrate")]
        {
            use leptos::wasm_bindgen::{JsCast, JsValue};
            let nav = window().navigator();
            let has_api = js_sys::Reflect::get(&nav, &JsValue::from_str("clipboard")).is_ok_and(|c| !c.is_undefined());
            if has_api && window().is_secure_context() {
                let _ = nav.clipboard().write_text(text);
                return true;
            }
            // The older way: a selected off-screen textarea and execCommand("copy").
            let doc = document();
            let Ok(area) = doc.create_element("textarea") else { return false };
            let Ok(area) = area.dyn_into::<web_sys::HtmlTextAreaElement>() else { return false };
            area.set_value(text);
            let _ = area.set_attribute("readonly", "");
            let _ = area.set_attribute("style", "position:fixed;top:0;left:-9999px;opacity:0");
            let Some(body) = doc.body() else { return false };
            let focused = doc.active_element();
            let _ = body.append_child(&area);
            area.select();
            let ok = doc.unchecked_ref::<web_sys::HtmlDocument>().exec_command("copy").unwrap_or(false);
            area.remove();
            if let Some(f) = focused.and_then(|f| f.dyn_into::<web_sys::HtmlElement>().ok()) {
                let _ = f.focus();
            }
            ok
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = text;
            false
        }
    }

    /// Selects the block's text, so Ctrl+C copies it when the browser would not.
    pub fn select(block: NodeRef<leptos::html::Pre>) {
        #[cfg(feature = "hydrate")]
        if let (Some(el), Ok(Some(sel))) = (block.get_untracked(), window().get_selection()) {
            let _ = sel.select_all_children(&el);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = block;
    }
}

/// A secret shown the one time it exists (a new API key or access token), with its copy button
/// and the way out that says it was copied.
#[component]
pub fn OneTimeSecret(
    secret: String,
    /// "key", "token": what the secret is, in the warning.
    what: &'static str,
    #[prop(into)] summary: String,
    #[prop(into)] testid: String,
    open: RwSignal<bool>,
) -> impl IntoView {
    view! {
        <div class="form">
            <div class="banner banner-warn">{format!("Copy the {what} now: it is shown only this once and cannot be recovered.")}</div>
            <CopyBlock text=secret label=format!("Copy the {what}") testid/>
            <p class="muted small">{summary}</p>
            <div class="form-actions">
                <button class="button primary" type="button" on:click=move |_| open.set(false)>"I have copied it"</button>
            </div>
        </div>
    }
}
