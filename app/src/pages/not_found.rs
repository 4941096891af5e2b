use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        opts.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <div class="login-page">
            <div class="card login-card">
                <p class="big-code">"404"</p>
                <h1>"This page does not exist"</h1>
                <p class="muted">"The address may be mistyped, or what it pointed to was removed."</p>
                <a class="button primary" href="/">"Go to the overview"</a>
            </div>
        </div>
    }
}
