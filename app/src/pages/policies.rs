//! Policies: placement strategies, resource profiles and failover policies in three tabs, each
//! created and edited in a sheet that checks as you type, with the hub's sync status per policy.
use crate::api::policies::{
    list_policies, CreateDefaultPolicies, DeletePolicy, SaveFailover, SaveProfile, SaveStrategy,
};
use crate::components::dialog::Dialog;
use crate::components::feedback::{error_fallback, EmptyState, ErrorBanner, SkeletonRows};
use crate::components::form::FormError;
use crate::components::layout::PageHeader;
use crate::components::poll::use_tick;
use crate::components::time::format_utc;
use crate::components::timeline::FailoverTimeline;
use crate::error::AppError;
use crate::models::cluster::ZoneClass;
use crate::models::policy::{
    gpu_products, labels_text, parse_labels, seconds_label, ClusterFacts, ConflictResolution, FailoverPolicy,
    PlacementMode, PlacementRule, PlacementStrategy, Policies, PolicyKind, PolicyView, PurgeMode, QosClass,
    ReplicaMode, ResourceProfile, RuleField, RuleOp, Scheduler, Severity, SyncState, SyncStatus, TargetKind,
    MIG_PROFILES,
};
use crate::models::runtime::RuntimeKind;
use crate::pages::clusters::can;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// A confirmation asked before a consequential save.
#[derive(Clone)]
struct Confirm {
    title: String,
    body: String,
    go: Callback<()>,
}

#[component]
pub fn PoliciesPage() -> impl IntoView {
    let tick = use_tick(Duration::from_secs(5));
    let refresh = RwSignal::new(0u32);
    let defaults = ServerAction::<CreateDefaultPolicies>::new();
    let delete = ServerAction::<DeletePolicy>::new();
    let data = Resource::new(
        move || (refresh.get(), tick.get(), defaults.version().get(), delete.version().get()),
        |_| list_policies(),
    );
    let admin = can("/api/policies/defaults");
    let tab = RwSignal::new(PolicyKind::Strategy);

    let strategy_open = RwSignal::new(false);
    let strategy_draft = RwSignal::new(PlacementStrategy::default());
    let profile_open = RwSignal::new(false);
    let profile_draft = RwSignal::new(ResourceProfile::default());
    let failover_open = RwSignal::new(false);
    let failover_draft = RwSignal::new(FailoverPolicy::default());
    let creating = RwSignal::new(true);
    let delete_target = RwSignal::new(None::<(PolicyKind, String, Vec<String>)>);
    let confirm = RwSignal::new(None::<Confirm>);
    let saved = Callback::new(move |_| refresh.update(|n| *n += 1));
    let latest = RwSignal::new(None::<Policies>);
    Effect::new(move |_| {
        if let Some(Ok(p)) = data.get() {
            latest.set(Some(p));
        }
    });
    let new_policy = move |_| {
        creating.set(true);
        match tab.get_untracked() {
            PolicyKind::Strategy => {
                strategy_draft.set(PlacementStrategy::default());
                strategy_open.set(true);
            }
            PolicyKind::Profile => {
                profile_draft.set(ResourceProfile::default());
                profile_open.set(true);
            }
            PolicyKind::Failover => {
                failover_draft.set(FailoverPolicy::default());
                failover_open.set(true);
            }
        }
    };
    let edit = Callback::new(move |(kind, name): (PolicyKind, String)| {
        let Some(p) = latest.get_untracked() else { return };
        creating.set(false);
        match kind {
            PolicyKind::Strategy => {
                if let Some(v) = p.strategies.iter().find(|v| v.policy.name == name) {
                    strategy_draft.set(v.policy.clone());
                    strategy_open.set(true);
                }
            }
            PolicyKind::Profile => {
                if let Some(v) = p.profiles.iter().find(|v| v.policy.name == name) {
                    profile_draft.set(v.policy.clone());
                    profile_open.set(true);
                }
            }
            PolicyKind::Failover => {
                if let Some(v) = p.failovers.iter().find(|v| v.policy.name == name) {
                    failover_draft.set(v.policy.clone());
                    failover_open.set(true);
                }
            }
        }
    });
    let ask_delete = Callback::new(move |t: (PolicyKind, String, Vec<String>)| delete_target.set(Some(t)));
    let count = move |t: PolicyKind| {
        latest.with(|l| {
            l.as_ref().map(|p| match t {
                PolicyKind::Strategy => p.strategies.len(),
                PolicyKind::Profile => p.profiles.len(),
                PolicyKind::Failover => p.failovers.len(),
            })
        })
    };
    let tab_button = move |t: PolicyKind, label: &'static str, id: &'static str| {
        view! {
            <button class="tab" type="button" role="tab" id=format!("tab-{id}") aria-controls="policy-panel"
                aria-selected=move || (tab.get() == t).to_string() on:click=move |_| tab.set(t)>
                {label}
                <span class="count">{move || count(t).map(|n| format!(" {n}"))}</span>
            </button>
        }
    };

    view! {
        <Title text="Policies"/>
        <PageHeader title="Policies" subtitle="Where models run, the shape of their pods, and what happens when a cluster fails. The hub follows what is saved here.">
            <Show when=move || admin.get()>
                <button class="button" type="button" data-testid="create-defaults"
                    disabled=move || defaults.pending().get()
                    on:click=move |_| { defaults.dispatch(CreateDefaultPolicies {}); }>
                    {move || if defaults.pending().get() { "Creating…" } else { "Create default set" }}
                </button>
                <button class="button primary" type="button" on:click=new_policy>
                    {move || match tab.get() {
                        PolicyKind::Strategy => "New strategy",
                        PolicyKind::Profile => "New profile",
                        PolicyKind::Failover => "New failover policy",
                    }}
                </button>
            </Show>
        </PageHeader>
        {move || defaults.value().get().and_then(|r| r.ok()).map(|made| {
            let text = if made.is_empty() { "The default set exists already.".to_string() } else { format!("Created {}.", made.join(", ")) };
            view! { <div class="banner banner-ok" role="status">{text}</div> }
        })}
        {move || defaults.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBanner error=e/> })}
        <div class="tabs" role="tablist" aria-label="Policy kinds"
            on:keydown=move |ev| {
                let order = PolicyKind::ALL;
                let i = order.iter().position(|t| *t == tab.get_untracked()).unwrap_or(0);
                match ev.key().as_str() {
                    "ArrowRight" => tab.set(order[(i + 1) % 3]),
                    "ArrowLeft" => tab.set(order[(i + 2) % 3]),
                    _ => {}
                }
            }>
            {tab_button(PolicyKind::Strategy, "Placement strategies", "strategies")}
            {tab_button(PolicyKind::Profile, "Resource profiles", "profiles")}
            {tab_button(PolicyKind::Failover, "Failover", "failover")}
        </div>
        <div id="policy-panel" role="tabpanel" class="tab-panel">
            <Transition fallback=|| view! { <div class="card"><SkeletonRows rows=3/></div> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        let p = data.await?;
                        let is_admin = admin.get_untracked();
                        let empty = p.strategies.is_empty() && p.profiles.is_empty() && p.failovers.is_empty();
                        let body = match tab.get() {
                            _ if empty => view! {
                                <div class="card">
                                    <EmptyState title="No policies yet"
                                        body="Start from the default set — three placement strategies, three resource profiles and one failover policy — and adjust them, or create your own.">
                                        <Show when=move || is_admin>
                                            <button class="button primary" type="button" on:click=move |_| { defaults.dispatch(CreateDefaultPolicies {}); }>"Create default set"</button>
                                        </Show>
                                    </EmptyState>
                                </div>
                            }.into_any(),
                            PolicyKind::Strategy => list_or_empty(p.strategies.is_empty(), "No placement strategies", "A strategy chooses clusters for a deployment: by name, by label, or by rules on the model.",
                                p.strategies.into_iter().map(|v| view! { <StrategyCard v admin=is_admin edit ask_delete/> }).collect_view().into_any()),
                            PolicyKind::Profile => list_or_empty(p.profiles.is_empty(), "No resource profiles", "A profile gives a deployment's pods their resources and scheduler settings.",
                                p.profiles.into_iter().map(|v| view! { <ProfileCard v admin=is_admin edit ask_delete/> }).collect_view().into_any()),
                            PolicyKind::Failover => list_or_empty(p.failovers.is_empty(), "No failover policies", "Without one, a workload on a failed cluster moves after the hub's default of 300 s.",
                                p.failovers.into_iter().map(|v| view! { <FailoverCard v admin=is_admin edit ask_delete/> }).collect_view().into_any()),
                        };
                        Ok::<_, AppError>(body)
                    })}
                </ErrorBoundary>
            </Transition>
        </div>
        <StrategySheet open=strategy_open draft=strategy_draft creating latest confirm saved/>
        <ProfileSheet open=profile_open draft=profile_draft creating latest saved/>
        <FailoverSheet open=failover_open draft=failover_draft creating latest confirm saved/>
        <DeleteDialog target=delete_target action=delete/>
        <ConfirmDialog confirm/>
    }
}

