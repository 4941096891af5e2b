//! The fleet at a glance, live: clusters, GPUs, deployments, what needs attention, and the
//! gateway's traffic. Every figure links to the page that explains it; a fresh installation
//! gets the first steps instead of empty charts.
use crate::access::{access_for, allows};
use crate::api::clusters::list_clusters;
use crate::api::deployments::list_deployments;
use crate::api::keys::key_usage;
use crate::components::feedback::{error_fallback, EmptyState, SkeletonRows};
use crate::components::gpu::GpuBar;
use crate::components::layout::PageHeader;
use crate::components::poll::use_tick;
use crate::error::AppError;
use crate::models::cluster::{ClusterPhase, ClusterView};
use crate::models::deployment::{DeploymentPhase, DeploymentView};
use crate::pages::clusters::phase_class;
use crate::pages::deployments::{PhaseBadge, ProgressBar};
use crate::pages::keys::UsageView;
use crate::pages::shell::CurrentUser;
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// Deployments listed on the overview; the rest are a click away.
const SHOWN: usize = 8;

#[component]
pub fn OverviewPage() -> impl IntoView {
    let user = expect_context::<CurrentUser>();
    let tick = use_tick(Duration::from_secs(5));
    let clusters = Resource::new(move || tick.get(), |_| list_clusters());
    let deployments = Resource::new(move || tick.get(), |_| list_deployments());
    let usage = Resource::new(move || tick.get(), |_| key_usage(24));
    view! {
        <Title text="Overview"/>
        <Transition fallback=|| view! { <div class="card"><SkeletonRows rows=6/></div> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    let u = user.await.ok().flatten();
                    let (clusters, deployments) = (clusters.await?, deployments.await?);
                    let role = u.as_ref().map(|u| u.role);
                    let name = u.map(|u| if u.display_name.is_empty() { u.username } else { u.display_name }).unwrap_or_default();
                    let may = |endpoint| allows(access_for(endpoint), role);
                    let (may_register, may_deploy) = (may("/api/clusters/register"), may("/api/deployments/create"));
                    Ok::<_, AppError>(view! {
                        <PageHeader title=format!("Welcome, {name}") subtitle="The fleet at a glance, live."/>
                        <Fleet clusters deployments may_register may_deploy/>
                    }.into_any())
                })}
            </ErrorBoundary>
        </Transition>
        <section class="card">
            <div class="card-head">
                <h2 class="card-title">"Gateway, last 24 hours"</h2>
                <a href="/keys">"Usage by key and deployment →"</a>
            </div>
            <Transition fallback=|| view! { <SkeletonRows rows=3/> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        let u = usage.await?;
                        Ok::<_, AppError>(view! { <UsageView u brief=true/> })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
    .into_any()
}

#[component]
fn Fleet(
    clusters: Vec<ClusterView>,
    deployments: Vec<DeploymentView>,
    may_register: bool,
    may_deploy: bool,
) -> impl IntoView {
    let ready = clusters.iter().filter(|c| c.phase == ClusterPhase::Ready).count();
    let (gpus_used, gpus) = clusters.iter().fold((0, 0), |(a, t), c| (a + c.gpus_allocated, t + c.gpus_allocatable));
    let running = deployments.iter().filter(|d| d.phase == DeploymentPhase::Running).count();
    let on_the_way = deployments.iter().filter(|d| d.phase.is_starting()).count();
    let troubled_clusters: Vec<ClusterView> =
        clusters.iter().filter(|c| c.phase != ClusterPhase::Ready).cloned().collect();
    let troubled: Vec<DeploymentView> = deployments.iter().filter(|d| d.phase.is_problem()).cloned().collect();
    let problems = troubled_clusters.len() + troubled.len();
    let first_run = clusters.is_empty() || deployments.is_empty();
    view! {
        <div class="overview">
        <div class="stats overview-stats" data-testid="fleet-stats">
            <a class="stat stat-link" href="/clusters" data-testid="stat-clusters">
                <span class=format!("stat-value {}", if ready < clusters.len() { "tone-danger" } else { "" })>
                    {format!("{ready} / {}", clusters.len())}
                </span>
                <span class="stat-label">"clusters ready"</span>
            </a>
            <a class="stat stat-link" href="/clusters" data-testid="stat-gpus">
                <span class="stat-value">{format!("{gpus_used} / {gpus}")}</span>
                <span class="stat-label">"GPUs in use"</span>
            </a>
            <a class="stat stat-link" href="/deployments" data-testid="stat-running">
                <span class="stat-value">{running}</span>
                <span class="stat-label">{if on_the_way > 0 { format!("deployments running, {on_the_way} starting") } else { "deployments running".to_string() }}</span>
            </a>
            <a class="stat stat-link" href="#attention" data-testid="stat-attention">
                <span class=format!("stat-value {}", if problems > 0 { "tone-warn" } else { "tone-ok" })>{problems}</span>
                <span class="stat-label">{if problems == 1 { "needs attention" } else { "need attention" }}</span>
            </a>
        </div>
        {first_run.then(|| view! { <FirstSteps has_clusters=!clusters.is_empty() has_deployments=!deployments.is_empty()/> })}
        <div class="detail-grid">
            <Attention clusters=troubled_clusters deployments=troubled/>
            <ClusterList clusters may_register/>
        </div>
        <DeploymentList deployments may_deploy/>
        </div>
    }
    .into_any()
}

