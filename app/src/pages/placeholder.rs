//! Sections whose features are not in this version yet. They say so plainly and show nothing made up.
use crate::components::feedback::EmptyState;
use crate::components::layout::PageHeader;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
fn NotYet(title: &'static str, subtitle: &'static str, what: &'static str) -> impl IntoView {
    view! {
        <Title text=title/>
        <PageHeader title=title subtitle=subtitle/>
        <div class="card">
            <EmptyState title="Not available in this version yet" body=what/>
        </div>
    }
}

#[component]
pub fn PoliciesPage() -> impl IntoView {
    view! {
        <NotYet
            title="Policies"
            subtitle="Placement strategies, resource profiles and failover policies."
            what="Policy management is not part of this version. No policies exist."
        />
    }
}
