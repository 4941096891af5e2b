use leptos::prelude::*;
use std::time::Duration;

/// A block of text with a button that copies it.
#[component]
pub fn CopyBlock(
    #[prop(into)] text: String,
    #[prop(into)] label: String,
    #[prop(into, optional)] testid: String,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let t = StoredValue::new(text.clone());
    let copy = move |_| {
        let clip = window().navigator().clipboard();
        let _ = clip.write_text(&t.get_value());
        copied.set(true);
        // The block may be re-rendered (and its signal gone) before the timer fires.
        set_timeout(
            move || {
                copied.try_set(false);
            },
            Duration::from_secs(2),
        );
    };
    view! {
        <div class="copy-block">
            <pre class="code" data-testid=testid>{text}</pre>
            <button class="button small" type="button" aria-label=label on:click=copy>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
        </div>
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