fn list_or_empty(empty: bool, title: &'static str, body: &'static str, cards: AnyView) -> AnyView {
    if empty {
        view! { <div class="card"><EmptyState title body/></div> }.into_any()
    } else {
        view! { <div class="grid policy-grid">{cards}</div> }.into_any()
    }
}

#[component]
fn SyncBadge(sync: SyncStatus) -> impl IntoView {
    let (tone, text) = match sync.state {
        SyncState::InSync => ("ok", "In sync"),
        SyncState::Error => ("danger", "Sync error"),
        SyncState::Pending => ("muted", "Pending"),
    };
    let title =
        if sync.at > 0 { format!("{} · checked {}", sync.message, format_utc(sync.at)) } else { sync.message.clone() };
    view! { <span class=format!("badge {tone}") title=title data-testid="sync" data-state=sync.state.as_str()>{text}</span> }
}

/// Header, sync and the footer every policy card shares.
#[component]
fn PolicyCard(
    kind: PolicyKind,
    name: String,
    sync: SyncStatus,
    used_by: Vec<String>,
    #[prop(into)] badges: ViewFn,
    admin: bool,
    edit: Callback<(PolicyKind, String)>,
    ask_delete: Callback<(PolicyKind, String, Vec<String>)>,
    children: Children,
) -> impl IntoView {
    let error = (sync.state == SyncState::Error).then(|| sync.message.clone());
    let users = used_by.len();
    let (n1, n2) = (name.clone(), name.clone());
    view! {
        <article class="card policy-card" data-policy=name.clone()>
            <header class="policy-head">
                <h3>{name.clone()}</h3>
                <div class="badges">{badges.run()}<SyncBadge sync/></div>
            </header>
            {error.map(|e| view! { <p class="field-error small">{e}</p> })}
            {children()}
            <footer class="policy-foot">
                <span class="muted small" title=used_by.join(", ")>
                    {if users == 0 { "Not in use".to_string() } else { format!("Used by {users}") }}
                </span>
                {admin.then(|| view! {
                    <div class="row-actions">
                        <button class="button small" type="button" on:click=move |_| edit.run((kind, n1.clone()))>"Edit"</button>
                        <button class="button small danger-text" type="button" on:click=move |_| ask_delete.run((kind, n2.clone(), used_by.clone()))>"Delete"</button>
                    </div>
                })}
            </footer>
        </article>
    }
}

fn target_text(s: &PlacementStrategy) -> String {
    match s.target {
        TargetKind::All => "All registered clusters".into(),
        TargetKind::Labels => format!("Clusters labelled {}", labels_text(&s.labels)),
        TargetKind::Names => s.clusters.join(", "),
    }
}

#[component]
fn StrategyCard(
    v: PolicyView<PlacementStrategy>,
    admin: bool,
    edit: Callback<(PolicyKind, String)>,
    ask_delete: Callback<(PolicyKind, String, Vec<String>)>,
) -> impl IntoView {
    let s = v.policy;
    let is_default = s.is_default;
    let mode = s.mode;
    let spread = match (s.min_clusters, s.max_clusters) {
        (0, 0) => "No limit".to_string(),
        (min, 0) => format!("At least {min} clusters"),
        (0, max) => format!("At most {max} clusters"),
        (min, max) => format!("{min}–{max} clusters"),
    };
    view! {
        <PolicyCard kind=PolicyKind::Strategy name=s.name.clone() sync=v.sync used_by=v.used_by admin edit ask_delete
            badges=move || view! {
                {is_default.then(|| view! { <span class="badge info">"Default"</span> })}
                <span class="badge muted">{if mode == PlacementMode::Auto { "Auto" } else { "Manual" }}</span>
            }>
            {(!s.description.is_empty()).then(|| view! { <p class="muted small">{s.description.clone()}</p> })}
            <dl class="kv">
                <dt>"Targets"</dt><dd>{target_text(&s)}</dd>
                {(s.mode == PlacementMode::Auto).then(|| view! {
                    <dt>"Rules"</dt>
                    <dd>{if s.rules.is_empty() { view! { <span class="muted">"None: any target cluster"</span> }.into_any() } else {
                        view! { <ol class="rules">{s.rules.iter().map(|r| view! { <li>{r.describe()}</li> }).collect_view()}</ol> }.into_any()
                    }}</dd>
                })}
                <dt>"Profile"</dt><dd>{if s.default_profile.is_empty() { "—".to_string() } else { s.default_profile.clone() }}</dd>
                <dt>"Replicas"</dt><dd>{s.replica_mode.label()}</dd>
                <dt>"Spread"</dt><dd>{spread}</dd>
                <dt>"On conflict"</dt><dd>{s.conflict.as_str()}{s.preserve_resources.then_some(" · keeps resources on deletion")}</dd>
            </dl>
        </PolicyCard>
    }
}

