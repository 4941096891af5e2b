//! Member clusters: live cards, and registering a new one.
use crate::access::{access_for, allows};
use crate::api::clusters::{inspect_kubeconfig, list_clusters, RegisterCluster};
use crate::components::dialog::Dialog;
use crate::components::feedback::{error_fallback, EmptyState, SkeletonRows};
use crate::components::form::{FormError, SelectField, TextField};
use crate::components::gpu::{gpu_line, GpuBar};
use crate::components::layout::PageHeader;
use crate::components::poll::use_tick;
use crate::error::AppError;
use crate::models::cluster::{
    suggest_name, ClusterAccess, ClusterPhase, ClusterView, KubeconfigContext, ZoneClass, MAX_KUBECONFIG_BYTES,
};
use crate::pages::shell::CurrentUser;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

pub fn phase_class(p: ClusterPhase) -> &'static str {
    match p {
        ClusterPhase::Ready => "ok",
        ClusterPhase::Registering => "warn",
        ClusterPhase::NotReady | ClusterPhase::Failed => "danger",
    }
}

/// Whether the signed-in user may call `endpoint`: for showing only the actions they can take.
pub fn can(endpoint: &'static str) -> Signal<bool> {
    let user = expect_context::<CurrentUser>();
    Signal::derive(move || allows(access_for(endpoint), user.get().and_then(|r| r.ok()).flatten().map(|u| u.role)))
}

#[component]
pub fn ClustersPage() -> impl IntoView {
    let register = ServerAction::<RegisterCluster>::new();
    let tick = use_tick(Duration::from_secs(5));
    let clusters = Resource::new(move || (tick.get(), register.version().get()), |_| list_clusters());
    let open = RwSignal::new(false);
    let may_register = can("/api/clusters/register");

    view! {
        <Title text="Clusters"/>
        <PageHeader title="Clusters" subtitle="Member clusters in the hub: readiness, nodes and GPUs, live.">
            <Show when=move || may_register.get()>
                <button class="button primary" type="button" on:click=move |_| open.set(true)>"Register cluster"</button>
            </Show>
        </PageHeader>
        <Transition fallback=|| view! { <div class="card"><SkeletonRows rows=4/></div> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    let list = clusters.await?;
                    Ok::<_, AppError>(if list.is_empty() {
                        view! {
                            <div class="card">
                                <EmptyState
                                    title="No clusters registered yet"
                                    body="Register a Kubernetes cluster with its kubeconfig: H-MAS checks the access, sets up the hub's identity on it and joins it to the hub."
                                >
                                    <Show when=move || may_register.get()>
                                        <button class="button primary" type="button" on:click=move |_| open.set(true)>"Register cluster"</button>
                                    </Show>
                                </EmptyState>
                            </div>
                        }
                        .into_any()
                    } else {
                        view! {
                            <div class="grid" data-testid="cluster-cards">
                                {list.into_iter().map(|c| view! { <ClusterCard cluster=c/> }).collect_view()}
                            </div>
                        }
                        .into_any()
                    })
                })}
            </ErrorBoundary>
        </Transition>
        <RegisterDialog open action=register/>
    }
}

#[component]
fn ClusterCard(cluster: ClusterView) -> impl IntoView {
    let c = cluster;
    let href = format!("/clusters/{}", c.name);
    let zone = [c.region.clone(), c.zone.clone()].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" / ");
    view! {
        <a class="card cluster-card" href=href data-cluster=c.name.clone()>
            <div class="tile-head">
                <span class=format!("dot {}", phase_class(c.phase)) aria-hidden="true"></span>
                <h2>{c.display_name.clone()}</h2>
                <span class=format!("badge {}", phase_class(c.phase)) data-testid="phase">{c.phase.label()}</span>
            </div>
            <p class="muted small">
                <code>{c.name.clone()}</code>
                " · "{c.zone_class.label()}
                {(!zone.is_empty()).then(|| format!(" · {zone}"))}
            </p>
            <dl class="facts">
                <div><dt>"Kubernetes"</dt><dd>{if c.kubernetes_version.is_empty() { "—".to_string() } else { c.kubernetes_version.clone() }}</dd></div>
                <div><dt>"Nodes"</dt><dd>{format!("{} / {} ready", c.nodes_ready, c.nodes_total)}</dd></div>
                <div><dt>"Deployments"</dt><dd>{c.instances}</dd></div>
            </dl>
            {if c.gpus.is_empty() {
                view! { <p class="muted small">"No GPUs: CPU-only nodes"</p> }.into_any()
            } else {
                view! {
                    <ul class="gpu-list">
                        {c.gpus.iter().map(|g| view! { <li>{gpu_line(g)}</li> }).collect_view()}
                    </ul>
                    <GpuBar allocated=c.gpus_allocated allocatable=c.gpus_allocatable/>
                }
                .into_any()
            }}
            {(c.phase != ClusterPhase::Ready).then(|| view! { <p class="card-message">{c.message.clone()}</p> })}
        </a>
    }
}

