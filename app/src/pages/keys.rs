//! API keys: create (the secret shown once), see scope, limits and use, revoke; usage over time
//! and the newest gateway requests.
use crate::api::deployments::list_deployments;
use crate::api::keys::{key_requests, key_usage, list_keys, CreateKey, RevokeKey};
use crate::components::chart::{compact, Bar, BarChart};
use crate::components::copy::{CopyBlock, OneTimeSecret};
use crate::components::dialog::{open_for, ConfirmDialog, Dialog};
use crate::components::feedback::{error_fallback, EmptyState, ErrorBanner, SkeletonRows};
use crate::components::form::{FormError, TextField};
use crate::components::layout::PageHeader;
use crate::components::poll::use_tick;
use crate::components::time::format_utc;
use crate::error::AppError;
use crate::models::apikey::{ApiKeyView, KeyStatus, NewApiKey, UsageReport, UsageTotal, USAGE_WINDOWS};
use crate::models::user::Role;
use crate::pages::shell::CurrentUser;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

#[component]
pub fn KeysPage() -> impl IntoView {
    let create = ServerAction::<CreateKey>::new();
    let revoke = ServerAction::<RevokeKey>::new();
    let keys = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_keys());
    let me = expect_context::<CurrentUser>();
    let is_admin =
        Signal::derive(move || me.get().and_then(|r| r.ok()).flatten().is_some_and(|u| u.role == Role::Admin));
    let new_open = RwSignal::new(false);
    let revoke_target = RwSignal::new(None::<ApiKeyView>);

    view! {
        <Title text="API keys"/>
        <PageHeader title="API keys" subtitle="Call every deployed model with any OpenAI client, through one endpoint.">
            <button class="button primary" type="button" on:click=move |_| new_open.set(true)>"New key"</button>
        </PageHeader>
        <QuickStart/>
        {move || revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBanner error=e/> })}
        <div class="card flush">
            <h2 class="card-title padded">"Keys"</h2>
            <Transition fallback=|| view! { <SkeletonRows rows=3/> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        let list = keys.await?;
                        let admin = is_admin.get_untracked();
                        Ok::<_, AppError>(if list.is_empty() {
                            view! {
                                <EmptyState title="No API keys yet"
                                    body="Create a key to call deployed models from code; the playground needs none."/>
                            }.into_any()
                        } else {
                            view! {
                                <table class="table" data-testid="keys-table">
                                    <thead><tr>
                                        <th>"Name"</th><th>"Key"</th>
                                        {admin.then(|| view! { <th>"Owner"</th> })}
                                        <th>"Scope"</th><th>"Limits"</th><th>"Expires"</th><th>"Last used"</th><th>"Status"</th>
                                        <th class="actions-col"><span class="sr-only">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|k| view! { <KeyRow k admin revoke_target/> }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </div>
        <crate::pages::tokens::AccessTokensCard/>
        <Usage/>
        <RecentRequests/>
        <NewKeyDialog open=new_open action=create/>
        <RevokeDialog target=revoke_target action=revoke/>
    }
}

#[component]
fn QuickStart() -> impl IntoView {
    let origin = crate::components::origin::page_origin();
    view! {
        <section class="card quickstart">
            <h2 class="card-title">"Quick start"</h2>
            <p class="muted">"Base URL "<code data-testid="base-url">{move || format!("{}/v1", origin.get())}</code>
                " — the model is the deployed model's id (or the deployment's name)."</p>
            {move || {
                let text = format!(
                    "import os\nfrom openai import OpenAI\n\n# The key is read from the environment: export HMAS_API_KEY=hmas-...\nclient = OpenAI(base_url=\"{}/v1\", api_key=os.environ[\"HMAS_API_KEY\"])\nclient.chat.completions.create(model=\"llama3.2:1b\", messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}])",
                    origin.get()
                );
                view! { <CopyBlock text label="Copy the Python example"/> }
            }}
        </section>
    }
}

fn scope_text(k: &ApiKeyView) -> String {
    match &k.scope {
        None => "All deployments".into(),
        Some(s) => s.join(", "),
    }
}

fn limits_text(k: &ApiKeyView) -> String {
    let mut parts = Vec::new();
    if let Some(r) = k.rpm {
        parts.push(format!("{} req/min", compact(r as f64)));
    }
    if let Some(t) = k.tpm {
        parts.push(format!("{} tok/min", compact(t as f64)));
    }
    if parts.is_empty() {
        "None".into()
    } else {
        parts.join(" · ")
    }
}

#[component]
fn KeyRow(k: ApiKeyView, admin: bool, revoke_target: RwSignal<Option<ApiKeyView>>) -> impl IntoView {
    let badge = match k.status {
        KeyStatus::Active => "badge ok",
        KeyStatus::Expired => "badge warn",
        KeyStatus::Revoked => "badge muted",
        KeyStatus::OwnerDisabled => "badge warn",
    };
    let active = k.status == KeyStatus::Active;
    let revocable = active || k.status == KeyStatus::OwnerDisabled;
    let target = k.clone();
    view! {
        <tr data-key=k.name.clone() class:row-disabled=!active>
            <td><div class="cell-main">{k.name.clone()}</div><div class="cell-sub muted">{format!("created {}", format_utc(k.created_at))}</div></td>
            <td><code>{format!("{}…", k.prefix)}</code></td>
            {admin.then(|| view! { <td>{k.owner.clone()}</td> })}
            <td>{scope_text(&k)}</td>
            <td class="nowrap">{limits_text(&k)}</td>
            <td class="muted nowrap">{k.expires_at.map(format_utc).unwrap_or_else(|| "Never".into())}</td>
            <td class="muted nowrap">{k.last_used_at.map(format_utc).unwrap_or_else(|| "Never".into())}</td>
            <td><span class=badge>{k.status.label()}</span></td>
            <td class="actions-col">
                {revocable.then(|| view! {
                    <button class="button small danger" type="button" aria-label=format!("Revoke {}", k.name)
                        on:click=move |_| revoke_target.set(Some(target.clone()))>"Revoke"</button>
                })}
            </td>
        </tr>
    }
}

fn bucket_label(t: i64, bucket_ms: i64) -> String {
    let full = format_utc(t);
    // Within a day the time says enough; over a week the date matters.
    if bucket_ms < 3_600_000 {
        full[11..].to_string()
    } else {
        full[5..16].to_string()
    }
}

#[component]
fn Usage() -> impl IntoView {
    let hours = RwSignal::new(24u32);
    let tick = use_tick(Duration::from_secs(15));
    let usage = Resource::new(move || (hours.get(), tick.get()), |(h, _)| key_usage(h));
    view! {
        <section class="card">
            <div class="card-head">
                <h2 class="card-title">"Usage"</h2>
                <div class="segmented" role="group" aria-label="Window">
                    {USAGE_WINDOWS.iter().map(|(h, label)| {
                        let h = *h;
                        view! { <button type="button" aria-pressed=move || (hours.get() == h).to_string() on:click=move |_| hours.set(h)>{*label}</button> }
                    }).collect_view()}
                </div>
            </div>
            <Transition fallback=|| view! { <SkeletonRows rows=4/> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        let u = usage.await?;
                        Ok::<_, AppError>(view! { <UsageView u/> })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

/// Totals and charts of a usage window; `brief` leaves out the tables by key and deployment.
#[component]
pub fn UsageView(u: UsageReport, #[prop(optional)] brief: bool) -> impl IntoView {
    let total = |f: fn(&crate::models::apikey::UsagePoint) -> i64| u.points.iter().map(f).sum::<i64>();
    let (requests, errors) = (total(|p| p.requests), total(|p| p.errors));
    let (prompt, completion) = (total(|p| p.prompt_tokens), total(|p| p.completion_tokens));
    if requests == 0 {
        return view! { <EmptyState title="No requests in this window" body="Calls through the gateway and the playground show up here within seconds."/> }.into_any();
    }
    let req_bars: Vec<Bar> = u
        .points
        .iter()
        .map(|p| Bar {
            label: bucket_label(p.t, u.bucket_ms),
            values: vec![(p.requests - p.errors) as f64, p.errors as f64],
        })
        .collect();
    let tok_bars: Vec<Bar> = u
        .points
        .iter()
        .map(|p| Bar {
            label: bucket_label(p.t, u.bucket_ms),
            values: vec![p.prompt_tokens as f64, p.completion_tokens as f64],
        })
        .collect();
    view! {
        <div class="stats">
            <div class="stat"><span class="stat-value" data-testid="usage-requests">{compact(requests as f64)}</span><span class="stat-label">"requests"</span></div>
            <div class="stat"><span class="stat-value">{format!("{:.1} %", errors as f64 * 100.0 / requests as f64)}</span><span class="stat-label">"errors"</span></div>
            <div class="stat"><span class="stat-value">{compact(prompt as f64)}</span><span class="stat-label">"prompt tokens"</span></div>
            <div class="stat"><span class="stat-value">{compact(completion as f64)}</span><span class="stat-label">"completion tokens"</span></div>
        </div>
        <div class="chart-grid">
            <div>
                <h3 class="chart-title">"Requests"</h3>
                <BarChart bars=req_bars series=vec![("succeeded", "s-ok"), ("failed", "s-err")] label="Requests over time" testid="chart-requests"/>
            </div>
            <div>
                <h3 class="chart-title">"Tokens"</h3>
                <BarChart bars=tok_bars series=vec![("prompt", "s-a"), ("completion", "s-b")] label="Tokens over time" testid="chart-tokens"/>
            </div>
        </div>
        {(!brief).then(|| view! {
            <div class="chart-grid">
                <Totals title="By key" rows=u.by_key.clone()/>
                <Totals title="By deployment" rows=u.by_deployment.clone()/>
            </div>
        })}
    }
    .into_any()
}

#[component]
fn Totals(title: &'static str, rows: Vec<UsageTotal>) -> impl IntoView {
    let max = rows.iter().map(|r| r.prompt_tokens + r.completion_tokens).max().unwrap_or(0).max(1);
    view! {
        <div>
            <h3 class="chart-title">{title}</h3>
            <table class="table compact">
                <thead><tr><th>""</th><th class="num">"Requests"</th><th class="num">"Errors"</th><th>"Tokens"</th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|r| {
                        let tokens = r.prompt_tokens + r.completion_tokens;
                        let width = format!("width: {:.1}%", tokens as f64 * 100.0 / max as f64);
                        view! {
                            <tr>
                                <td>{r.label}</td>
                                <td class="num">{r.requests}</td>
                                <td class="num">{r.errors}</td>
                                <td><div class="meter"><div class="meter-fill" style=width></div></div><span class="small muted">{compact(tokens as f64)}</span></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn RecentRequests() -> impl IntoView {
    let tick = use_tick(Duration::from_secs(5));
    let rows = Resource::new(move || tick.get(), |_| key_requests(Some(50)));
    view! {
        <div class="card flush">
            <h2 class="card-title padded">"Recent requests"</h2>
            <Transition fallback=|| view! { <SkeletonRows rows=3/> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        let list = rows.await?;
                        Ok::<_, AppError>(if list.is_empty() {
                            view! { <EmptyState title="No requests yet" body="Prompts and answers are never stored; only who, what, how long and how many tokens."/> }.into_any()
                        } else {
                            view! {
                                <table class="table" data-testid="requests-table">
                                    <thead><tr>
                                        <th>"Time"</th><th>"Key"</th><th>"Deployment"</th><th>"Status"</th>
                                        <th class="num">"Latency"</th><th class="num">"TTFT"</th><th class="num">"Tokens in / out"</th>
                                    </tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|r| {
                                            let class = if r.status >= 400 || r.outcome == "upstream_error" { "badge danger" } else if r.outcome == "cancelled" { "badge warn" } else { "badge ok" };
                                            let status = match r.outcome.as_str() { "cancelled" => format!("{} cancelled", r.status), "upstream_error" => format!("{} cut off", r.status), _ => r.status.to_string() };
                                            view! {
                                                <tr>
                                                    <td class="muted nowrap">{format_utc(r.at)}</td>
                                                    <td>{r.key_name}</td>
                                                    <td>{r.deployment}{r.stream.then(|| view! { <span class="badge info small-badge">"stream"</span> })}</td>
                                                    <td><span class=class>{status}</span></td>
                                                    <td class="num">{format!("{} ms", r.latency_ms)}</td>
                                                    <td class="num">{r.ttft_ms.map(|t| format!("{t} ms")).unwrap_or_else(|| "—".into())}</td>
                                                    <td class="num">{format!("{} / {}", r.prompt_tokens, r.completion_tokens)}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </div>
    }
}

fn parse_opt(field: &'static str, s: &str) -> Result<Option<u32>, AppError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u32>().map(Some).map_err(|_| AppError::field(field, "must be a whole number"))
}

#[component]
fn NewKeyDialog(open: RwSignal<bool>, action: ServerAction<CreateKey>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let rpm = RwSignal::new(String::new());
    let tpm = RwSignal::new(String::new());
    let days = RwSignal::new(String::new());
    let all = RwSignal::new(true);
    let chosen = RwSignal::new(Vec::<String>::new());
    let local_error = RwSignal::new(None::<AppError>);
    let error = Signal::derive(move || local_error.get().or_else(|| action.value().get().and_then(|r| r.err())));
    let created = Signal::derive(move || action.value().get().and_then(|r| r.ok()));
    let deployments = Resource::new(move || open.get(), |_| list_deployments());

    // A new round starts clean; the secret of the last one is gone when the dialog closes.
    Effect::new(move |_| {
        if open.get() {
            for s in [name, rpm, tpm, days] {
                s.set(String::new());
            }
            all.set(true);
            chosen.set(Vec::new());
            local_error.set(None);
            action.value().set(None);
        }
    });
    let input = move || -> Result<NewApiKey, AppError> {
        let input = NewApiKey {
            name: name.get_untracked().trim().to_string(),
            scope: (!all.get_untracked()).then(|| chosen.get_untracked()),
            rpm: parse_opt("rpm", &rpm.get_untracked())?,
            tpm: parse_opt("tpm", &tpm.get_untracked())?,
            expires_in_days: parse_opt("expires_in_days", &days.get_untracked())?,
        };
        input.validate()?;
        Ok(input)
    };
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        match input() {
            Err(e) => local_error.set(Some(e)),
            Ok(input) => {
                local_error.set(None);
                action.dispatch(CreateKey { input });
            }
        }
    };
    let scope_error = Signal::derive(move || error.get().and_then(|e| e.field_error("scope")));

    view! {
        <Dialog title="New API key" open held=Signal::derive(move || created.get().is_some())>
            <Show
                when=move || created.get().is_some()
                fallback=move || view! {
                    <form class="form" on:submit=on_submit novalidate>
                        <FormError error/>
                        <TextField name="name" label="Name" value=name error autofocus=true hint="What uses it, e.g. \"support bot\"."/>
                        <fieldset class="field" class:has-error=move || scope_error.get().is_some()>
                            <legend>"Deployments it may call"</legend>
                            <label class="check"><input type="radio" name="scope" checked=move || all.get() on:change=move |_| all.set(true)/>"All, including future ones"</label>
                            <label class="check"><input type="radio" name="scope" checked=move || !all.get() on:change=move |_| all.set(false)/>"Only these:"</label>
                            <Show when=move || !all.get()>
                                <Suspense fallback=|| view! { <SkeletonRows rows=2/> }>
                                    {move || Suspend::new(async move {
                                        let list = deployments.await.unwrap_or_default();
                                        if list.is_empty() {
                                            return view! { <p class="muted small">"No deployments yet."</p> }.into_any();
                                        }
                                        view! {
                                            <div class="check-list">
                                                {list.into_iter().map(|d| {
                                                    let n = d.name.clone();
                                                    let n2 = n.clone();
                                                    view! {
                                                        <label class="check">
                                                            <input type="checkbox" value=n.clone()
                                                                prop:checked=move || chosen.get().contains(&n)
                                                                on:change=move |ev| {
                                                                    let on = event_target_checked(&ev);
                                                                    chosen.update(|c| { c.retain(|x| x != &n2); if on { c.push(n2.clone()); } });
                                                                }/>
                                                            {d.name.clone()}<span class="muted small">{format!(" {}", d.model)}</span>
                                                        </label>
                                                    }
                                                }).collect_view()}
                                            </div>
                                        }.into_any()
                                    })}
                                </Suspense>
                            </Show>
                            <small class="field-error" role="alert">{move || scope_error.get()}</small>
                        </fieldset>
                        <div class="field-row">
                            <TextField name="rpm" label="Requests per minute" value=rpm error kind="number" hint="Empty: no limit."/>
                            <TextField name="tpm" label="Tokens per minute" value=tpm error kind="number" hint="Empty: no limit."/>
                        </div>
                        <TextField name="expires_in_days" label="Expires after (days)" value=days error kind="number" hint="Empty: never."/>
                        <div class="form-actions">
                            <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                            <button class="button primary" type="submit" disabled=move || action.pending().get()>"Create key"</button>
                        </div>
                    </form>
                }
            >
                {move || created.get().map(|c| view! {
                    <OneTimeSecret secret=c.secret.clone() what="key" testid="new-key-secret" open
                        summary=format!("{} · {}", c.key.name, scope_text(&c.key))/>
                })}
            </Show>
        </Dialog>
    }
}

#[component]
fn RevokeDialog(target: RwSignal<Option<ApiKeyView>>, action: ServerAction<RevokeKey>) -> impl IntoView {
    let open = open_for(target);
    let name = move || target.get().map(|k| k.name).unwrap_or_default();
    let revoke = Callback::new(move |_| {
        if let Some(k) = target.get_untracked() {
            action.dispatch(RevokeKey { id: k.id });
        }
    });
    view! {
        <ConfirmDialog title="Revoke API key" open confirm="Revoke key" pending=action.pending()
            done=Signal::derive(move || matches!(action.value().get(), Some(Ok(_)))) on_confirm=revoke>
            <p>"Revoke "<strong>{name}</strong>"? Every request with it is refused from now on. This cannot be undone."</p>
        </ConfirmDialog>
    }
}