#[component]
fn ProfileCard(
    v: PolicyView<ResourceProfile>,
    admin: bool,
    edit: Callback<(PolicyKind, String)>,
    ask_delete: Callback<(PolicyKind, String, Vec<String>)>,
) -> impl IntoView {
    let p = v.policy;
    let zone = p.zone;
    let mut flags: Vec<String> = Vec::new();
    if zone == ZoneClass::A {
        if p.numa_aligned {
            flags.push("NUMA aligned".into());
        }
        if p.nvlink {
            flags.push("NVLink".into());
        }
        if !p.mig_profile.is_empty() {
            flags.push(format!("MIG {}", p.mig_profile));
        }
    } else {
        if p.qos != QosClass::None {
            flags.push(format!("QoS {}", p.qos.as_str()));
        }
        if p.gpu_sharing {
            flags.push("GPU sharing".into());
        }
        if p.gang {
            flags.push("Gang".into());
        }
        if p.overcommit {
            flags.push("Overcommit".into());
        }
    }
    let remarks = p.remarks();
    view! {
        <PolicyCard kind=PolicyKind::Profile name=p.name.clone() sync=v.sync used_by=v.used_by admin edit ask_delete
            badges=move || view! { <span class=format!("badge zone-{}", zone.as_str())>{format!("Zone {}", zone.as_str().to_uppercase())}</span> }>
            {(!p.description.is_empty()).then(|| view! { <p class="muted small">{p.description.clone()}</p> })}
            <p class="profile-summary">{p.summary()}</p>
            <dl class="kv">
                <dt>"Scheduler"</dt><dd>{p.scheduler.label()}</dd>
            </dl>
            <div class="flags">{flags.into_iter().map(|f| view! { <span class="chip static">{f}</span> }).collect_view()}</div>
            {remarks.into_iter().filter(|r| r.severity != Severity::Error).map(|r| view! { <p class=format!("remark {}", severity_class(r.severity))>{r.message}</p> }).collect_view()}
        </PolicyCard>
    }
}

#[component]
fn FailoverCard(
    v: PolicyView<FailoverPolicy>,
    admin: bool,
    edit: Callback<(PolicyKind, String)>,
    ask_delete: Callback<(PolicyKind, String, Vec<String>)>,
) -> impl IntoView {
    let f = v.policy;
    let enabled = f.enabled;
    let policy = Signal::stored(f.clone());
    view! {
        <PolicyCard kind=PolicyKind::Failover name=f.name.clone() sync=v.sync used_by=v.used_by admin edit ask_delete
            badges=move || view! { <span class=if enabled { "badge ok" } else { "badge muted" }>{if enabled { "Enabled" } else { "Disabled" }}</span> }>
            {(!f.description.is_empty()).then(|| view! { <p class="muted small">{f.description.clone()}</p> })}
            <dl class="kv">
                <dt>"Toleration"</dt><dd>{seconds_label(f.toleration_seconds)}</dd>
                <dt>"Purge"</dt><dd>{f.purge_mode.as_str()}</dd>
                {(f.purge_mode == PurgeMode::Gracefully).then(|| view! { <dt>"Grace period"</dt><dd>{seconds_label(f.grace_period_seconds)}</dd> })}
                <dt>"Unhealthy replicas"</dt><dd>{if f.application { "moved after the model's start" } else { "left in place" }}</dd>
            </dl>
            <FailoverTimeline policy mini=true/>
        </PolicyCard>
    }
}

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// The message for `field` in `error`.
fn msg(error: Signal<Option<AppError>>, field: &'static str) -> Signal<Option<String>> {
    Signal::derive(move || error.get().and_then(|e| e.field_error(field)))
}

/// A labelled control with its error line.
#[component]
fn Field(
    #[prop(into)] label: String,
    #[prop(into)] id: String,
    message: Signal<Option<String>>,
    #[prop(into, optional)] hint: MaybeProp<String>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="field" class:has-error=move || message.get().is_some()>
            <label for=id>{label}</label>
            {children()}
            {move || hint.get().filter(|h| !h.is_empty()).map(|h| view! { <small class="hint">{h}</small> })}
            <small class="field-error" role="alert">{move || message.get()}</small>
        </div>
    }
}

fn parse_u32(v: &str) -> u32 {
    v.trim().parse().unwrap_or(u32::MAX)
}

/// The error the form shows: the server's answer, else what the rules say once something was typed.
fn live_error<T>(
    current: impl Fn() -> T + Send + Sync + 'static,
    touched: RwSignal<bool>,
    server: Signal<Option<AppError>>,
    check: impl Fn(&T) -> Result<(), AppError> + Send + Sync + 'static,
) -> Signal<Option<AppError>> {
    Signal::derive(move || {
        let local = if touched.get() { check(&current()).err() } else { None };
        local.or_else(|| server.get())
    })
}

/// A new policy needs a name its kind does not have yet (the server refuses it too).
fn free_name(
    latest: RwSignal<Option<Policies>>,
    creating: RwSignal<bool>,
    kind: PolicyKind,
    name: &str,
) -> Result<(), AppError> {
    if creating.get() && latest.with(|l| l.as_ref().is_some_and(|p| p.has(kind, name))) {
        return Err(AppError::field("name", format!("a {} with this name exists", kind.label())));
    }
    Ok(())
}

/// Name (fixed once created) and description, first on every sheet.
#[component]
fn NameFields(
    prefix: &'static str,
    /// The values the sheet opened with.
    name: String,
    description: String,
    error: Signal<Option<AppError>>,
    creating: RwSignal<bool>,
    set_name: Callback<String>,
    set_description: Callback<String>,
) -> impl IntoView {
    let (name_id, desc_id) = (format!("{prefix}-name"), format!("{prefix}-desc"));
    view! {
        <Field label="Name" id=name_id.clone() message=msg(error, "name") hint="Lowercase letters, digits and '-'; cannot be changed later.">
            <input id=name_id autofocus disabled=move || !creating.get() prop:value=name
                on:input=move |ev| set_name.run(event_target_value(&ev))/>
        </Field>
        <Field label="Description" id=desc_id.clone() message=msg(error, "description")>
            <input id=desc_id prop:value=description
                on:input=move |ev| set_description.run(event_target_value(&ev))/>
        </Field>
    }
}

