use crate::api::auth::Login;
use crate::components::form::{FormError, TextField};
use crate::error::AppError;
use crate::models::user::LoginInput;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Only same-site paths: a crafted `?next=` must not send people elsewhere after sign-in.
fn safe_next(next: Option<String>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/".to_string(),
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let local_error = RwSignal::new(None::<AppError>);
    let login = ServerAction::<Login>::new();

    let error = Signal::derive(move || local_error.get().or_else(|| login.value().get().and_then(|r| r.err())));
    Effect::new(move |_| {
        if let Some(Ok(_)) = login.value().get() {
            let next = safe_next(query.get_untracked().get("next"));
            // A full load, so the whole app renders again as the signed-in user.
            let _ = window().location().set_href(&next);
        }
    });

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let input =
            LoginInput { username: username.get_untracked().trim().to_string(), password: password.get_untracked() };
        match input.validate() {
            Err(e) => local_error.set(Some(e)),
            Ok(()) => {
                local_error.set(None);
                login.dispatch(Login { username: input.username, password: input.password });
            }
        }
    };

    view! {
        <Title text="Sign in"/>
        <div class="login-page">
            <form class="card login-card" on:submit=on_submit novalidate>
                <div class="brand login-brand">
                    <span class="brand-mark" aria-hidden="true">"H"</span>
                    <span>"H-MAS"</span>
                </div>
                <h1>"Sign in"</h1>
                <p class="muted">"Serve models on your GPU clusters from one place."</p>
                <FormError error/>
                <TextField name="username" label="Username" value=username error autocomplete="username" autofocus=true/>
                <TextField name="password" label="Password" kind="password" value=password error autocomplete="current-password"/>
                <button class="button primary wide" type="submit" disabled=move || login.pending().get()>
                    {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </div>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_stays_on_site() {
        assert_eq!(super::safe_next(Some("/users".into())), "/users");
        assert_eq!(super::safe_next(Some("//evil.example".into())), "/");
        assert_eq!(super::safe_next(Some("https://evil.example".into())), "/");
        assert_eq!(super::safe_next(Some("/\\evil".into())), "/");
        assert_eq!(super::safe_next(None), "/");
    }
}
