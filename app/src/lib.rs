//! The H-MAS dashboard: pages, shared models and the server-fn contracts. Compiled for the server
//! (`ssr`) and for the browser (`hydrate`); it never depends on server-only crates.
#![recursion_limit = "256"]

pub mod access;
pub mod api;
pub mod components;
pub mod error;
pub mod models;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod services;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <link rel="stylesheet" href=format!("/pkg/{}.css", options.output_name)/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|t: String| if t.is_empty() { "H-MAS".to_string() } else { format!("{t} · H-MAS") }/>
        <Router>
            <Routes fallback=pages::not_found::NotFound>
                <Route path=path!("/login") view=pages::login::LoginPage/>
                <ParentRoute path=path!("") view=pages::shell::Shell>
                    <Route path=path!("") view=pages::overview::OverviewPage/>
                    <Route path=path!("clusters") view=pages::clusters::ClustersPage/>
                    <Route path=path!("clusters/:name") view=pages::cluster_detail::ClusterDetailPage/>
                    <Route path=path!("deployments") view=pages::deployments::DeploymentsPage/>
                    <Route path=path!("deployments/:name") view=pages::deployment_detail::DeploymentDetailPage/>
                    <Route path=path!("policies") view=pages::policies::PoliciesPage/>
                    <Route path=path!("playground") view=pages::playground::PlaygroundPage/>
                    <Route path=path!("keys") view=pages::keys::KeysPage/>
                    <Route path=path!("users") view=pages::users::UsersPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
