use crate::error::AppError;
use leptos::prelude::*;

#[component]
pub fn Spinner(#[prop(into, optional)] label: String) -> impl IntoView {
    let label = if label.is_empty() { "Loading…".to_string() } else { label };
    view! {
        <div class="loading" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            <span>{label}</span>
        </div>
    }
}

/// A table-shaped placeholder while the first load is in flight.
#[component]
pub fn SkeletonRows(#[prop(default = 3)] rows: usize) -> impl IntoView {
    view! {
        <div class="skeleton" role="status" aria-label="Loading">
            {(0..rows).map(|_| view! { <div class="skeleton-row"></div> }).collect_view()}
        </div>
    }
}

#[component]
pub fn EmptyState(
    #[prop(into)] title: String,
    #[prop(into)] body: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="empty">
            <div class="empty-icon" aria-hidden="true">"○"</div>
            <h3>{title}</h3>
            <p class="muted">{body}</p>
            {children.map(|c| c())}
        </div>
    }
}

#[component]
pub fn ErrorBanner(error: AppError) -> impl IntoView {
    view! {
        <div class="banner banner-error" role="alert">
            <strong>{error_title(&error)}</strong>
            <span>{error.message.clone()}</span>
        </div>
    }
}

fn error_title(e: &AppError) -> &'static str {
    use crate::error::ErrorCode::*;
    match e.code {
        Invalid => "Check the form",
        NotFound => "Not found",
        Conflict => "Conflict",
        Unauthorized => "Signed out",
        Forbidden => "Not allowed",
        TooLarge => "Too large",
        TooManyRequests => "Slow down",
        Unavailable => "Unavailable",
        Internal => "Something went wrong",
    }
}

/// Fallback for `<ErrorBoundary>`: shows what failed instead of a blank page.
pub fn error_fallback(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <div class="banner banner-error" role="alert">
            <strong>"Could not load this"</strong>
            <ul>
                {move || errors.get().into_iter().map(|(_, e)| view! { <li>{e.to_string()}</li> }).collect_view()}
            </ul>
        </div>
    }
}
