//! Model deployments: a live, searchable list, and the deploy sheet.
use crate::api::deployments::{deploy_options, list_deployments, CreateDeployment};
use crate::api::policies::{list_policies, preview_placement};
use crate::components::dialog::Dialog;
use crate::components::feedback::{error_fallback, EmptyState, SkeletonRows};
use crate::components::form::{FormError, TextField};
use crate::components::layout::PageHeader;
use crate::components::poll::use_tick;
use crate::components::time::format_utc;
use crate::error::AppError;
use crate::models::deployment::{sanitize_name, CacheSettings, DeploySpec, DeploymentPhase, DeploymentView};
use crate::models::runtime::{check_setting, command_line, RuntimeKind, SettingKind};
use crate::pages::clusters::can;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;
use std::collections::BTreeMap;
use std::time::Duration;

/// The status badge, with the download's percentage while there is one.
#[component]
pub fn PhaseBadge(phase: DeploymentPhase, #[prop(default = None)] progress: Option<i64>) -> impl IntoView {
    let text = match progress {
        Some(p) if matches!(phase, DeploymentPhase::Downloading | DeploymentPhase::Preloading) => {
            format!("{} {p}%", phase.label())
        }
        _ => phase.label().to_string(),
    };
    view! { <span class=format!("badge {}", phase.tone()) data-testid="phase" data-phase=phase.as_str()>{text}</span> }
}

/// A thin progress bar for a model download.
#[component]
pub fn ProgressBar(pct: i64, #[prop(into)] label: String) -> impl IntoView {
    let pct = pct.clamp(0, 100);
    view! {
        <div class="meter" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=pct aria-label=label>
            <div class="meter-fill" style=format!("width: {pct}%")></div>
        </div>
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Filter {
    All,
    Running,
    Starting,
    Problems,
    Stopped,
}

impl Filter {
    fn matches(self, p: DeploymentPhase) -> bool {
        use DeploymentPhase::*;
        match self {
            Filter::All => true,
            Filter::Running => p == Running,
            Filter::Starting => p.is_starting(),
            Filter::Problems => p.is_problem(),
            Filter::Stopped => matches!(p, Stopped | Deleting),
        }
    }
    fn label(self) -> &'static str {
        match self {
            Filter::All => "All",
            Filter::Running => "Running",
            Filter::Starting => "Starting",
            Filter::Problems => "Problems",
            Filter::Stopped => "Stopped",
        }
    }
}

#[component]
pub fn DeploymentsPage() -> impl IntoView {
    let create = ServerAction::<CreateDeployment>::new();
    let tick = use_tick(Duration::from_secs(2));
    let list = Resource::new(move || (tick.get(), create.version().get()), |_| list_deployments());
    let open = RwSignal::new(false);
    let may_deploy = can("/api/deployments/create");
    let search = RwSignal::new(String::new());
    let filter = RwSignal::new(Filter::All);

    view! {
        <Title text="Deployments"/>
        <PageHeader title="Deployments" subtitle="Models served on member clusters, live from the hub.">
            <Show when=move || may_deploy.get()>
                <button class="button primary" type="button" on:click=move |_| open.set(true)>"Deploy model"</button>
            </Show>
        </PageHeader>
        <div class="toolbar">
            <input class="search" type="search" placeholder="Search name, model, cluster…" aria-label="Search deployments" bind:value=search/>
            <div class="segmented" role="group" aria-label="Filter by status">
                {[Filter::All, Filter::Running, Filter::Starting, Filter::Problems, Filter::Stopped]
                    .into_iter()
                    .map(|f| view! {
                        <button type="button" aria-pressed=move || (filter.get() == f).to_string() on:click=move |_| filter.set(f)>{f.label()}</button>
                    })
                    .collect_view()}
            </div>
        </div>
        <Transition fallback=|| view! { <div class="card"><SkeletonRows rows=4/></div> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    let all = list.await?;
                    if all.is_empty() {
                        return Ok::<_, AppError>(view! {
                            <div class="card">
                                <EmptyState title="No models deployed yet" body="Deploy a model with Ollama, vLLM, TGI, llama.cpp or SGLang to a registered cluster; it shows here while it downloads, loads and serves.">
                                    <Show when=move || may_deploy.get()>
                                        <button class="button primary" type="button" on:click=move |_| open.set(true)>"Deploy model"</button>
                                    </Show>
                                </EmptyState>
                            </div>
                        }.into_any());
                    }
                    let q = search.get().to_lowercase();
                    let f = filter.get();
                    let shown: Vec<DeploymentView> = all
                        .into_iter()
                        .filter(|d| f.matches(d.phase))
                        .filter(|d| q.is_empty() || d.name.contains(&q) || d.model.to_lowercase().contains(&q) || d.clusters.iter().any(|c| c.contains(&q)))
                        .collect();
                    Ok(if shown.is_empty() {
                        view! { <div class="card"><EmptyState title="Nothing matches" body="No deployment matches the search and filter."/></div> }.into_any()
                    } else {
                        view! { <DeploymentTable rows=shown/> }.into_any()
                    })
                })}
            </ErrorBoundary>
        </Transition>
        <DeploySheet open action=create/>
    }
}

