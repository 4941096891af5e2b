//! One deployment: where it runs, each replica's stage (with the model download), how to call it,
//! what happened, and stop / start / redeploy / delete.
use crate::api::deployments::{get_deployment, DeleteDeployment, RedeployDeployment, StartDeployment, StopDeployment};
use crate::components::copy::CopyBlock;
use crate::components::dialog::Dialog;
use crate::components::events::EventsCard;
use crate::components::feedback::{error_fallback, EmptyState, ErrorBanner, SkeletonRows};
use crate::components::layout::PageHeader;
use crate::components::poll::use_tick;
use crate::components::route::use_route_param;
use crate::components::time::format_utc;
use crate::error::AppError;
use crate::models::deployment::{curl_example, DeploymentDetail, DeploymentPhase};
use crate::pages::clusters::can;
use crate::pages::deployments::{PhaseBadge, ProgressBar};
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

#[component]
pub fn DeploymentDetailPage() -> impl IntoView {
    let name = use_route_param("name");
    // Once a second: people watch a model come up here.
    let tick = use_tick(Duration::from_secs(1));
    let stop = ServerAction::<StopDeployment>::new();
    let start = ServerAction::<StartDeployment>::new();
    let redeploy = ServerAction::<RedeployDeployment>::new();
    let detail = Resource::new(
        move || (name(), tick.get(), stop.version().get(), start.version().get(), redeploy.version().get()),
        |(n, ..)| get_deployment(n),
    );
    let delete_open = RwSignal::new(false);
    let action_error = Signal::derive(move || {
        stop.value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| start.value().get().and_then(|r| r.err()))
            .or_else(|| redeploy.value().get().and_then(|r| r.err()))
    });

    view! {
        <p class="crumbs"><a href="/deployments">"Deployments"</a>" / "{move || name()}</p>
        {move || action_error.get().map(|e| view! { <ErrorBanner error=e/> })}
        <Transition fallback=|| view! { <div class="card"><SkeletonRows rows=6/></div> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    let d = detail.await?;
                    Ok::<_, AppError>(view! { <Detail d=d stop start redeploy delete_open/> })
                })}
            </ErrorBoundary>
        </Transition>
        // Outside the refreshing view: its state must survive the once-a-second re-render.
        <DeleteDialog name open=delete_open/>
    }
}