/// Cancel and Save at the foot of a sheet.
#[component]
fn SheetActions(open: RwSignal<bool>, #[prop(into)] pending: Signal<bool>) -> impl IntoView {
    view! {
        <div class="form-actions">
            <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
            <button class="button primary" type="submit" disabled=move || pending.get()>
                {move || if pending.get() { "Saving…" } else { "Save" }}
            </button>
        </div>
    }
}

/// A sheet starts clean each time it opens.
fn reset_when_opened(
    open: RwSignal<bool>,
    touched: RwSignal<bool>,
    result: MappedSignal<Option<Result<(), AppError>>>,
) {
    Effect::new(move |_| {
        if open.get() {
            touched.set(false);
            result.set(None);
        }
    });
}

/// A sheet closes once its save went through, and the list reloads.
fn close_when_saved(open: RwSignal<bool>, result: MappedSignal<Option<Result<(), AppError>>>, saved: Callback<()>) {
    Effect::new(move |_| {
        if let Some(Ok(())) = result.get() {
            open.set(false);
            result.set(None);
            saved.run(());
        }
    });
}

#[component]
fn StrategySheet(
    open: RwSignal<bool>,
    draft: RwSignal<PlacementStrategy>,
    creating: RwSignal<bool>,
    latest: RwSignal<Option<Policies>>,
    confirm: RwSignal<Option<Confirm>>,
    saved: Callback<()>,
) -> impl IntoView {
    let action = ServerAction::<SaveStrategy>::new();
    let touched = RwSignal::new(false);
    // Row signals belong to the sheet, not to the click that added them.
    let owner = StoredValue::new(Owner::current().expect("a reactive owner"));
    let next_id = StoredValue::new(0usize);
    let rules = RwSignal::new(Vec::<(usize, RwSignal<PlacementRule>)>::new());
    let add_rule = move |r: PlacementRule| {
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        let sig = owner.with_value(|o| o.with(|| RwSignal::new(r)));
        rules.update(|v| v.push((id, sig)));
    };
    let original_default = RwSignal::new(false);
    Effect::new(move |_| {
        if open.get() {
            touched.set(false);
            action.value().set(None);
            rules.set(vec![]);
            original_default.set(draft.get_untracked().is_default);
            for r in draft.get_untracked().rules {
                add_rule(r);
            }
        }
    });
    let current = move || {
        let mut s = draft.get();
        s.rules = rules.get().iter().map(|(_, r)| r.get()).collect();
        s
    };
    let server = Signal::derive(move || action.value().get().and_then(|r| r.err()));
    let error = live_error(current, touched, server, move |s: &PlacementStrategy| {
        s.validate()?;
        free_name(latest, creating, PolicyKind::Strategy, &s.name)
    });
    close_when_saved(open, action.value(), saved);
    let submit = move || {
        let s = current();
        let create = creating.get_untracked();
        action.dispatch(SaveStrategy { strategy: s, create });
    };
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        if error.get_untracked().is_some() {
            return;
        }
        let s = current();
        let other_default = latest.with_untracked(|l| {
            l.as_ref().and_then(|p| {
                p.strategies
                    .iter()
                    .find(|x| x.policy.is_default && x.policy.name != s.name)
                    .map(|x| x.policy.name.clone())
            })
        });
        if s.is_default && !original_default.get_untracked() {
            let body = match other_default {
                Some(o) => format!("New deployments that name no strategy will use {} instead of {o}. Existing deployments keep theirs.", s.name),
                None => format!("New deployments that name no strategy will use {}.", s.name),
            };
            confirm.set(Some(Confirm {
                title: "Change the default strategy?".into(),
                body,
                go: Callback::new(move |_| submit()),
            }));
        } else if !s.is_default && original_default.get_untracked() {
            confirm.set(Some(Confirm {
                title: "Remove the default strategy?".into(),
                body: "With no default, every new deployment must choose a strategy or its clusters.".into(),
                go: Callback::new(move |_| submit()),
            }));
        } else {
            submit();
        }
    };
    let clusters = move || latest.with(|l| l.as_ref().map(|p| p.clusters.clone()).unwrap_or_default());
    let profiles = move || {
        latest.with(|l| {
            l.as_ref().map(|p| p.profiles.iter().map(|v| v.policy.name.clone()).collect::<Vec<_>>()).unwrap_or_default()
        })
    };
    let set = move |f: &dyn Fn(&mut PlacementStrategy)| {
        touched.set(true);
        draft.update(|d| f(d));
    };

    view! {
        <Dialog title=Signal::derive(move || if creating.get() { "New placement strategy".to_string() } else { format!("Edit strategy {}", draft.with_untracked(|d| d.name.clone())) }) open class="sheet">
            <form class="form" on:submit=on_submit novalidate on:input=move |_| touched.set(true) data-testid="strategy-form">
                <FormError error/>
                <NameFields prefix="s" name=draft.get_untracked().name description=draft.get_untracked().description error creating set_name=Callback::new(move |v: String| set(&|d| d.name = v.trim().to_string()))
                    set_description=Callback::new(move |v: String| set(&|d| d.description = v.clone()))/>
                <div class="field">
                    <span class="label">"Placement mode"</span>
                    <div class="segmented" role="radiogroup" aria-label="Placement mode">
                        {[(PlacementMode::Auto, "Auto · rules choose"), (PlacementMode::Manual, "Manual · targets as given")].into_iter().map(|(m, l)| view! {
                            <button type="button" role="radio" aria-checked=move || (draft.with(|d| d.mode) == m).to_string()
                                on:click=move |_| set(&|d| { d.mode = m; })>{l}</button>
                        }).collect_view()}
                    </div>
                </div>
                <div class="field">
                    <span class="label">"Target clusters"</span>
                    <div class="segmented" role="radiogroup" aria-label="Target clusters">
                        {[(TargetKind::All, "All"), (TargetKind::Labels, "By labels"), (TargetKind::Names, "By name")].into_iter().map(|(t, l)| view! {
                            <button type="button" role="radio" aria-checked=move || (draft.with(|d| d.target) == t).to_string()
                                on:click=move |_| set(&|d| d.target = t)>{l}</button>
                        }).collect_view()}
                    </div>
                </div>
                <Show when=move || draft.with(|d| d.target == TargetKind::Labels)>
                    <Field label="Labels" id="s-labels" message=msg(error, "labels") hint="key=value, comma separated; every label must match. Clusters carry hmas.io/zone-class, topology.kubernetes.io/region and /zone.">
                        <input id="s-labels" spellcheck="false" prop:value=labels_text(&draft.get_untracked().labels)
                            on:input=move |ev| { let v = event_target_value(&ev); set(&|d| d.labels = parse_labels(&v).unwrap_or_else(|e| [(e, "?".to_string())].into())); }/>
                    </Field>
                </Show>
                <Show when=move || draft.with(|d| d.target == TargetKind::Names)>
                    <fieldset class="field" class:has-error=move || msg(error, "clusters").get().is_some()>
                        <legend class="label">"Clusters"</legend>
                        {move || clusters().into_iter().map(|c| {
                            let (n1, n2) = (c.name.clone(), c.name.clone());
                            view! {
                                <label class="check cluster-pick">
                                    <input type="checkbox" data-cluster=c.name.clone() prop:checked=move || draft.with(|d| d.clusters.contains(&n1))
                                        on:change=move |ev| { let on = event_target_checked(&ev); let n = n2.clone(); set(&|d| { d.clusters.retain(|x| x != &n); if on { d.clusters.push(n.clone()); } }); }/>
                                    <span>{c.name.clone()}</span>
                                    <span class="muted small">{format!("Zone {}", c.zone.as_str().to_uppercase())}</span>
                                </label>
                            }
                        }).collect_view()}
                        <small class="field-error" role="alert">{move || msg(error, "clusters").get()}</small>
                    </fieldset>
                </Show>
                <Show when=move || draft.with(|d| d.mode == PlacementMode::Auto)>
                    <fieldset class="field rule-editor" data-testid="rule-editor">
                        <legend class="label">"Auto-placement rules"</legend>
                        <p class="hint">"The first rule that holds chooses; with none, any target cluster. Model size comes from the model, GPU type from the resource profile."</p>
                        <For each=move || rules.get() key=|(id, _)| *id let:row>
                            <RuleRow index=Signal::derive(move || rules.with(|v| v.iter().position(|(i, _)| *i == row.0).unwrap_or(0))) rule=row.1 error
                                remove=Callback::new(move |_| { touched.set(true); rules.update(|v| v.retain(|(i, _)| *i != row.0)); })
                                clusters=Signal::derive(clusters) touched/>
                        </For>
                        <small class="field-error" role="alert">{move || msg(error, "rules").get()}</small>
                        <button class="button small" type="button" data-testid="add-rule" on:click=move |_| {
                            touched.set(true);
                            add_rule(PlacementRule { field: RuleField::ModelSize, op: RuleOp::Ge, value: "30".into(), zone: Some(ZoneClass::A), clusters: vec![] });
                        }>"+ Add rule"</button>
                    </fieldset>
                </Show>
                <div class="form-row">
                    <Field label="Default resource profile" id="s-profile" message=msg(error, "default_profile")>
                        <select id="s-profile" on:change=move |ev| { let v = event_target_value(&ev); set(&|d| d.default_profile = v.clone()); }>
                            <option value="" selected=draft.get_untracked().default_profile.is_empty()>"None"</option>
                            {move || profiles().into_iter().map(|p| view! { <option value=p.clone() selected=draft.get_untracked().default_profile == p>{p.clone()}</option> }).collect_view()}
                        </select>
                    </Field>
                    <Field label="Replicas" id="s-replicas" message=msg(error, "replica_mode")>
                        <select id="s-replicas" on:change=move |ev| { let v = event_target_value(&ev); set(&|d| d.replica_mode = ReplicaMode::parse(&v).unwrap_or_default()); }>
                            {ReplicaMode::ALL.into_iter().map(|m| view! { <option value=m.as_str() selected=draft.get_untracked().replica_mode == m>{m.label()}</option> }).collect_view()}
                        </select>
                    </Field>
                </div>
                <details class="advanced">
                    <summary>"Advanced"</summary>
                    <label class="check"><input type="checkbox" data-testid="is-default" prop:checked=move || draft.with(|d| d.is_default)
                        on:change=move |ev| { let on = event_target_checked(&ev); set(&|d| d.is_default = on); }/>" Default strategy for new deployments"</label>
                    <label class="check"><input type="checkbox" prop:checked=draft.get_untracked().preserve_resources
                        on:change=move |ev| { let on = event_target_checked(&ev); set(&|d| d.preserve_resources = on); }/>" Keep what was propagated to members when a deployment is deleted"</label>
                    <Field label="When a member already has the resource" id="s-conflict" message=msg(error, "conflict")>
                        <select id="s-conflict" on:change=move |ev| { let v = event_target_value(&ev); set(&|d| d.conflict = if v == "Overwrite" { ConflictResolution::Overwrite } else { ConflictResolution::Abort }); }>
                            <option value="Abort" selected=draft.get_untracked().conflict == ConflictResolution::Abort>"Abort · leave it alone"</option>
                            <option value="Overwrite" selected=draft.get_untracked().conflict == ConflictResolution::Overwrite>"Overwrite · take it over"</option>
                        </select>
                    </Field>
                    <div class="form-row">
                        <Field label="At least (clusters)" id="s-min" message=msg(error, "min_clusters") hint="0: no minimum">
                            <input id="s-min" type="number" min="0" prop:value=draft.get_untracked().min_clusters.to_string()
                                on:input=move |ev| { let v = parse_u32(&event_target_value(&ev)); set(&|d| d.min_clusters = v); }/>
                        </Field>
                        <Field label="At most (clusters)" id="s-max" message=msg(error, "max_clusters") hint="0: no limit">
                            <input id="s-max" type="number" min="0" prop:value=draft.get_untracked().max_clusters.to_string()
                                on:input=move |ev| { let v = parse_u32(&event_target_value(&ev)); set(&|d| d.max_clusters = v); }/>
                        </Field>
                    </div>
                </details>
                <SheetActions open pending=action.pending()/>
            </form>
        </Dialog>
    }
}