#[component]
fn FirstSteps(has_clusters: bool, has_deployments: bool) -> impl IntoView {
    let step = |done: bool, href: &'static str, title: &'static str, body: &'static str| {
        view! {
            <li class:done=done>
                <span class="step-mark" aria-hidden="true">{if done { "✓" } else { "" }}</span>
                <div>
                    <a href=href>{title}</a>
                    <p class="muted small">{body}</p>
                </div>
            </li>
        }
    };
    view! {
        <section class="card" data-testid="first-steps">
            <h2 class="card-title">"First steps"</h2>
            <ol class="first-steps">
                {step(has_clusters, "/clusters", "Register a cluster", "Paste a member's kubeconfig; H-MAS joins it to the hub and shows its GPUs.")}
                {step(has_deployments, "/deployments", "Deploy a model", "Pick a runtime and a model; watch it download, load and serve.")}
                {step(false, "/playground", "Chat with it", "Try it in the playground, then create an API key and call it from code.")}
            </ol>
        </section>
    }
    .into_any()
}

#[component]
fn Attention(clusters: Vec<ClusterView>, deployments: Vec<DeploymentView>) -> impl IntoView {
    let empty = clusters.is_empty() && deployments.is_empty();
    view! {
        <section class="card" id="attention" data-testid="attention">
            <h2 class="card-title">"Needs attention"</h2>
            {if empty {
                view! { <EmptyState title="All clear" body="Every cluster is ready, and no deployment has failed or lost replicas."/> }.into_any()
            } else {
                view! {
                    <ul class="attention">
                        {clusters.into_iter().map(|c| view! {
                            <li>
                                <span class=format!("dot {}", phase_class(c.phase)) aria-hidden="true"></span>
                                <div>
                                    <a href=format!("/clusters/{}", c.name)>{format!("Cluster {}", c.display_name)}</a>
                                    " "<span class=format!("badge {}", phase_class(c.phase))>{c.phase.label()}</span>
                                    <p class="muted small">{c.message}</p>
                                </div>
                            </li>
                        }).collect_view()}
                        {deployments.into_iter().map(|d| view! {
                            <li>
                                <span class=format!("dot {}", d.phase.tone()) aria-hidden="true"></span>
                                <div>
                                    <a href=format!("/deployments/{}", d.name)>{d.name.clone()}</a>
                                    " "<PhaseBadge phase=d.phase/>
                                    <p class="muted small">{d.message}</p>
                                </div>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}

#[component]
fn ClusterList(clusters: Vec<ClusterView>, may_register: bool) -> impl IntoView {
    view! {
        <section class="card" data-testid="overview-clusters">
            <div class="card-head">
                <h2 class="card-title">"Clusters"</h2>
                <a href="/clusters">"All clusters →"</a>
            </div>
            {if clusters.is_empty() {
                view! {
                    <EmptyState title="No clusters yet" body="Member clusters appear here with their readiness and GPUs.">
                        {may_register.then(|| view! { <a class="button primary" href="/clusters">"Register a cluster"</a> })}
                    </EmptyState>
                }.into_any()
            } else {
                view! {
                    <ul class="fleet-list">
                        {clusters.into_iter().map(|c| view! {
                            <li>
                                <div class="fleet-row">
                                    <span class=format!("dot {}", phase_class(c.phase)) aria-hidden="true"></span>
                                    <a href=format!("/clusters/{}", c.name)>{c.display_name.clone()}</a>
                                    <span class="muted small">{format!("{} / {} nodes", c.nodes_ready, c.nodes_total)}</span>
                                </div>
                                {if c.gpus_allocatable > 0 {
                                    view! { <GpuBar allocated=c.gpus_allocated allocatable=c.gpus_allocatable/> }.into_any()
                                } else {
                                    view! { <small class="muted">"CPU only"</small> }.into_any()
                                }}
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}

#[component]
fn DeploymentList(deployments: Vec<DeploymentView>, may_deploy: bool) -> impl IntoView {
    let more = deployments.len().saturating_sub(SHOWN);
    view! {
        <section class="card flush" data-testid="overview-deployments">
            <div class="card-head padded">
                <h2 class="card-title">"Deployments"</h2>
                <a href="/deployments">{if more > 0 { format!("All deployments ({} more) →", more) } else { "All deployments →".to_string() }}</a>
            </div>
            {if deployments.is_empty() {
                view! {
                    <EmptyState title="No models deployed yet" body="Deployments show here while they download, load and serve.">
                        {may_deploy.then(|| view! { <a class="button primary" href="/deployments">"Deploy a model"</a> })}
                    </EmptyState>
                }.into_any()
            } else {
                view! {
                    <table class="table">
                        <thead><tr><th>"Name"</th><th>"Runtime"</th><th>"Clusters"</th><th>"Replicas"</th><th>"Status"</th></tr></thead>
                        <tbody>
                            {deployments.into_iter().take(SHOWN).map(|d| view! {
                                <tr data-deployment=d.name.clone()>
                                    <td>
                                        <a class="cell-main" href=format!("/deployments/{}", d.name)>{d.name.clone()}</a>
                                        <div class="cell-sub"><code>{d.model.clone()}</code></div>
                                    </td>
                                    <td>{d.runtime.preset().label}</td>
                                    <td>{d.clusters.join(", ")}</td>
                                    <td class="nowrap">{format!("{} / {}", d.ready_replicas, if d.stopped { 0 } else { d.replicas })}</td>
                                    <td>
                                        <PhaseBadge phase=d.phase progress=d.progress/>
                                        {d.progress.filter(|_| d.phase.is_starting()).map(|p| view! { <ProgressBar pct=p label=format!("Model download of {}", d.name)/> })}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}
