use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

/// A route parameter, read through the router's own params. On client-side navigation the params
/// change while the page that read them is being disposed; a value the page derived from them
/// would already be gone, so pages read through this and get "" once the param is.
pub fn use_route_param(key: &'static str) -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.try_with(|p| p.get(key)).flatten().unwrap_or_default()
}
