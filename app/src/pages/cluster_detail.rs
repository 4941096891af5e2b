//! One cluster: facts, nodes and GPUs, hub conditions, recent events, and release.
use crate::api::clusters::{get_cluster, ReleaseCluster};
use crate::api::policies::{drill_status, RunDrill};
use crate::components::dialog::Dialog;
use crate::components::events::EventsCard;
use crate::components::feedback::{error_fallback, ErrorBanner, SkeletonRows};
use crate::components::gpu::{gpu_line, GpuBar};
use crate::components::layout::PageHeader;
use crate::components::poll::use_tick;
use crate::components::route::use_route_param;
use crate::components::time::format_utc;
use crate::components::timeline::FailoverTimeline;
use crate::error::AppError;
use crate::models::cluster::ClusterDetail;
use crate::models::policy::{seconds_label, DrillDeployment, FailoverPolicy};
use crate::pages::clusters::{can, phase_class};
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

#[component]
pub fn ClusterDetailPage() -> impl IntoView {
    let name = use_route_param("name");
    let tick = use_tick(Duration::from_secs(5));
    let detail = Resource::new(move || (name(), tick.get()), |(n, _)| get_cluster(n));
    let release_open = RwSignal::new(false);
    // The dialog is built once per cluster, not on every poll.
    let last = Memo::new(move |_| {
        detail.get().and_then(|r| r.ok()).map(|d| (d.cluster.name, d.cluster.display_name, d.workloads))
    });

    view! {
        <p class="crumbs"><a href="/clusters">"Clusters"</a>" / "{move || name()}</p>
        <Transition fallback=|| view! { <div class="card"><SkeletonRows rows=6/></div> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    let d = detail.await?;
                    Ok::<_, AppError>(view! { <Detail d=d release_open/> })
                })}
            </ErrorBoundary>
        </Transition>
        <DrillCard name=Signal::derive(name)/>
        // Outside the refreshing view, so what is typed into it survives the next poll. In a
        // boundary of its own: a resource read outside one is counted by the page guard's, which
        // then re-creates the page (and its resources) until the stream ends.
        <Transition fallback=|| ()>
            {move || last.get().map(|(name, display, workloads)| view! {
                <ReleaseDialog name display workloads open=release_open/>
            })}
        </Transition>
    }
}

