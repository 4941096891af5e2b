use crate::error::AppError;
use leptos::prelude::*;

/// A labelled input bound to `value`, showing the message for `name` from the last error.
/// The same validators run here on input and on the server.
#[component]
pub fn TextField(
    #[prop(into)] name: String,
    #[prop(into)] label: String,
    value: RwSignal<String>,
    /// The last submit's error (server or local), for this field's message.
    #[prop(into)]
    error: Signal<Option<AppError>>,
    #[prop(into, default = "text".to_string())] kind: String,
    #[prop(into, optional)] hint: String,
    #[prop(into, optional)] autocomplete: String,
    #[prop(optional)] autofocus: bool,
) -> impl IntoView {
    let id = format!("f-{name}");
    let err_id = format!("{id}-error");
    let field = name.clone();
    let message = Signal::derive(move || error.get().and_then(|e| e.field_error(&field)));
    view! {
        <div class="field" class:has-error=move || message.get().is_some()>
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type=kind
                autocomplete=(!autocomplete.is_empty()).then_some(autocomplete)
                autofocus=autofocus
                aria-invalid=move || message.get().is_some().to_string()
                aria-describedby=err_id.clone()
                bind:value=value
            />
            {(!hint.is_empty()).then(|| view! { <small class="hint">{hint}</small> })}
            <small class="field-error" id=err_id role="alert">{move || message.get()}</small>
        </div>
    }
}

/// A labelled `<select>` over fixed options `(value, text)`.
#[component]
pub fn SelectField(
    #[prop(into)] name: String,
    #[prop(into)] label: String,
    value: RwSignal<String>,
    options: Vec<(String, String)>,
    #[prop(into)] error: Signal<Option<AppError>>,
) -> impl IntoView {
    let id = format!("f-{name}");
    let field = name.clone();
    let message = Signal::derive(move || error.get().and_then(|e| e.field_error(&field)));
    view! {
        <div class="field" class:has-error=move || message.get().is_some()>
            <label for=id.clone()>{label}</label>
            <select id=id name=name bind:value=value>
                {options
                    .into_iter()
                    .map(|(v, t)| view! { <option value=v.clone() selected=value.get_untracked() == v>{t}</option> })
                    .collect_view()}
            </select>
            <small class="field-error" role="alert">{move || message.get()}</small>
        </div>
    }
}

/// The message that is not about one field (those show next to their inputs).
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().filter(|e| e.fields.is_empty()).map(|e| {
            view! { <div class="banner banner-error" role="alert">{e.message}</div> }
        })
    }
}
