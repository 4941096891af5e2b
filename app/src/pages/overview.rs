use crate::access::{access_for, allows};
use crate::components::layout::PageHeader;
use crate::pages::shell::{CurrentUser, NAV};
use leptos::prelude::*;
use leptos_meta::Title;

const ABOUT: &[(&str, &str, bool)] = &[
    ("/clusters", "Register Kubernetes clusters into the hub and see their GPUs.", true),
    ("/deployments", "Serve a model with a runtime on the clusters that fit it.", false),
    ("/policies", "Decide where models run, with what resources, and how they fail over.", false),
    ("/playground", "Chat with any deployed model.", false),
    ("/keys", "Call deployed models from code through one OpenAI-compatible endpoint.", false),
    ("/users", "Invite people and give them the role they need.", true),
];

#[component]
pub fn OverviewPage() -> impl IntoView {
    let user = expect_context::<CurrentUser>();
    view! {
        <Title text="Overview"/>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let u = user.await.ok().flatten();
                let role = u.as_ref().map(|u| u.role);
                let name = u.map(|u| if u.display_name.is_empty() { u.username } else { u.display_name }).unwrap_or_default();
                view! {
                    <PageHeader title=format!("Welcome, {name}") subtitle="What you can do in H-MAS."/>
                    <div class="grid">
                        {ABOUT.iter()
                            .filter(|(path, _, _)| allows(access_for(path), role))
                            .map(|(path, text, ready)| {
                                let (_, label, icon) = NAV.iter().find(|(p, _, _)| p == path).copied().unwrap_or((path, path, "•"));
                                view! {
                                    <a class="card tile" href=*path>
                                        <div class="tile-head">
                                            <span class="tile-icon" aria-hidden="true">{icon}</span>
                                            <h2>{label}</h2>
                                            {if *ready {
                                                view! { <span class="badge ok">"Ready"</span> }.into_any()
                                            } else {
                                                view! { <span class="badge muted">"Not yet available"</span> }.into_any()
                                            }}
                                        </div>
                                        <p class="muted">{*text}</p>
                                    </a>
                                }
                            })
                            .collect_view()}
                    </div>
                }
            })}
        </Transition>
    }
}
