use crate::components::feedback::EmptyState;
use crate::models::cluster::ClusterEvent;
use leptos::prelude::*;

/// Kubernetes events as a card with a table, or an empty state saying what would show there.
#[component]
pub fn EventsCard(
    #[prop(into)] title: String,
    events: Vec<ClusterEvent>,
    #[prop(into)] empty_title: String,
    #[prop(into)] empty_body: String,
) -> impl IntoView {
    view! {
        <section class="card flush">
            <h2 class="card-title padded">{title}</h2>
            {if events.is_empty() {
                view! { <EmptyState title=empty_title body=empty_body/> }.into_any()
            } else {
                view! {
                    <table class="table" data-testid="events">
                        <thead><tr><th>"Time"</th><th>"Type"</th><th>"Reason"</th><th>"Object"</th><th>"Message"</th></tr></thead>
                        <tbody>
                            {events.into_iter().map(|e| {
                                let tone = if e.kind == "Warning" { "warn" } else { "muted" };
                                view! {
                                <tr>
                                    <td class="nowrap muted small">{e.time}</td>
                                    <td><span class=format!("badge {tone}")>{e.kind}</span></td>
                                    <td>{e.reason}</td>
                                    <td><code class="small">{e.object}</code></td>
                                    <td class="small">{e.message}</td>
                                </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