#[component]
fn RuleRow(
    index: Signal<usize>,
    rule: RwSignal<PlacementRule>,
    error: Signal<Option<AppError>>,
    remove: Callback<()>,
    clusters: Signal<Vec<ClusterFacts>>,
    touched: RwSignal<bool>,
) -> impl IntoView {
    let message = Signal::derive(move || error.get().and_then(|e| e.field_error(&format!("rules.{}", index.get()))));
    let r0 = rule.get_untracked();
    let set = move |f: &dyn Fn(&mut PlacementRule)| {
        touched.set(true);
        rule.update(|r| f(r));
    };
    let target_value = r0.zone.map_or("clusters", |z| z.as_str());
    view! {
        <div class="rule-row" class:has-error=move || message.get().is_some() data-testid="rule-row">
            <span class="rule-index">{move || format!("{}.", index.get() + 1)}</span>
            <select aria-label="Condition" on:change=move |ev| {
                let f = RuleField::parse(&event_target_value(&ev)).unwrap_or(RuleField::ModelSize);
                set(&|r| { r.field = f; if !f.operators().contains(&r.op) { r.op = f.operators()[0]; } });
            }>
                {RuleField::ALL.into_iter().map(|f| view! { <option value=f.as_str() selected=r0.field == f>{f.label()}</option> }).collect_view()}
            </select>
            {move || {
                let r = rule.get();
                view! {
                    <select aria-label="Operator" on:change=move |ev| { let o = RuleOp::parse(&event_target_value(&ev)).unwrap_or(RuleOp::Eq); set(&|r| r.op = o); }>
                        {r.field.operators().iter().map(|o| view! { <option value=o.as_str() selected=r.op == *o>{o.symbol()}</option> }).collect_view()}
                    </select>
                }
            }}
            <input aria-label="Value" class="rule-value" list="rule-runtimes" prop:value=r0.value.clone()
                on:input=move |ev| { let v = event_target_value(&ev); set(&|r| r.value = v.clone()); }/>
            <datalist id="rule-runtimes">{RuntimeKind::ALL.into_iter().map(|k| view! { <option value=k.as_str()/> }).collect_view()}</datalist>
            <span class="muted">"→"</span>
            <select aria-label="Then place in" on:change=move |ev| {
                let v = event_target_value(&ev);
                set(&|r| { r.zone = ZoneClass::parse(&v).ok(); if r.zone.is_some() { r.clusters.clear(); } });
            }>
                <option value="a" selected=target_value == "a">"Zone A"</option>
                <option value="b" selected=target_value == "b">"Zone B"</option>
                <option value="clusters" selected=target_value == "clusters">"Clusters…"</option>
            </select>
            <button class="icon-button" type="button" aria-label=move || format!("Remove rule {}", index.get() + 1) on:click=move |_| remove.run(())>"×"</button>
            <Show when=move || rule.with(|r| r.zone.is_none())>
                <div class="rule-clusters">
                    {move || clusters.get().into_iter().map(|c| {
                        let (n1, n2) = (c.name.clone(), c.name.clone());
                        view! {
                            <label class="check"><input type="checkbox" prop:checked=move || rule.with(|r| r.clusters.contains(&n1))
                                on:change=move |ev| { let on = event_target_checked(&ev); let n = n2.clone(); set(&|r| { r.clusters.retain(|x| x != &n); if on { r.clusters.push(n.clone()); } }); }/>
                                {format!(" {}", c.name)}</label>
                        }
                    }).collect_view()}
                </div>
            </Show>
            <small class="field-error rule-error" role="alert">{move || message.get()}</small>
        </div>
    }
}

