use leptos::prelude::*;

/// Title row of a page: what it is, one line on why you are here, and its main actions.
#[component]
pub fn PageHeader(
    #[prop(into)] title: String,
    #[prop(into, optional)] subtitle: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <header class="page-header">
            <div>
                <h1>{title}</h1>
                {(!subtitle.is_empty()).then(|| view! { <p class="muted">{subtitle}</p> })}
            </div>
            <div class="page-actions">{children.map(|c| c())}</div>
        </header>
    }
}

#[component]
pub fn Card(
    #[prop(into, optional)] title: String,
    #[prop(into, optional)] class: String,
    children: Children,
) -> impl IntoView {
    view! {
        <section class=format!("card {class}")>
            {(!title.is_empty()).then(|| view! { <h2 class="card-title">{title}</h2> })}
            {children()}
        </section>
    }
}
