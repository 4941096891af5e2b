//! Access tokens on the API keys page: how scripts call `/api` without a browser (create — the
//! secret shown once —, see when each was used, revoke).
use crate::api::tokens::{list_tokens, CreateToken, RevokeToken};
use crate::components::copy::OneTimeSecret;
use crate::components::dialog::{open_for, ConfirmDialog, Dialog};
use crate::components::feedback::{error_fallback, EmptyState, ErrorBanner, SkeletonRows};
use crate::components::form::{FormError, SelectField, TextField};
use crate::components::time::format_utc;
use crate::error::AppError;
use crate::models::token::{AccessTokenView, NewAccessToken, TokenStatus};
use crate::models::user::Role;
use crate::pages::shell::CurrentUser;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;

#[component]
pub fn AccessTokensCard() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_tokens());
    let me = expect_context::<CurrentUser>();
    let my_role = Signal::derive(move || me.get().and_then(|r| r.ok()).flatten().map_or(Role::User, |u| u.role));
    let new_open = RwSignal::new(false);
    let revoke_target = RwSignal::new(None::<AccessTokenView>);
    view! {
        <section class="card flush" data-testid="access-tokens">
            <div class="card-head padded">
                <h2 class="card-title">"Access tokens"</h2>
                <button class="button small" type="button" on:click=move |_| new_open.set(true)>"New access token"</button>
            </div>
            <p class="muted small card-note">"For scripts that manage H-MAS through /api (send "<code>"Authorization: Bearer hmas-at-…"</code>"); they cannot call models — that is what API keys are for."</p>
            {move || revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBanner error=e/> })}
            <Transition fallback=|| view! { <SkeletonRows rows=2/> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        let list = tokens.await?;
                        let admin = my_role.get_untracked() == Role::Admin;
                        Ok::<_, AppError>(if list.is_empty() {
                            view! { <EmptyState title="No access tokens" body="Create one for a script or a CI job; it expires after the days you choose."/> }.into_any()
                        } else {
                            view! {
                                <table class="table" data-testid="tokens-table">
                                    <thead><tr>
                                        <th>"Name"</th><th>"Token"</th>
                                        {admin.then(|| view! { <th>"Owner"</th> })}
                                        <th>"Role"</th><th>"Expires"</th><th>"Last used"</th><th>"Status"</th>
                                        <th class="actions-col"><span class="sr-only">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|t| view! { <TokenRow t admin revoke_target/> }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
        <NewTokenDialog open=new_open action=create my_role/>
        <RevokeTokenDialog target=revoke_target action=revoke/>
    }
}

#[component]
fn TokenRow(t: AccessTokenView, admin: bool, revoke_target: RwSignal<Option<AccessTokenView>>) -> impl IntoView {
    let badge = match t.status {
        TokenStatus::Active => "badge ok",
        TokenStatus::Expired => "badge warn",
        TokenStatus::Revoked => "badge muted",
    };
    let active = t.status == TokenStatus::Active;
    let target = t.clone();
    view! {
        <tr data-token=t.name.clone() class:row-disabled=!active>
            <td><div class="cell-main">{t.name.clone()}</div><div class="cell-sub muted">{format!("created {}", format_utc(t.created_at))}</div></td>
            <td class="nowrap"><code>{format!("{}…", t.prefix)}</code></td>
            {admin.then(|| view! { <td>{t.owner.clone()}</td> })}
            <td>{t.role.as_str()}</td>
            <td class="muted nowrap">{format_utc(t.expires_at)}</td>
            <td class="muted nowrap">{t.last_used_at.map(format_utc).unwrap_or_else(|| "Never".into())}</td>
            <td><span class=badge>{t.status.label()}</span></td>
            <td class="actions-col">
                {active.then(|| view! {
                    <button class="button small danger" type="button" aria-label=format!("Revoke {}", t.name)
                        on:click=move |_| revoke_target.set(Some(target.clone()))>"Revoke"</button>
                })}
            </td>
        </tr>
    }
}

#[component]
fn NewTokenDialog(open: RwSignal<bool>, action: ServerAction<CreateToken>, my_role: Signal<Role>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(String::new());
    let days = RwSignal::new("30".to_string());
    let local_error = RwSignal::new(None::<AppError>);
    let error = Signal::derive(move || local_error.get().or_else(|| action.value().get().and_then(|r| r.err())));
    let created = Signal::derive(move || action.value().get().and_then(|r| r.ok()));
    Effect::new(move |_| {
        if open.get() {
            name.set(String::new());
            role.set(my_role.get_untracked().as_str().to_string());
            days.set("30".into());
            local_error.set(None);
            action.value().set(None);
        }
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let input = match days.get_untracked().trim().parse::<u32>() {
            Err(_) => Err(AppError::field("expires_in_days", "a whole number of days")),
            Ok(d) => Ok(NewAccessToken {
                name: name.get_untracked().trim().to_string(),
                role: Role::parse(&role.get_untracked()).ok(),
                expires_in_days: d,
            }),
        }
        .and_then(|i| i.validate(my_role.get_untracked()).map(|_| i));
        match input {
            Err(e) => local_error.set(Some(e)),
            Ok(input) => {
                local_error.set(None);
                action.dispatch(CreateToken { input });
            }
        }
    };
    let roles = Signal::derive(move || {
        Role::ALL
            .into_iter()
            .filter(|r| *r <= my_role.get())
            .map(|r| (r.as_str().to_string(), format!("{} — {}", r.as_str(), r.describe())))
            .collect::<Vec<_>>()
    });
    view! {
        <Dialog title="New access token" open held=Signal::derive(move || created.get().is_some())>
            <Show
                when=move || created.get().is_some()
                fallback=move || view! {
                    <form class="form" on:submit=on_submit novalidate>
                        <FormError error/>
                        <TextField name="name" label="Name" value=name error autofocus=true hint="What uses it, e.g. \"nightly deploy job\"."/>
                        {move || view! { <SelectField name="role" label="Acts as" value=role options=roles.get() error/> }}
                        <TextField name="expires_in_days" label="Expires after (days)" value=days error kind="number" hint="1 to 365."/>
                        <div class="form-actions">
                            <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                            <button class="button primary" type="submit" disabled=move || action.pending().get()>"Create token"</button>
                        </div>
                    </form>
                }
            >
                {move || created.get().map(|c| view! {
                    <OneTimeSecret secret=c.secret.clone() what="token" testid="new-token-secret" open
                        summary=format!("{} · acts as {} · expires {}", c.token.name, c.token.role.as_str(), format_utc(c.token.expires_at))/>
                })}
            </Show>
        </Dialog>
    }
}

#[component]
fn RevokeTokenDialog(target: RwSignal<Option<AccessTokenView>>, action: ServerAction<RevokeToken>) -> impl IntoView {
    let open = open_for(target);
    let name = move || target.get().map(|t| t.name).unwrap_or_default();
    let revoke = Callback::new(move |_| {
        if let Some(t) = target.get_untracked() {
            action.dispatch(RevokeToken { id: t.id });
        }
    });
    view! {
        <ConfirmDialog title="Revoke access token" open confirm="Revoke token" pending=action.pending()
            done=Signal::derive(move || matches!(action.value().get(), Some(Ok(_)))) on_confirm=revoke>
            <p>"Revoke "<strong>{name}</strong>"? Scripts using it are refused from now on. This cannot be undone."</p>
        </ConfirmDialog>
    }
}