/// Remarks about `field`, as you type: errors (refused on save), warnings and notes.
fn remarks_for(draft: RwSignal<ResourceProfile>, field: &'static str) -> impl IntoView {
    move || {
        draft.with(|d| d.remarks()).into_iter().filter(|r| r.field == field).map(|r| {
            view! { <p class=format!("remark {}", severity_class(r.severity)) data-testid=format!("remark-{field}")>{r.message}</p> }
        }).collect_view()
    }
}

#[component]
fn ProfileSheet(
    open: RwSignal<bool>,
    draft: RwSignal<ResourceProfile>,
    creating: RwSignal<bool>,
    latest: RwSignal<Option<Policies>>,
    saved: Callback<()>,
) -> impl IntoView {
    let action = ServerAction::<SaveProfile>::new();
    let touched = RwSignal::new(false);
    reset_when_opened(open, touched, action.value());
    let server = Signal::derive(move || action.value().get().and_then(|r| r.err()));
    let error = live_error(
        move || draft.get(),
        touched,
        server,
        move |p: &ResourceProfile| {
            p.validate()?;
            free_name(latest, creating, PolicyKind::Profile, &p.name)
        },
    );
    close_when_saved(open, action.value(), saved);
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        if error.get_untracked().is_none() {
            action.dispatch(SaveProfile { profile: draft.get_untracked(), create: creating.get_untracked() });
        }
    };
    let set = move |f: &dyn Fn(&mut ResourceProfile)| {
        touched.set(true);
        draft.update(|d| f(d));
    };
    let products = move || latest.with(|l| l.as_ref().map(|p| gpu_products(&p.clusters)).unwrap_or_default());
    let zone_a = move || draft.with(|d| d.zone == ZoneClass::A);
    let check = move |label: &'static str,
                      id: &'static str,
                      get: fn(&ResourceProfile) -> bool,
                      put: fn(&mut ResourceProfile, bool)| {
        view! {
            <label class="check"><input type="checkbox" data-testid=id prop:checked=move || draft.with(get)
                on:change=move |ev| { let on = event_target_checked(&ev); set(&|d| put(d, on)); }/>{format!(" {label}")}</label>
            {remarks_for(draft, id)}
        }
    };
    view! {
        <Dialog title=Signal::derive(move || if creating.get() { "New resource profile".to_string() } else { format!("Edit profile {}", draft.with_untracked(|d| d.name.clone())) }) open class="sheet">
            <form class="form" on:submit=on_submit novalidate data-testid="profile-form">
                <FormError error/>
                <NameFields prefix="p" name=draft.get_untracked().name description=draft.get_untracked().description error creating set_name=Callback::new(move |v: String| set(&|d| d.name = v.trim().to_string()))
                    set_description=Callback::new(move |v: String| set(&|d| d.description = v.clone()))/>
                <div class="field" class:has-error=move || msg(error, "zone").get().is_some()>
                    <span class="label">"Zone"</span>
                    <div class="segmented" role="radiogroup" aria-label="Zone">
                        {[ZoneClass::A, ZoneClass::B].into_iter().map(|z| view! {
                            <button type="button" role="radio" data-zone=z.as_str() aria-checked=move || (draft.with(|d| d.zone) == z).to_string()
                                on:click=move |_| set(&|d| {
                                    d.zone = z;
                                    // Settings of the other zone do not apply.
                                    if z == ZoneClass::A { d.qos = QosClass::None; d.gpu_sharing = false; d.gang = false; d.overcommit = false; }
                                    else { d.numa_aligned = false; d.nvlink = false; d.mig_profile.clear(); }
                                })>{z.label()}</button>
                        }).collect_view()}
                    </div>
                    <small class="field-error" role="alert">{move || msg(error, "zone").get()}</small>
                </div>
                <div class="form-row">
                    <Field label="GPUs per replica" id="p-gpus" message=msg(error, "gpus")>
                        <input id="p-gpus" type="number" min="0" prop:value=draft.get_untracked().gpus.to_string()
                            on:input=move |ev| { let v = parse_u32(&event_target_value(&ev)); set(&|d| d.gpus = v); }/>
                    </Field>
                    <Field label="Memory (GiB)" id="p-mem" message=msg(error, "memory_gi")>
                        <input id="p-mem" type="number" min="0" prop:value=draft.get_untracked().memory_gi.to_string()
                            on:input=move |ev| { let v = parse_u32(&event_target_value(&ev)); set(&|d| d.memory_gi = v); }/>
                    </Field>
                    <Field label="CPU (cores)" id="p-cpu" message=msg(error, "cpu")>
                        <input id="p-cpu" type="number" min="0" step="0.5" prop:value=draft.get_untracked().cpu.to_string()
                            on:input=move |ev| { let v = event_target_value(&ev).trim().parse().unwrap_or(-1.0); set(&|d| d.cpu = v); }/>
                    </Field>
                </div>
                <Field label="GPU type" id="p-gputype" message=msg(error, "gpu_type") hint="Matched against the nodes' nvidia.com/gpu.product; empty: any.">
                    <input id="p-gputype" list="gpu-products" prop:value=draft.get_untracked().gpu_type
                        on:input=move |ev| { let v = event_target_value(&ev); set(&|d| d.gpu_type = v.trim().to_string()); }/>
                    <datalist id="gpu-products">{move || products().into_iter().map(|p| view! { <option value=p/> }).collect_view()}</datalist>
                </Field>
                <Field label="Scheduler" id="p-scheduler" message=msg(error, "scheduler")>
                    <select id="p-scheduler" on:change=move |ev| { let s = Scheduler::parse(&event_target_value(&ev)).unwrap_or_default(); set(&|d| d.scheduler = s); }>
                        {Scheduler::ALL.into_iter().map(|s| view! { <option value=s.as_str() selected=draft.get_untracked().scheduler == s>{format!("{} ({})", s.label(), s.scheduler_name())}</option> }).collect_view()}
                    </select>
                </Field>
                <Show when=zone_a>
                    <fieldset class="zone-box">
                        <legend>"Zone A · hardware alignment"</legend>
                        {check("Align CPUs, memory and GPUs on one NUMA node", "numa_aligned", |d| d.numa_aligned, |d, on| d.numa_aligned = on)}
                        {check("Require NVLink between the replica's GPUs", "nvlink", |d| d.nvlink, |d, on| d.nvlink = on)}
                        <Field label="MIG profile" id="p-mig" message=msg(error, "mig_profile")>
                            <select id="p-mig" data-testid="mig" on:change=move |ev| { let v = event_target_value(&ev); set(&|d| d.mig_profile = v.clone()); }>
                                <option value="" selected=draft.get_untracked().mig_profile.is_empty()>"Whole GPUs"</option>
                                {MIG_PROFILES.iter().map(|m| view! { <option value=*m selected=draft.get_untracked().mig_profile == *m>{*m}</option> }).collect_view()}
                            </select>
                        </Field>
                        {remarks_for(draft, "mig_profile")}
                    </fieldset>
                </Show>
                <Show when=move || !zone_a()>
                    <fieldset class="zone-box">
                        <legend>"Zone B · sharing"</legend>
                        <Field label="QoS class" id="p-qos" message=msg(error, "qos")>
                            <select id="p-qos" data-testid="qos" on:change=move |ev| { let q = QosClass::parse(&event_target_value(&ev)).unwrap_or_default(); set(&|d| d.qos = q); }>
                                {QosClass::ALL.into_iter().map(|q| view! { <option value=q.as_str() selected=draft.get_untracked().qos == q>{q.label()}</option> }).collect_view()}
                            </select>
                        </Field>
                        {remarks_for(draft, "qos")}
                        {check("Share GPUs between replicas", "gpu_sharing", |d| d.gpu_sharing, |d, on| d.gpu_sharing = on)}
                        {check("Gang scheduling (all pods or none)", "gang", |d| d.gang, |d, on| d.gang = on)}
                        {check("Overcommit (request half, allow all)", "overcommit", |d| d.overcommit, |d, on| d.overcommit = on)}
                    </fieldset>
                </Show>
                <SheetActions open pending=action.pending()/>
            </form>
        </Dialog>
    }
}