#[component]
fn Detail(
    d: DeploymentDetail,
    stop: ServerAction<StopDeployment>,
    start: ServerAction<StartDeployment>,
    redeploy: ServerAction<RedeployDeployment>,
    delete_open: RwSignal<bool>,
) -> impl IntoView {
    let v = d.deployment.clone();
    let may_change = can("/api/deployments/stop");
    let name = StoredValue::new(v.name.clone());
    let busy = Signal::derive(move || stop.pending().get() || start.pending().get() || redeploy.pending().get());
    let stopped = v.stopped;
    let failed = v.phase == DeploymentPhase::Failed;
    let endpoint = v.endpoints.first().cloned();
    let downloading: Vec<_> = d.replicas.iter().filter(|r| r.progress.is_some()).cloned().collect();
    let spec = d.spec.clone();
    view! {
        // A plain string: a reactive title outlives the page on client-side navigation.
        <Title text=v.name.clone()/>
        <PageHeader title=v.name.clone() subtitle=format!("{} on {}", v.model, v.runtime.preset().label)>
            <span class="badge-slot"><PhaseBadge phase=v.phase progress=v.progress/></span>
            <Show when=move || may_change.get()>
                {if stopped {
                    view! { <button class="button" type="button" disabled=move || busy.get() on:click=move |_| { start.dispatch(StartDeployment { name: name.get_value() }); }>"Start"</button> }.into_any()
                } else {
                    view! { <button class="button" type="button" disabled=move || busy.get() on:click=move |_| { stop.dispatch(StopDeployment { name: name.get_value() }); }>"Stop"</button> }.into_any()
                }}
                <button class=if failed { "button primary" } else { "button" } type="button" disabled=move || busy.get()
                    on:click=move |_| { redeploy.dispatch(RedeployDeployment { name: name.get_value(), spec: None }); }>
                    {if failed { "Retry" } else { "Redeploy" }}
                </button>
                <button class="button danger" type="button" on:click=move |_| delete_open.set(true)>"Delete…"</button>
            </Show>
        </PageHeader>
        {(!v.message.is_empty()).then(|| {
            let tone = if matches!(v.phase, DeploymentPhase::Failed | DeploymentPhase::Unschedulable | DeploymentPhase::Pending | DeploymentPhase::Degraded) { "banner-warn" } else { "banner-info" };
            view! { <div class=format!("banner {tone}") role="status" data-testid="status-message">{v.message.clone()}</div> }
        })}
        {(!downloading.is_empty()).then(|| view! {
            <section class="card" data-testid="download">
                <h2 class="card-title">"Model download"</h2>
                {downloading.into_iter().map(|r| {
                    let pct = r.progress.unwrap_or(0);
                    view! {
                        <div class="progress-row">
                            <span class="small">{format!("{} · {}", r.cluster, r.pod)}</span>
                            <strong class="small">{format!("{pct}%")}</strong>
                        </div>
                        <ProgressBar pct=pct label=format!("Model download on {}", r.cluster)/>
                    }
                }).collect_view()}
            </section>
        })}
        <div class="detail-grid">
            <section class="card" data-testid="endpoint">
                <h2 class="card-title">"Call it"</h2>
                {match endpoint {
                    Some(_) => {
                        let origin = crate::components::origin::page_origin();
                        let model = StoredValue::new(v.model.clone());
                        let member = v.endpoints.clone();
                        let base = d.openai_base.clone();
                        view! {
                            <p class="muted small">"Through the H-MAS gateway, with an API key (its limits and usage apply). The model is "
                                <code>{v.model.clone()}</code>"; "<code>{v.name.clone()}</code>" reaches this deployment only."</p>
                            <p><code data-testid="endpoint-url">{move || format!("{}/v1", origin.get())}</code></p>
                            {move || view! { <CopyBlock text=curl_example(&origin.get(), &model.get_value()) label="Copy the curl example" testid="curl"/> }}
                            <p class="small"><a href="/keys">"Create an API key"</a>" · "<a href="/playground">"Try it in the playground"</a></p>
                            <Show when=move || may_change.get()>
                                <details class="member-endpoints">
                                    <summary class="small">"Member endpoints (no key, no limits: for debugging)"</summary>
                                    {member.iter().map(|e| view! { <p><code class="small" data-testid="member-endpoint">{format!("{e}{base}")}</code></p> }).collect_view()}
                                </details>
                            </Show>
                        }.into_any()
                    }
                    None => view! { <p class="muted">"Appears when a replica is ready."</p> }.into_any(),
                }}
            </section>
            <section class="card">
                <h2 class="card-title">"Deployment"</h2>
                <dl class="facts column">
                    <div><dt>"Model"</dt><dd><code>{v.model.clone()}</code></dd></div>
                    <div><dt>"Runtime"</dt><dd data-testid="runtime">{format!("{}{}", v.runtime.preset().label, if spec.agent { " · H-MAS agent" } else { " · official image" })}</dd></div>
                    <div><dt>"Replicas"</dt><dd>{format!("{} ready of {}{}", v.ready_replicas, v.replicas, if stopped { " (stopped)" } else { "" })}</dd></div>
                    <div><dt>"GPUs"</dt><dd>{if v.gpus_per_replica == 0 { "none (CPU)".to_string() } else { format!("{} per replica", v.gpus_per_replica) }}</dd></div>
                    <div><dt>"Placement"</dt><dd data-testid="placement">{if spec.strategy.is_empty() {
                        format!("clusters {}", spec.clusters.join(", "))
                    } else {
                        let mut s = format!("strategy {}", spec.strategy);
                        if !spec.clusters.is_empty() { s.push_str(&format!(" within {}", spec.clusters.join(", "))); }
                        s
                    }}</dd></div>
                    <div><dt>"Policies"</dt><dd>{format!(
                        "profile {} · failover {}",
                        if spec.profile.is_empty() { "from the strategy" } else { spec.profile.as_str() },
                        if spec.failover.is_empty() { "hub default (300 s)" } else { spec.failover.as_str() }
                    )}</dd></div>
                    <div><dt>"Model cache"</dt><dd>{d.cache_volume.clone().map(|c| view! { <code>{c}</code> }.into_any()).unwrap_or_else(|| "off".into_any())}</dd></div>
                    <div><dt>"Created"</dt><dd>{format!("{} by {}", format_utc(v.created_at), v.created_by)}</dd></div>
                </dl>
                {(!spec.settings.is_empty()).then(|| view! {
                    <p class="small muted">{spec.settings.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(" · ")}</p>
                })}
            </section>
        </div>
        <section class="card flush">
            <h2 class="card-title padded">"Clusters and replicas"</h2>
            {if d.placements.is_empty() {
                view! { <EmptyState title="Not placed yet" body="The hub has not scheduled this deployment on a cluster yet."/> }.into_any()
            } else {
                view! {
                    <table class="table" data-testid="placements">
                        <thead><tr><th>"Cluster"</th><th>"Replica"</th><th>"Node"</th><th>"Status"</th><th>"Restarts"</th><th>"Detail"</th></tr></thead>
                        <tbody>
                            {d.placements.iter().map(|p| {
                                let reps: Vec<_> = d.replicas.iter().filter(|r| r.cluster == p.cluster).cloned().collect();
                                let head = view! {
                                    <tr class="group-row">
                                        <td class="cell-main">{p.cluster.clone()}</td>
                                        <td colspan="2">{format!("{} / {} ready", p.ready, p.desired)}</td>
                                        <td colspan="3">{p.endpoint.clone().filter(|_| may_change.get_untracked()).map(|e| view! { <code class="small">{e}</code> })}<span class="muted small">{p.message.clone()}</span></td>
                                    </tr>
                                };
                                let rows = reps.into_iter().map(|r| view! {
                                    <tr data-replica=r.pod.clone()>
                                        <td></td>
                                        <td><code class="small">{r.pod.clone()}</code></td>
                                        <td class="muted small">{if r.node.is_empty() { "—".to_string() } else { r.node.clone() }}</td>
                                        <td><PhaseBadge phase=r.phase progress=r.progress/></td>
                                        <td>{r.restarts}</td>
                                        <td class="small clip" title=r.message.clone()>{r.message.clone()}</td>
                                    </tr>
                                }).collect_view();
                                view! { {head}{rows} }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <EventsCard title="Events" events=d.events.clone() empty_title="No events yet" empty_body="Scheduling, image pulls and model downloads on the members show here."/>
        <section class="card">
            <h2 class="card-title">"In the hub"</h2>
            <ul class="plain-list">{d.objects.iter().map(|o| view! { <li><code class="small">{o.clone()}</code></li> }).collect_view()}</ul>
            <h2 class="card-title spaced">"Command"</h2>
            <pre class="code">{d.command.clone()}</pre>
        </section>
    }
}

#[component]
fn DeleteDialog(name: impl Fn() -> String + Copy + Send + Sync + 'static, open: RwSignal<bool>) -> impl IntoView {
    let delete = ServerAction::<DeleteDeployment>::new();
    let delete_cache = RwSignal::new(false);
    let error = Signal::derive(move || delete.value().get().and_then(|r| r.err()));
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            let _ = window().location().set_href("/deployments");
        }
    });
    view! {
        <Dialog title="Delete deployment" open>
            <div class="form">
                {move || error.get().map(|e| view! { <ErrorBanner error=e/> })}
                <p>"This removes the Deployment, Service and PropagationPolicy from the hub; Karmada withdraws their copies from the members, and the endpoint stops answering."</p>
                <p>{move || format!("Delete {}?", name())}</p>
                <label class="check"><input type="checkbox" bind:checked=delete_cache/>" Also delete its model cache (unless another deployment uses it); the next deployment of this model downloads it again"</label>
                <div class="form-actions">
                    <button class="button" type="button" autofocus on:click=move |_| open.set(false)>"Cancel"</button>
                    <button class="button danger-solid" type="button" disabled=move || delete.pending().get()
                        on:click=move |_| { delete.dispatch(DeleteDeployment { name: name(), delete_cache: delete_cache.get_untracked() }); }>
                        {move || if delete.pending().get() { "Deleting…" } else { "Delete deployment" }}
                    </button>
                </div>
            </div>
        </Dialog>
    }
}
