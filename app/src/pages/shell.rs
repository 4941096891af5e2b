//! The signed-in frame: navigation, who you are, sign out, and the page.
use crate::access::{access_for, allows};
use crate::api::auth::{me, Logout};
use crate::components::feedback::Spinner;
use crate::error::AppError;
use crate::models::user::SessionUser;
use leptos::prelude::*;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::use_location;

/// The current user, loaded once per page load and shared with every page.
pub type CurrentUser = Resource<Result<Option<SessionUser>, AppError>>;

pub const NAV: &[(&str, &str, &str)] = &[
    ("/", "Overview", "◎"),
    ("/clusters", "Clusters", "⬢"),
    ("/deployments", "Deployments", "▲"),
    ("/policies", "Policies", "≡"),
    ("/playground", "Playground", "✦"),
    ("/keys", "API keys", "◈"),
    ("/users", "Users", "☺"),
];

#[component]
pub fn Shell() -> impl IntoView {
    let user: CurrentUser = Resource::new(|| (), |_| me());
    provide_context(user);
    let nav_open = RwSignal::new(false);
    let location = use_location();
    // Close the mobile menu whenever the page changes.
    Effect::new(move |_| {
        location.pathname.track();
        nav_open.set(false);
    });

    view! {
        <div class="layout" class:nav-open=move || nav_open.get()>
            <a class="skip-link" href="#main" on:click=skip_to_main>"Skip to content"</a>
            <aside class="sidebar" id="sidebar">
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true">"H"</span>
                    <span>"H-MAS"</span>
                </a>
                <nav aria-label="Main">
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let role = user.await.ok().flatten().map(|u| u.role);
                            NAV.iter()
                                .filter(|(path, _, _)| allows(access_for(path), role))
                                .map(|(path, label, icon)| {
                                    view! {
                                        <A href=*path exact=true>
                                            <span class="nav-icon" aria-hidden="true">{*icon}</span>
                                            <span class="nav-label">{*label}</span>
                                        </A>
                                    }
                                })
                                .collect_view()
                        })}
                    </Transition>
                </nav>
            </aside>
            <div class="main-col">
                <header class="topbar">
                    <button
                        class="icon-button menu-button"
                        type="button"
                        aria-label="Menu"
                        aria-controls="sidebar"
                        aria-expanded=move || if nav_open.get() { "true" } else { "false" }
                        on:click=move |_| nav_open.update(|o| *o = !*o)
                    >
                        "☰"
                    </button>
                    <div class="topbar-spacer"></div>
                    <UserMenu/>
                </header>
                <main class="content" id="main" tabindex="-1">
                    <Guard>
                        <Outlet/>
                    </Guard>
                </main>
            </div>
        </div>
    }
}

/// Focus, not only scroll, moves to the page: the next Tab is inside it.
fn skip_to_main(ev: leptos::ev::MouseEvent) {
    ev.prevent_default();
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        if let Some(m) = document().get_element_by_id("main").and_then(|m| m.dyn_into::<web_sys::HtmlElement>().ok()) {
            let _ = m.focus();
        }
    }
}

/// Shows the page only to roles the access table lets in; everyone else sees why not.
#[component]
fn Guard(children: ChildrenFn) -> impl IntoView {
    let user = expect_context::<CurrentUser>();
    let location = use_location();
    let children = StoredValue::new(children);
    view! {
        <Transition fallback=|| view! { <Spinner/> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(u)) if allows(access_for(&location.pathname.get()), Some(u.role)) => {
                        children.read_value()().into_any()
                    }
                    Ok(Some(u)) => view! {
                        <div class="card narrow">
                            <h1>"Not available to your role"</h1>
                            <p class="muted">
                                {format!("You are signed in as {} ({}). Ask an administrator if you need this page.",
                                    u.username, u.role.as_str())}
                            </p>
                            <a class="button" href="/">"Back to overview"</a>
                        </div>
                    }.into_any(),
                    Ok(None) => view! {
                        <div class="card narrow">
                            <h1>"Your session has ended"</h1>
                            <a class="button primary" href="/login">"Sign in again"</a>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <crate::components::feedback::ErrorBanner error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn UserMenu() -> impl IntoView {
    let user = expect_context::<CurrentUser>();
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = logout.value().get() {
            let _ = window().location().set_href("/login");
        }
    });
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                user.await.ok().flatten().map(|u| {
                    let initial = u.username.chars().next().unwrap_or('?').to_ascii_uppercase();
                    let name = if u.display_name.is_empty() { u.username.clone() } else { u.display_name.clone() };
                    view! {
                        <div class="user-menu">
                            <span class="avatar" aria-hidden="true">{initial.to_string()}</span>
                            <span class="user-name" data-testid="current-user">{name}</span>
                            <span class=format!("badge role-{}", u.role.as_str())>{u.role.as_str()}</span>
                            <button
                                class="button ghost"
                                type="button"
                                disabled=move || logout.pending().get()
                                on:click=move |_| { logout.dispatch(Logout {}); }
                            >
                                "Sign out"
                            </button>
                        </div>
                    }
                })
            })}
        </Transition>
    }
}