#[component]
fn Detail(d: ClusterDetail, release_open: RwSignal<bool>) -> impl IntoView {
    let c = d.cluster.clone();
    let may_release = can("/api/clusters/release");
    let zone = [c.region.clone(), c.zone.clone()].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" / ");
    view! {
        // A plain string: a reactive title outlives the page on client-side navigation.
        <Title text=c.display_name.clone()/>
        <PageHeader title=c.display_name.clone() subtitle=format!("{} · {}", c.name, c.zone_class.label())>
            <span class=format!("badge big {}", phase_class(c.phase)) data-testid="phase">{c.phase.label()}</span>
            <Show when=move || may_release.get()>
                <button class="button danger" type="button" on:click=move |_| release_open.set(true)>"Release…"</button>
            </Show>
        </PageHeader>
        <div class="detail-grid">
            <section class="card">
                <h2 class="card-title">"Cluster"</h2>
                <dl class="facts column">
                    <div><dt>"API server"</dt><dd><code>{c.api_endpoint.clone()}</code></dd></div>
                    <div><dt>"Kubernetes"</dt><dd>{c.kubernetes_version.clone()}</dd></div>
                    <div><dt>"Region / zone"</dt><dd>{if zone.is_empty() { "—".to_string() } else { zone }}</dd></div>
                    <div><dt>"Nodes"</dt><dd>{format!("{} / {} ready", c.nodes_ready, c.nodes_total)}</dd></div>
                    <div><dt>"Registered"</dt><dd>{format_utc(c.registered_at)}</dd></div>
                    <div><dt>"Status"</dt><dd>{c.message.clone()}</dd></div>
                </dl>
            </section>
            <section class="card">
                <h2 class="card-title">"GPUs"</h2>
                {if c.gpus.is_empty() {
                    view! { <p class="muted">"No GPUs: this cluster serves CPU-only workloads."</p> }.into_any()
                } else {
                    view! {
                        <ul class="gpu-list">{c.gpus.iter().map(|g| view! { <li>{gpu_line(g)}</li> }).collect_view()}</ul>
                        <GpuBar allocated=c.gpus_allocated allocatable=c.gpus_allocatable/>
                    }
                    .into_any()
                }}
                <h2 class="card-title spaced">"Conditions"</h2>
                {if d.conditions.is_empty() {
                    view! { <p class="muted">"The hub has not reported on this cluster yet."</p> }.into_any()
                } else {
                    view! {
                        <ul class="conditions">
                            {d.conditions.iter().map(|k| view! {
                                <li>
                                    <span class=format!("badge {}", if k.status == "True" { "ok" } else { "danger" })>{format!("{} {}", k.kind, k.status)}</span>
                                    " "<span class="muted">{format!("{}: {} (since {})", k.reason, k.message, k.since)}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    }
                    .into_any()
                }}
            </section>
        </div>
        <section class="card flush">
            <h2 class="card-title padded">"Nodes"</h2>
            <table class="table" data-testid="nodes">
                <thead><tr><th>"Node"</th><th>"Status"</th><th>"CPU"</th><th>"Memory"</th><th>"GPUs"</th><th>"Interconnect"</th><th>"Instance type"</th></tr></thead>
                <tbody>
                    {d.nodes.iter().map(|n| view! {
                        <tr>
                            <td class="cell-main">{n.name.clone()}</td>
                            <td><span class=format!("badge {}", if n.ready { "ok" } else { "danger" })>{if n.ready { "Ready" } else { "NotReady" }}</span></td>
                            <td>{n.cpu.clone()}</td>
                            <td>{n.memory.clone()}</td>
                            <td>{if n.gpus > 0 { format!("{} × {}", n.gpus, n.gpu_product) } else { "—".into() }}</td>
                            <td>{match (n.nvlink, n.mig_capable) { (true, true) => "NVLink · MIG", (true, false) => "NVLink", (false, true) => "MIG", _ => "—" }}</td>
                            <td class="muted">{n.instance_type.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <EventsCard title="Recent events" events=d.events.clone() empty_title="No events" empty_body="Nothing has happened on this cluster recently."/>
    }
}

#[component]
fn ReleaseDialog(name: String, display: String, workloads: Vec<String>, open: RwSignal<bool>) -> impl IntoView {
    let release = ServerAction::<ReleaseCluster>::new();
    let force = RwSignal::new(false);
    let confirm = RwSignal::new(String::new());
    let busy = !workloads.is_empty();
    let name_s = StoredValue::new(name.clone());
    let error = Signal::derive(move || release.value().get().and_then(|r| r.err()));
    // What could not be cleaned on the member is shown before leaving; a clean release just leaves.
    let leftovers =
        Signal::derive(move || release.value().get().and_then(|r| r.ok()).map(|r| r.leftovers).unwrap_or_default());
    Effect::new(move |_| {
        if let Some(Ok(r)) = release.value().get() {
            if r.leftovers.is_empty() {
                let _ = window().location().set_href("/clusters");
            }
        }
    });
    let ready = Signal::derive(move || confirm.get() == name_s.get_value() && (!busy || force.get()));
    let workloads = StoredValue::new(workloads);
    view! {
        <Dialog title=format!("Release {display}") open>
            <div class="form">
                {move || error.get().map(|e| view! { <ErrorBanner error=e/> })}
                {move || (!leftovers.get().is_empty()).then(|| view! {
                    <div class="banner banner-warn" role="alert">
                        <strong>"Released. These could not be removed from the member; remove them by hand:"</strong>
                        <ul>{leftovers.get().into_iter().map(|l| view! { <li><code>{l}</code></li> }).collect_view()}</ul>
                        <a class="button" href="/clusters">"Back to clusters"</a>
                    </div>
                })}
                <p>"Releasing this cluster:"</p>
                <ol class="steps">
                    <li>"deletes its Cluster object and credentials Secret from the hub, so nothing new is scheduled there;"</li>
                    <li>"removes the hub's ServiceAccount, ClusterRole and binding from the member (what cannot be removed is reported);"</li>
                    <li>"forgets the cluster and its stored credentials in H-MAS."</li>
                </ol>
                {move || (!workloads.get_value().is_empty()).then(|| view! {
                    <div class="banner banner-warn" role="alert">
                        <strong>{format!("{} workload(s) run here", workloads.get_value().len())}</strong>
                        <ul>{workloads.get_value().into_iter().map(|w| view! { <li><code>{w}</code></li> }).collect_view()}</ul>
                        <label class="check"><input type="checkbox" bind:checked=force/>" Release anyway: their policies move them elsewhere or remove them"</label>
                    </div>
                })}
                <div class="field">
                    <label for="f-confirm">{format!("Type {name} to confirm")}</label>
                    <input id="f-confirm" autocomplete="off" bind:value=confirm/>
                </div>
                <div class="form-actions">
                    <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                    <button
                        class="button danger-solid"
                        type="button"
                        disabled=move || !ready.get() || release.pending().get()
                        on:click=move |_| { release.dispatch(ReleaseCluster { name: name_s.get_value(), force: force.get_untracked() }); }
                    >
                        {move || if release.pending().get() { "Releasing…" } else { "Release cluster" }}
                    </button>
                </div>
            </div>
        </Dialog>
    }
}

/// The failover drill: on the simulated hub, take this cluster down and watch its workloads move
/// per their failover policy; then bring it back.
#[component]
fn DrillCard(name: Signal<String>) -> impl IntoView {
    let tick = use_tick(Duration::from_secs(1));
    let action = ServerAction::<RunDrill>::new();
    let status = Resource::new(move || (name.get(), tick.get(), action.version().get()), |(n, _, _)| drill_status(n));
    let may = can("/api/clusters/drill");
    let confirm_open = RwSignal::new(false);
    view! {
        <Transition fallback=|| ()>
            {move || status.get().and_then(|r| r.ok()).filter(|s| s.available).map(|s| {
                let elapsed = s.since.map(|since| (s.now - since) as f64 / 1000.0);
                let down = s.down;
                let affected = s.affected.clone();
                let since = s.since;
                let stuck = s.stuck.clone().filter(|_| down);
                view! {
                    <section class="card drill" data-testid="drill">
                        <header class="policy-head">
                            <h2 class="card-title">"Failover drill"</h2>
                            {down.then(|| view! { <span class="badge danger" data-testid="drill-down">{match elapsed {
                                Some(e) => format!("Down for {}", seconds_label(e as u32)),
                                None => "Down".to_string(),
                            }}</span> })}
                        </header>
                        <p class="muted small">"Cuts this simulated cluster off as a network failure would. The hub marks it NotReady; each deployment on it moves after its failover policy's toleration and serves from another cluster its strategy allows."</p>
                        {stuck.clone().map(|why| view! { <div class="banner banner-warn" role="status" data-testid="drill-stuck">{format!("Not moving: {why}")}</div> })}
                        {move || action.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBanner error=e/> })}
                        <Show when=move || may.get()>
                            {if down {
                                view! { <button class="button primary" type="button" data-testid="drill-up" disabled=move || action.pending().get()
                                    on:click=move |_| { action.dispatch(RunDrill { name: name.get_untracked(), down: false }); }>"Bring the cluster back"</button> }.into_any()
                            } else {
                                view! { <button class="button danger" type="button" data-testid="drill-start" on:click=move |_| confirm_open.set(true)>"Take the cluster down…"</button> }.into_any()
                            }}
                        </Show>
                        {if affected.is_empty() {
                            view! { <p class="muted">"No deployment runs here now: nothing would move."</p> }.into_any()
                        } else {
                            view! {
                                <div>
                                    <h3 class="small muted">{if since.is_some() { "Affected deployments" } else { "Deployments that would move" }}</h3>
                                    {affected.into_iter().map(|a| view! { <DrillRow a since elapsed stuck=stuck.is_some() cluster=name.get_untracked()/> }).collect_view()}
                                </div>
                            }.into_any()
                        }}
                    </section>
                }
            })}
        </Transition>
        <Dialog title="Take the cluster down?" open=confirm_open>
            <p>"The simulated cluster "<strong>{move || name.get()}</strong>" stops answering. Its workloads move per their failover policies. Bring it back from this page when you are done."</p>
            <div class="form-actions">
                <button class="button" type="button" on:click=move |_| confirm_open.set(false)>"Cancel"</button>
                <button class="button danger-solid" type="button" data-testid="drill-confirm" autofocus
                    on:click=move |_| { confirm_open.set(false); action.dispatch(RunDrill { name: name.get_untracked(), down: true }); }>"Take it down"</button>
            </div>
        </Dialog>
    }
}

#[component]
fn DrillRow(
    a: DrillDeployment,
    since: Option<i64>,
    elapsed: Option<f64>,
    /// The hub is not moving anything off this cluster.
    stuck: bool,
    cluster: String,
) -> impl IntoView {
    let (policy, named) = match a.failover.clone() {
        Some(f) => (f, true),
        // No toleration: Karmada evicts as soon as the cluster is tainted NoExecute.
        None => (FailoverPolicy { name: "hub default".into(), toleration_seconds: 0, ..Default::default() }, false),
    };
    let recovered = a.recovered_at.zip(since).map(|(r, s)| (r - s) as f64 / 1000.0);
    let serving: Vec<String> =
        a.placements.iter().filter(|(c, _, ready)| *c != cluster && *ready > 0).map(|(c, _, _)| c.clone()).collect();
    let status = match (recovered, since) {
        (Some(r), _) => format!("Serving again from {} after {}", serving.join(", "), seconds_label(r.round() as u32)),
        (None, Some(_)) if stuck || !policy.enabled => "Not moving".to_string(),
        (None, Some(_)) => format!("Waiting: toleration {}", seconds_label(policy.toleration_seconds)),
        (None, None) => format!("Would move after {}", seconds_label(policy.toleration_seconds)),
    };
    view! {
        <div class="drill-row" data-testid="drill-row" data-deployment=a.name.clone() data-recovered=recovered.is_some().to_string()>
            <div class="policy-head">
                <a href=format!("/deployments/{}", a.name)><strong>{a.name.clone()}</strong></a>
                <span class=if recovered.is_some() { "badge ok" } else { "badge warn" }>{status}</span>
            </div>
            <div class="drill-places">
                {a.placements.iter().map(|(c, want, ready)| view! {
                    <span class="chip static">{format!("{c}: {ready}/{want} ready")}</span>
                }).collect_view()}
                <span class="muted">{if named { format!("policy {}", policy.name) } else { "no failover policy: moved as soon as the hub taints the cluster".into() }}</span>
            </div>
            <FailoverTimeline policy=Signal::stored(policy) now=Signal::stored(elapsed) recovered=Signal::stored(recovered)/>
        </div>
    }
}