fn zone_options() -> Vec<(String, String)> {
    [ZoneClass::A, ZoneClass::B].iter().map(|z| (z.as_str().to_string(), z.label().to_string())).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Kubeconfig,
    Endpoint,
}

#[component]
fn RegisterDialog(open: RwSignal<bool>, action: ServerAction<RegisterCluster>) -> impl IntoView {
    let display_name = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let name_touched = RwSignal::new(false);
    let zone_class = RwSignal::new("b".to_string());
    let region = RwSignal::new(String::new());
    let zone = RwSignal::new(String::new());
    let mode = RwSignal::new(Mode::Kubeconfig);
    let kubeconfig = RwSignal::new(String::new());
    let context = RwSignal::new(String::new());
    let contexts = RwSignal::new(Vec::<KubeconfigContext>::new());
    let server = RwSignal::new(String::new());
    let ca_pem = RwSignal::new(String::new());
    let token = RwSignal::new(String::new());
    let local_error = RwSignal::new(None::<AppError>);
    let error = Signal::derive(move || local_error.get().or_else(|| action.value().get().and_then(|r| r.err())));

    // The name follows the display name until the operator edits it.
    Effect::new(move |_| {
        let d = display_name.get();
        if !name_touched.get_untracked() {
            name.set(suggest_name(&d));
        }
    });
    // Read the contexts of a pasted or uploaded kubeconfig, so one can be chosen.
    let inspect = Action::new(|text: &String| {
        let text = text.clone();
        async move { inspect_kubeconfig(text).await }
    });
    Effect::new(move |_| {
        let text = kubeconfig.get();
        if !text.trim().is_empty() {
            inspect.dispatch(text);
        } else {
            contexts.set(vec![]);
        }
    });
    Effect::new(move |_| match inspect.value().get() {
        Some(Ok(list)) => {
            let current = list.iter().find(|c| c.current).or(list.first()).map(|c| c.name.clone()).unwrap_or_default();
            context.set(current);
            contexts.set(list);
            local_error.set(None);
        }
        Some(Err(e)) => {
            contexts.set(vec![]);
            local_error.set(Some(e));
        }
        None => {}
    });
    // A fresh form each time the dialog opens.
    Effect::new(move |_| {
        if open.get() {
            action.value().set(None);
            local_error.set(None);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = action.value().get() {
            open.set(false);
            for s in [display_name, name, region, zone, kubeconfig, server, ca_pem, token, context] {
                s.set(String::new());
            }
            name_touched.set(false);
            action.value().set(None);
        }
    });

    let on_file = move |ev: leptos::ev::Event| {
        use leptos::wasm_bindgen::closure::Closure;
        use leptos::wasm_bindgen::JsCast;
        let input: leptos::web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
        if file.size() > MAX_KUBECONFIG_BYTES as f64 {
            local_error.set(Some(AppError::field(
                "kubeconfig",
                format!("is larger than {} KiB", MAX_KUBECONFIG_BYTES / 1024),
            )));
            return;
        }
        let Ok(reader) = leptos::web_sys::FileReader::new() else { return };
        let r = reader.clone();
        let onload = Closure::once_into_js(move || {
            if let Some(text) = r.result().ok().and_then(|v| v.as_string()) {
                kubeconfig.set(text);
            }
        });
        reader.set_onload(Some(onload.unchecked_ref()));
        let _ = reader.read_as_text(&file);
    };

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let access = match mode.get_untracked() {
            Mode::Kubeconfig => ClusterAccess::Kubeconfig {
                kubeconfig: kubeconfig.get_untracked(),
                context: Some(context.get_untracked()).filter(|c| !c.is_empty()),
            },
            Mode::Endpoint => ClusterAccess::Endpoint {
                server: server.get_untracked().trim().to_string(),
                ca_pem: ca_pem.get_untracked(),
                token: token.get_untracked().trim().to_string(),
                client_cert_pem: String::new(),
                client_key_pem: String::new(),
            },
        };
        let input = crate::models::cluster::RegisterCluster {
            name: name.get_untracked().trim().to_string(),
            display_name: display_name.get_untracked().trim().to_string(),
            zone_class: ZoneClass::parse(&zone_class.get_untracked()).unwrap_or(ZoneClass::B),
            region: region.get_untracked().trim().to_string(),
            zone: zone.get_untracked().trim().to_string(),
            access,
        };
        match input.validate() {
            Err(e) => local_error.set(Some(e)),
            Ok(()) => {
                local_error.set(None);
                action.dispatch(RegisterCluster {
                    name: input.name,
                    display_name: input.display_name,
                    zone_class: input.zone_class,
                    region: input.region,
                    zone: input.zone,
                    access: input.access,
                });
            }
        }
    };
    let kube_error = Signal::derive(move || error.get().and_then(|e| e.field_error("kubeconfig")));

    view! {
        <Dialog title="Register cluster" open class="wide">
            <form class="form" on:submit=on_submit novalidate>
                <FormError error/>
                <div class="form-row">
                    <TextField name="display_name" label="Display name" value=display_name error autofocus=true/>
                    <div on:input=move |_| name_touched.set(true)>
                        <TextField name="name" label="Name in the hub" value=name error hint="Lowercase letters, digits and '-'."/>
                    </div>
                </div>
                <div class="form-row wide-first">
                    <SelectField name="zone_class" label="Zone class" value=zone_class options=zone_options() error/>
                    <TextField name="region" label="Region" value=region error hint="e.g. us-east"/>
                    <TextField name="zone" label="Zone" value=zone error hint="e.g. us-east-1a"/>
                </div>
                <div class="tabs" role="tablist">
                    <button type="button" role="tab" class="tab" aria-selected=move || (mode.get() == Mode::Kubeconfig).to_string() on:click=move |_| mode.set(Mode::Kubeconfig)>"Kubeconfig"</button>
                    <button type="button" role="tab" class="tab" aria-selected=move || (mode.get() == Mode::Endpoint).to_string() on:click=move |_| mode.set(Mode::Endpoint)>"Endpoint and token"</button>
                </div>
                <Show
                    when=move || mode.get() == Mode::Kubeconfig
                    fallback=move || view! {
                        <TextField name="server" label="API server" value=server error hint="https://host:6443"/>
                        <div class="field">
                            <label for="f-ca_pem">"CA certificate (PEM, optional)"</label>
                            <textarea id="f-ca_pem" rows="4" bind:value=ca_pem></textarea>
                        </div>
                        <TextField name="token" label="Bearer token" kind="password" value=token error/>
                    }
                >
                    <div class="field" class:has-error=move || kube_error.get().is_some()>
                        <label for="f-kubeconfig">"Kubeconfig"</label>
                        <textarea id="f-kubeconfig" rows="7" spellcheck="false" placeholder="Paste the kubeconfig here, or choose the file below." bind:value=kubeconfig></textarea>
                        <input id="f-kubeconfig-file" type="file" aria-label="Kubeconfig file" on:change=on_file/>
                        <small class="hint">"Credentials must be inline (kubectl config view --raw --flatten). They are stored encrypted and never shown again."</small>
                        <small class="field-error" id="f-kubeconfig-error" role="alert">{move || kube_error.get()}</small>
                    </div>
                    <Show when=move || { contexts.get().len() > 1 }>
                        <div class="field">
                            <label for="f-context">"Context"</label>
                            <select id="f-context" bind:value=context>
                                {move || contexts.get().into_iter().map(|c| {
                                    let label = format!("{} — {} ({})", c.name, c.server, c.auth);
                                    view! { <option value=c.name.clone() selected=c.current>{label}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                    </Show>
                </Show>
                <div class="form-actions">
                    <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                    <button class="button primary" type="submit" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Checking access and registering…" } else { "Register" }}
                    </button>
                </div>
            </form>
        </Dialog>
    }
}