#[component]
fn DeploymentTable(rows: Vec<DeploymentView>) -> impl IntoView {
    view! {
        <section class="card flush">
            <table class="table" data-testid="deployments">
                <thead><tr><th>"Name"</th><th>"Runtime"</th><th>"Clusters"</th><th>"Replicas"</th><th>"Status"</th><th>"Endpoint"</th><th>"Created"</th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|d| {
                        let href = format!("/deployments/{}", d.name);
                        view! {
                            <tr data-deployment=d.name.clone()>
                                <td>
                                    <a class="cell-main" href=href>{d.name.clone()}</a>
                                    <div class="cell-sub"><code>{d.model.clone()}</code></div>
                                </td>
                                <td>{d.runtime.preset().label}</td>
                                <td>{d.clusters.join(", ")}</td>
                                <td class="nowrap">{format!("{} / {}", d.ready_replicas, if d.stopped { 0 } else { d.replicas })}
                                    {(d.gpus_per_replica > 0).then(|| view! { <div class="cell-sub">{format!("{} GPU each", d.gpus_per_replica)}</div> })}
                                </td>
                                <td>
                                    <PhaseBadge phase=d.phase progress=d.progress/>
                                    {d.progress.map(|p| view! { <ProgressBar pct=p label="Model download"/> })}
                                    {(!d.message.is_empty()).then(|| view! { <div class="cell-sub clip" title=d.message.clone()>{d.message.clone()}</div> })}
                                </td>
                                <td>{d.endpoints.first().map(|e| view! { <code class="small">{e.clone()}</code> })}</td>
                                <td class="nowrap muted small">{format_utc(d.created_at)}<div class="cell-sub">{d.created_by.clone()}</div></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// The deploy form, in a sheet from the right: runtime, model (preset or free), where, how many,
/// advanced settings from the runtime's table, and the command line it will run.
#[component]
pub fn DeploySheet(open: RwSignal<bool>, action: ServerAction<CreateDeployment>) -> impl IntoView {
    let options = Resource::new(
        move || open.get(),
        |o| async move {
            if o {
                deploy_options().await.map(Some)
            } else {
                Ok(None)
            }
        },
    );
    let runtime = RwSignal::new(RuntimeKind::Ollama);
    let model = RwSignal::new("llama3.2:1b".to_string());
    let name = RwSignal::new(String::new());
    let name_touched = RwSignal::new(false);
    let replicas = RwSignal::new("1".to_string());
    let gpus = RwSignal::new("1".to_string());
    let clusters = RwSignal::new(Vec::<String>::new());
    let settings = RwSignal::new(BTreeMap::<String, String>::new());
    let extra = RwSignal::new(String::new());
    let image = RwSignal::new(String::new());
    let cache = RwSignal::new(true);
    let preload = RwSignal::new(false);
    let agent = RwSignal::new(false);
    let strategy = RwSignal::new(String::new());
    let profile = RwSignal::new(String::new());
    let failover = RwSignal::new(String::new());
    let policies = Resource::new(
        move || open.get(),
        |o| async move {
            if o {
                list_policies().await.map(Some)
            } else {
                Ok(None)
            }
        },
    );
    // The default strategy is chosen for the operator, visibly, when the form opens.
    Effect::new(move |_| {
        if let Some(Ok(Some(p))) = policies.get() {
            strategy.set(
                p.strategies.iter().find(|s| s.policy.is_default).map(|s| s.policy.name.clone()).unwrap_or_default(),
            );
            profile.set(String::new());
            failover.set(String::new());
        }
    });
    let local_error = RwSignal::new(None::<AppError>);
    let error = Signal::derive(move || local_error.get().or_else(|| action.value().get().and_then(|r| r.err())));
    let navigate = use_navigate();

    // The name follows the model until the operator edits it.
    Effect::new(move |_| {
        let m = model.get();
        if !name_touched.get_untracked() {
            name.set(if m.trim().is_empty() { String::new() } else { sanitize_name(m.trim()) });
        }
    });
    Effect::new(move |_| {
        if open.get() {
            action.value().set(None);
            local_error.set(None);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(d)) = action.value().get() {
            open.set(false);
            action.value().set(None);
            navigate(&format!("/deployments/{}", d.name), Default::default());
        }
    });

    let spec = move || DeploySpec {
        name: name.get().trim().to_string(),
        model: model.get().trim().to_string(),
        runtime: runtime.get(),
        image: image.get().trim().to_string(),
        replicas: replicas.get().trim().parse().unwrap_or(u32::MAX),
        gpus_per_replica: gpus.get().trim().parse().unwrap_or(u32::MAX),
        clusters: clusters.get(),
        settings: settings.get().into_iter().filter(|(_, v)| !v.trim().is_empty()).collect(),
        extra_args: DeploySpec::split_args(&extra.get()),
        cache: CacheSettings { enabled: cache.get(), preload: preload.get() && cache.get(), ..Default::default() },
        strategy: strategy.get(),
        profile: profile.get(),
        failover: failover.get(),
        agent: agent.get(),
    };
    let plan = Resource::new(
        move || open.get().then(spec),
        |s| async move {
            match s {
                Some(s) if !s.model.trim().is_empty() => preview_placement(s).await.map(Some),
                _ => Ok(None),
            }
        },
    );
    let preview = Signal::derive(move || {
        let s = spec();
        command_line(&DeploySpec { gpus_per_replica: s.gpus_per_replica.min(64), ..s }.container())
    });
    // After a refused submit, the form re-checks as it is edited, so fixed fields clear at once.
    Effect::new(move |_| {
        let s = spec();
        if local_error.get_untracked().is_some() {
            local_error.set(s.validate().err());
        }
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let s = spec();
        match s.validate() {
            Err(e) => local_error.set(Some(e)),
            Ok(()) => {
                local_error.set(None);
                action.dispatch(CreateDeployment { spec: s });
            }
        }
    };
    let field_error = move |f: &'static str| Signal::derive(move || error.get().and_then(|e| e.field_error(f)));
    let pick_runtime = move |r: RuntimeKind| {
        runtime.set(r);
        settings.set(BTreeMap::new());
        preload.set(false);
        if let Some(m) = crate::models::runtime::model_presets().into_iter().find(|m| m.runtime == r) {
            model.set(m.model);
            gpus.set(m.gpus.max(if r.preset().cpu_capable { 0 } else { 1 }).to_string());
        }
    };

    view! {
        <Dialog title="Deploy model" open class="sheet">
            <form class="form" on:submit=on_submit novalidate>
                <FormError error/>
                <div class="field">
                    <span class="label">"Runtime"</span>
                    <div class="segmented wrap" role="radiogroup" aria-label="Runtime">
                        {RuntimeKind::ALL.into_iter().map(|r| view! {
                            <button type="button" role="radio" data-runtime=r.as_str() aria-checked=move || (runtime.get() == r).to_string() on:click=move |_| pick_runtime(r)>{r.preset().label}</button>
                        }).collect_view()}
                    </div>
                </div>
                <div class="field" class:has-error=move || field_error("model").get().is_some()>
                    <label for="f-model">"Model"</label>
                    <input id="f-model" list="model-presets" autocomplete="off" spellcheck="false" bind:value=model/>
                    <datalist id="model-presets">
                        {move || options.get().and_then(|r| r.ok()).flatten().map(|o| o.models.into_iter().filter(|m| m.runtime == runtime.get()).map(|m| {
                            let label = format!("{} · {:.1} GB", m.label, m.size_gb);
                            view! { <option value=m.model.clone()>{label}</option> }
                        }).collect_view())}
                    </datalist>
                    <small class="hint">{move || runtime.get().preset().model_hint}</small>
                    <small class="field-error" role="alert">{move || field_error("model").get()}</small>
                </div>
                <div class="preset-chips" aria-label="Common models">
                    {move || options.get().and_then(|r| r.ok()).flatten().map(|o| o.models.into_iter().filter(|m| m.runtime == runtime.get()).map(|m| {
                        let value = m.model.clone();
                        let g = m.gpus;
                        let current = value.clone();
                        view! {
                            <button type="button" class="chip" aria-pressed=move || (model.get() == current).to_string() on:click=move |_| { model.set(value.clone()); gpus.set(g.max(if runtime.get_untracked().preset().cpu_capable { 0 } else { 1 }).to_string()); }>
                                {m.label.clone()}<span class="muted">{format!(" {:.1} GB", m.size_gb)}</span>
                            </button>
                        }
                    }).collect_view())}
                </div>
                <div class="form-row">
                    <div on:input=move |_| name_touched.set(true)>
                        <TextField name="name" label="Name" value=name error hint="Made from the model; unique in the hub."/>
                    </div>
                    <TextField name="replicas" label="Replicas" kind="number" value=replicas error/>
                    <TextField name="gpus_per_replica" label="GPUs per replica" kind="number" value=gpus error/>
                </div>
                <div class="form-row">
                    <div class="field" class:has-error=move || field_error("strategy").get().is_some()>
                        <label for="f-strategy">"Placement strategy"</label>
                        <select id="f-strategy" data-testid="strategy" on:change=move |ev| strategy.set(event_target_value(&ev))>
                            <option value="" selected=move || strategy.get().is_empty()>"Choose clusters myself"</option>
                            {move || policies.get().and_then(|r| r.ok()).flatten().map(|p| p.strategies.into_iter().map(|v| {
                                let n = v.policy.name.clone();
                                let label = if v.policy.is_default { format!("{n} (default)") } else { n.clone() };
                                view! { <option value=n.clone() selected=move || strategy.get() == n>{label}</option> }
                            }).collect_view())}
                        </select>
                        <small class="field-error" role="alert">{move || field_error("strategy").get()}</small>
                    </div>
                    <div class="field" class:has-error=move || field_error("profile").get().is_some()>
                        <label for="f-profile">"Resource profile"</label>
                        <select id="f-profile" data-testid="profile" on:change=move |ev| {
                            let v = event_target_value(&ev);
                            // A profile's GPU count is where the form starts from.
                            if let Some(Ok(Some(p))) = policies.get_untracked() {
                                if let Some(g) = p.profiles.iter().find(|x| x.policy.name == v).map(|x| x.policy.gpus) {
                                    gpus.set(g.max(if runtime.get_untracked().preset().cpu_capable { 0 } else { 1 }).to_string());
                                }
                            }
                            profile.set(v);
                        }>
                            <option value="" selected=move || profile.get().is_empty()>{move || {
                                let def = policies.get().and_then(|r| r.ok()).flatten().and_then(|p| p.strategies.into_iter().find(|s| s.policy.name == strategy.get()).map(|s| s.policy.default_profile)).unwrap_or_default();
                                if def.is_empty() { "None".to_string() } else { format!("Strategy default ({def})") }
                            }}</option>
                            {move || policies.get().and_then(|r| r.ok()).flatten().map(|p| p.profiles.into_iter().map(|v| {
                                let n = v.policy.name.clone();
                                view! { <option value=n.clone() selected=move || profile.get() == n>{format!("{} · {}", v.policy.name, v.policy.summary())}</option> }
                            }).collect_view())}
                        </select>
                        <small class="field-error" role="alert">{move || field_error("profile").get()}</small>
                    </div>
                    <div class="field" class:has-error=move || field_error("failover").get().is_some()>
                        <label for="f-failover">"Failover"</label>
                        <select id="f-failover" data-testid="failover" on:change=move |ev| failover.set(event_target_value(&ev))>
                            <option value="" selected=move || failover.get().is_empty()>"Hub default (300 s)"</option>
                            {move || policies.get().and_then(|r| r.ok()).flatten().map(|p| p.failovers.into_iter().map(|v| {
                                let n = v.policy.name.clone();
                                view! { <option value=n.clone() selected=move || failover.get() == n>{n.clone()}</option> }
                            }).collect_view())}
                        </select>
                        <small class="field-error" role="alert">{move || field_error("failover").get()}</small>
                    </div>
                </div>
                <fieldset class="field" class:has-error=move || field_error("clusters").get().is_some()>
                    <legend class="label">{move || if strategy.get().is_empty() { "Clusters" } else { "Limit to clusters (optional)" }}</legend>
                    <Suspense fallback=|| view! { <SkeletonRows rows=1/> }>
                        {move || options.get().map(|r| match r {
                            Ok(Some(o)) if !o.clusters.is_empty() => o.clusters.into_iter().map(|(c, label, g)| {
                                let id = c.clone();
                                let checked = c.clone();
                                view! {
                                    <label class="check cluster-pick">
                                        <input type="checkbox" value=c.clone() data-cluster=c.clone()
                                            prop:checked=move || clusters.get().contains(&checked)
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                clusters.update(|v| { v.retain(|x| x != &id); if on { v.push(id.clone()); } });
                                            }/>
                                        <span>{label}</span>
                                        <span class="muted small">{if g > 0 { format!("{g} GPUs") } else { "CPU only".to_string() }}</span>
                                    </label>
                                }
                            }).collect_view().into_any(),
                            Ok(_) => view! { <p class="muted">"No registered clusters yet. Register one under Clusters first."</p> }.into_any(),
                            Err(e) => view! { <p class="field-error">{e.message}</p> }.into_any(),
                        })}
                    </Suspense>
                    <small class="field-error" role="alert">{move || field_error("clusters").get()}</small>
                </fieldset>
                <div class="field">
                    <span class="label">"Where it would run"</span>
                    <div class="preview" data-testid="placement-preview" aria-live="polite">
                        <Transition fallback=|| view! { <SkeletonRows rows=2/> }>
                            {move || plan.get().map(|r| match r {
                                Ok(Some(p)) => view! {
                                    <div class="preview-summary" data-testid="preview-summary">{p.summary.clone()}</div>
                                    <small class="muted">{format!("Model ~{:.1} GB · {}", p.model_size_gb, p.replica_mode.label())}
                                        {(!p.profile.is_empty()).then(|| format!(" · profile {}", p.profile))}</small>
                                    <ul class="candidates">
                                        {p.candidates.into_iter().map(|c| view! {
                                            <li class=if c.eligible { "yes" } else { "no" } data-candidate=c.cluster.clone() data-replicas=c.replicas>
                                                <span class="mark" aria-hidden="true">{if c.eligible { "✓" } else { "✗" }}</span>
                                                <strong>{c.cluster.clone()}</strong>
                                                <span>{c.reasons.join("; ")}</span>
                                                <span class="nowrap">{(c.replicas > 0).then(|| format!("×{}", c.replicas))}</span>
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                }.into_any(),
                                Ok(None) => view! { <span class="muted">"Choose a model to see where it would go."</span> }.into_any(),
                                Err(e) => view! { <span class="field-error">{e.message}</span> }.into_any(),
                            })}
                        </Transition>
                    </div>
                </div>
                <details class="advanced">
                    <summary>{move || format!("Advanced settings for {}", runtime.get().preset().label)}</summary>
                    <div class="form-grid">
                        {move || runtime.get().preset().settings.iter().map(|d| {
                            let key = d.key;
                            let id = format!("f-settings-{key}");
                            let err_key = format!("settings.{key}");
                            let def = *d;
                            let msg = Signal::derive(move || {
                                let v = settings.get().get(key).cloned().unwrap_or_default();
                                if !v.trim().is_empty() {
                                    if let Err(e) = check_setting(&def, &v) { return Some(e); }
                                }
                                error.get().and_then(|e| e.field_error(&err_key))
                            });
                            let input = match d.kind {
                                SettingKind::Choice(opts) => view! {
                                    <select id=id.clone() on:change=move |ev| { let v = event_target_value(&ev); settings.update(|s| { s.insert(key.to_string(), v); }); }>
                                        <option value="">"Default"</option>
                                        {opts.iter().map(|o| view! { <option value=*o>{*o}</option> }).collect_view()}
                                    </select>
                                }.into_any(),
                                _ => view! {
                                    <input id=id.clone() placeholder="Default" inputmode=if matches!(d.kind, SettingKind::Int { .. }) { "numeric" } else { "text" }
                                        prop:value=move || settings.get().get(key).cloned().unwrap_or_default()
                                        on:input=move |ev| { let v = event_target_value(&ev); settings.update(|s| { s.insert(key.to_string(), v); }); }/>
                                }.into_any(),
                            };
                            view! {
                                <div class="field" class:has-error=move || msg.get().is_some()>
                                    <label for=id>{d.label}</label>
                                    {input}
                                    <small class="hint">{d.help}</small>
                                    <small class="field-error" role="alert">{move || msg.get()}</small>
                                </div>
                            }
                        }).collect_view()}
                    </div>
                    <div class="field" class:has-error=move || field_error("extra_args").get().is_some()>
                        <label for="f-extra_args">"Extra server arguments"</label>
                        <textarea id="f-extra_args" rows="2" spellcheck="false" placeholder="--enable-prefix-caching" bind:value=extra></textarea>
                        <small class="hint">"Passed as separate arguments, never through a shell. The port, host and model are set by H-MAS."</small>
                        <small class="field-error" role="alert">{move || field_error("extra_args").get()}</small>
                    </div>
                    <label class="check"><input type="checkbox" name="agent" bind:checked=agent/>" Run through the H-MAS agent (wrapper image: download progress, one health check, runtime metrics)"</label>
                    <TextField name="image" label="Image" value=image error hint="Empty: the runtime's official image, or H-MAS's wrapper image with the agent."/>
                    <label class="check"><input type="checkbox" bind:checked=cache/>" Keep the model in a cache volume per cluster (reused by later deployments)"</label>
                    <Show when=move || runtime.get().preset().preload.is_some()>
                        <label class="check"><input type="checkbox" bind:checked=preload disabled=move || !cache.get()/>" Pre-load the model into the cache before replicas start"</label>
                    </Show>
                    <small class="field-error" role="alert">{move || field_error("cache.preload").get()}</small>
                </details>
                <div class="field">
                    <span class="label">"Command"</span>
                    <pre class="code" data-testid="command-preview">{move || preview.get()}</pre>
                </div>
                <div class="form-actions">
                    <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                    <button class="button primary" type="submit" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Applying to the hub…" } else { "Deploy" }}
                    </button>
                </div>
            </form>
        </Dialog>
    }
}