#[component]
fn FailoverSheet(
    open: RwSignal<bool>,
    draft: RwSignal<FailoverPolicy>,
    creating: RwSignal<bool>,
    latest: RwSignal<Option<Policies>>,
    confirm: RwSignal<Option<Confirm>>,
    saved: Callback<()>,
) -> impl IntoView {
    let action = ServerAction::<SaveFailover>::new();
    let touched = RwSignal::new(false);
    let was_enabled = RwSignal::new(true);
    Effect::new(move |_| {
        if open.get() {
            touched.set(false);
            action.value().set(None);
            was_enabled.set(creating.get_untracked() || draft.get_untracked().enabled);
        }
    });
    let server = Signal::derive(move || action.value().get().and_then(|r| r.err()));
    let error = live_error(
        move || draft.get(),
        touched,
        server,
        move |p: &FailoverPolicy| {
            p.validate()?;
            free_name(latest, creating, PolicyKind::Failover, &p.name)
        },
    );
    close_when_saved(open, action.value(), saved);
    let submit = move || {
        action.dispatch(SaveFailover { failover: draft.get_untracked(), create: creating.get_untracked() });
    };
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        if error.get_untracked().is_some() {
            return;
        }
        let d = draft.get_untracked();
        if !d.enabled && was_enabled.get_untracked() {
            let users = latest.with_untracked(|l| {
                l.as_ref()
                    .and_then(|p| p.failovers.iter().find(|v| v.policy.name == d.name).map(|v| v.used_by.clone()))
                    .unwrap_or_default()
            });
            let body = if users.is_empty() {
                "Workloads under this policy will stay on a failed cluster until it recovers.".to_string()
            } else {
                format!("{} will stay on a failed cluster until it recovers instead of moving.", users.join(", "))
            };
            confirm.set(Some(Confirm {
                title: "Disable failover?".into(),
                body,
                go: Callback::new(move |_| submit()),
            }));
        } else {
            submit();
        }
    };
    let set = move |f: &dyn Fn(&mut FailoverPolicy)| {
        touched.set(true);
        draft.update(|d| f(d));
    };
    let seconds = |s: u32| if s == u32::MAX { String::new() } else { seconds_label(s) };
    view! {
        <Dialog title=Signal::derive(move || if creating.get() { "New failover policy".to_string() } else { format!("Edit failover policy {}", draft.with_untracked(|d| d.name.clone())) }) open class="sheet">
            <form class="form" on:submit=on_submit novalidate data-testid="failover-form">
                <FormError error/>
                <NameFields prefix="f" name=draft.get_untracked().name description=draft.get_untracked().description error creating set_name=Callback::new(move |v: String| set(&|d| d.name = v.trim().to_string()))
                    set_description=Callback::new(move |v: String| set(&|d| d.description = v.clone()))/>
                <label class="check switch"><input type="checkbox" role="switch" data-testid="enabled" prop:checked=move || draft.with(|d| d.enabled)
                    on:change=move |ev| { let on = event_target_checked(&ev); set(&|d| d.enabled = on); }/>" Move workloads off a failed cluster"</label>
                <label class="check switch"><input type="checkbox" role="switch" data-testid="application" prop:checked=move || draft.with(|d| d.application)
                    on:change=move |ev| { let on = event_target_checked(&ev); set(&|d| d.application = on); }/>
                    " Also move a replica that stays unhealthy on a cluster that is up (never before its model has had time to download and load)"</label>
                <div class="form-row">
                    <Field label="Toleration (seconds)" id="f-tol" message=msg(error, "toleration_seconds")
                        hint=Signal::derive(move || format!("How long after the hub marks a cluster NotReady (about 40 s after its last answer) its workloads move: {}", seconds(draft.with(|d| d.toleration_seconds)))) >
                        <input id="f-tol" type="number" min="0" prop:value=draft.get_untracked().toleration_seconds.to_string()
                            on:input=move |ev| { let v = parse_u32(&event_target_value(&ev)); set(&|d| d.toleration_seconds = v); }/>
                    </Field>
                    <Field label="Purge mode" id="f-purge" message=msg(error, "purge_mode")>
                        <select id="f-purge" on:change=move |ev| {
                            let m = PurgeMode::parse(&event_target_value(&ev)).unwrap_or_default();
                            set(&|d| { d.purge_mode = m; if m != PurgeMode::Gracefully { d.grace_period_seconds = 0; } else if d.grace_period_seconds == 0 { d.grace_period_seconds = 600; } });
                        }>
                            {PurgeMode::ALL.into_iter().map(|m| view! { <option value=m.as_str() selected=draft.get_untracked().purge_mode == m>{m.as_str()}</option> }).collect_view()}
                        </select>
                    </Field>
                </div>
                <Show when=move || draft.with(|d| d.purge_mode == PurgeMode::Gracefully)>
                    <Field label="Grace period (seconds)" id="f-grace" message=msg(error, "grace_period_seconds")
                        hint=Signal::derive(move || format!("The old copy is kept up to {} while the new one starts", seconds(draft.with(|d| d.grace_period_seconds))))>
                        <input id="f-grace" type="number" min="1" prop:value=draft.with_untracked(|d| d.grace_period_seconds.to_string())
                            on:input=move |ev| { let v = parse_u32(&event_target_value(&ev)); set(&|d| d.grace_period_seconds = v); }/>
                    </Field>
                </Show>
                <div class="field">
                    <span class="label">"What happens when a cluster fails"</span>
                    <FailoverTimeline policy=Signal::derive(move || {
                        let mut d = draft.get();
                        d.toleration_seconds = d.toleration_seconds.min(86_400);
                        d.grace_period_seconds = d.grace_period_seconds.min(86_400);
                        d
                    })/>
                </div>
                <SheetActions open pending=action.pending()/>
            </form>
        </Dialog>
    }
}

#[component]
fn DeleteDialog(
    target: RwSignal<Option<(PolicyKind, String, Vec<String>)>>,
    action: ServerAction<DeletePolicy>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    // Two-way between "a target" and "open", writing only changes so neither wakes the other.
    Effect::new(move |_| {
        let want = target.with(|t| t.is_some());
        if open.get_untracked() != want {
            open.set(want);
        }
    });
    Effect::new(move |_| {
        if !open.get() && target.with_untracked(|t| t.is_some()) {
            target.set(None);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = action.value().get() {
            open.set(false);
            action.value().set(None);
        }
    });
    view! {
        <Dialog title="Delete policy" open>
            {move || target.get().map(|(kind, name, users)| {
                if users.is_empty() {
                    let n = name.clone();
                    view! {
                        <div data-testid="delete-confirm">
                            <p>"Delete the "{kind.label()}" "<strong>{name.clone()}</strong>"? Its objects on the hub are removed too."</p>
                            {move || action.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBanner error=e/> })}
                            <div class="form-actions">
                                <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                                <button class="button danger" type="button" disabled=move || action.pending().get()
                                    on:click=move |_| { action.dispatch(DeletePolicy { kind, name: n.clone() }); }>"Delete"</button>
                            </div>
                        </div>
                    }.into_any()
                } else {
                    view! {
                        <div data-testid="delete-blocked">
                            <div class="banner banner-warn" role="alert">
                                <strong>{format!("{name} is in use and cannot be deleted.")}</strong>
                                " Move these to another "{kind.label()}" first:"
                            </div>
                            <ul class="used-by">{users.into_iter().map(|u| view! { <li>{u}</li> }).collect_view()}</ul>
                            <div class="form-actions">
                                <button class="button" type="button" autofocus on:click=move |_| open.set(false)>"Close"</button>
                            </div>
                        </div>
                    }.into_any()
                }
            })}
        </Dialog>
    }
}

#[component]
fn ConfirmDialog(confirm: RwSignal<Option<Confirm>>) -> impl IntoView {
    let open = RwSignal::new(false);
    Effect::new(move |_| {
        let want = confirm.with(|c| c.is_some());
        if open.get_untracked() != want {
            open.set(want);
        }
    });
    Effect::new(move |_| {
        if !open.get() && confirm.with_untracked(|c| c.is_some()) {
            confirm.set(None);
        }
    });
    view! {
        <Dialog title="Please confirm" open>
            {move || confirm.get().map(|c| {
                let go = c.go;
                view! {
                    <div data-testid="confirm">
                        <h3>{c.title.clone()}</h3>
                        <p>{c.body.clone()}</p>
                        <div class="form-actions">
                            <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                            <button class="button primary" type="button" autofocus on:click=move |_| { open.set(false); go.run(()); }>"Confirm"</button>
                        </div>
                    </div>
                }
            })}
        </Dialog>
    }
}
