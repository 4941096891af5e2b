use crate::api::users::{
    list_lockouts, list_users, ClearLockout, CreateUser, ResetUserPassword, SetUserDisabled, SetUserRole,
};
use crate::components::dialog::{open_for, Dialog};
use crate::components::feedback::{error_fallback, EmptyState, ErrorBanner, SkeletonRows};
use crate::components::form::{FormError, SelectField, TextField};
use crate::components::layout::PageHeader;
use crate::components::time::{format_utc, format_utc_seconds};
use crate::error::AppError;
use crate::models::user::{Lockout, NewUser, Role, SetPasswordInput, UserView};
use crate::pages::shell::CurrentUser;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_meta::Title;

fn role_options() -> Vec<(String, String)> {
    Role::ALL.iter().map(|r| (r.as_str().to_string(), format!("{} — {}", r.as_str(), r.describe()))).collect()
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let set_disabled = ServerAction::<SetUserDisabled>::new();
    let reset = ServerAction::<ResetUserPassword>::new();
    let users = Resource::new(
        move || (create.version().get(), set_role.version().get(), set_disabled.version().get(), reset.version().get()),
        |_| list_users(),
    );
    let me = expect_context::<CurrentUser>();
    let me_id = Signal::derive(move || me.get().and_then(|r| r.ok()).flatten().map(|u| u.id).unwrap_or_default());

    // Errors from the row actions (forms show their own).
    let row_error = Signal::derive(move || {
        set_role.value().get().and_then(|r| r.err()).or_else(|| set_disabled.value().get().and_then(|r| r.err()))
    });

    let new_open = RwSignal::new(false);
    let reset_for = RwSignal::new(None::<UserView>);

    view! {
        <Title text="Users"/>
        <PageHeader title="Users" subtitle="Who can sign in, and what their role lets them do.">
            <button class="button primary" type="button" on:click=move |_| new_open.set(true)>"New user"</button>
        </PageHeader>
        {move || row_error.get().map(|e| view! { <ErrorBanner error=e/> })}
        <div class="card flush">
            <Transition fallback=|| view! { <SkeletonRows rows=4/> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        let list = users.await?;
                        Ok::<_, AppError>(view! {
                            <table class="table" data-testid="users-table">
                                <thead>
                                    <tr>
                                        <th>"User"</th>
                                        <th>"Role"</th>
                                        <th>"Status"</th>
                                        <th>"Created"</th>
                                        <th>"Last sign-in"</th>
                                        <th class="actions-col"><span class="sr-only">"Actions"</span></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list.into_iter().map(|u| view! {
                                        <UserRow user=u me_id set_role set_disabled reset_for/>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </div>
        <LockoutsCard/>
        <NewUserDialog open=new_open action=create/>
        <ResetPasswordDialog target=reset_for action=reset/>
    }
}

/// Accounts and addresses refused sign-in for now after wrong passwords, each with a way out.
#[component]
fn LockoutsCard() -> impl IntoView {
    let clear = ServerAction::<ClearLockout>::new();
    let lockouts = Resource::new(move || clear.version().get(), |_| list_lockouts());
    view! {
        <section class="card flush" data-testid="lockouts">
            <h2 class="card-title padded">"Sign-in lockouts"</h2>
            {move || clear.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBanner error=e/> })}
            <Transition fallback=|| view! { <SkeletonRows rows=2/> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        let list = lockouts.await?;
                        Ok::<_, AppError>(if list.is_empty() {
                            view! {
                                <EmptyState title="No lockouts" body="After repeated wrong passwords an account or address is refused sign-in for a while; it shows here, and you can let it in again."/>
                            }.into_any()
                        } else {
                            view! {
                                <table class="table">
                                    <thead><tr><th>"Who"</th><th>"Kind"</th><th>"Failures"</th><th>"Locked until"</th><th class="actions-col"><span class="sr-only">"Actions"</span></th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|l| view! { <LockoutRow l clear/> }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

#[component]
fn LockoutRow(l: Lockout, clear: ServerAction<ClearLockout>) -> impl IntoView {
    let (kind, subject) = (l.kind, l.subject.clone());
    view! {
        <tr data-lockout=l.subject.clone()>
            <td class="cell-main">{l.subject.clone()}</td>
            <td>{l.kind.label()}</td>
            <td>{l.failures}</td>
            <td class="muted nowrap">{format_utc_seconds(l.until)}</td>
            <td class="actions-col">
                <button class="button small" type="button" aria-label=format!("Let {} sign in again", l.subject)
                    on:click=move |_| { clear.dispatch(ClearLockout { kind, subject: subject.clone() }); }>"Clear"</button>
            </td>
        </tr>
    }
}

#[component]
fn UserRow(
    user: UserView,
    me_id: Signal<String>,
    set_role: ServerAction<SetUserRole>,
    set_disabled: ServerAction<SetUserDisabled>,
    reset_for: RwSignal<Option<UserView>>,
) -> impl IntoView {
    let id = user.id.clone();
    let is_me = {
        let id = id.clone();
        Signal::derive(move || me_id.get() == id)
    };
    let role_id = id.clone();
    let toggle_id = id.clone();
    let disabled = user.disabled;
    let row_user = user.clone();
    view! {
        <tr class:row-disabled=disabled data-username=user.username.clone()>
            <td>
                <div class="cell-main">{user.username.clone()}</div>
                <div class="cell-sub muted">{user.display_name.clone()}</div>
            </td>
            <td>
                <select
                    class="inline-select"
                    aria-label=format!("Role of {}", user.username)
                    disabled=move || is_me.get()
                    on:change=move |ev| {
                        if let Ok(role) = Role::parse(&event_target_value(&ev)) {
                            set_role.dispatch(SetUserRole { id: role_id.clone(), role });
                        }
                    }
                >
                    {Role::ALL.iter().map(|r| view! {
                        <option value=r.as_str() selected=*r == user.role>{r.as_str()}</option>
                    }).collect_view()}
                </select>
            </td>
            <td>
                {if disabled {
                    view! { <span class="badge muted">"Disabled"</span> }.into_any()
                } else {
                    view! { <span class="badge ok">"Active"</span> }.into_any()
                }}
            </td>
            <td class="muted nowrap">{format_utc(user.created_at)}</td>
            <td class="muted nowrap">{user.last_login_at.map(format_utc).unwrap_or_else(|| "never".into())}</td>
            <td class="actions-col">
                <button class="button small" type="button" on:click=move |_| reset_for.set(Some(row_user.clone()))>
                    "Reset password"
                </button>
                <button
                    class="button small"
                    class:danger=!disabled
                    type="button"
                    disabled=move || is_me.get()
                    title=move || if is_me.get() { "You cannot disable yourself" } else { "" }
                    on:click=move |_| { set_disabled.dispatch(SetUserDisabled { id: toggle_id.clone(), disabled: !disabled }); }
                >
                    {if disabled { "Enable" } else { "Disable" }}
                </button>
            </td>
        </tr>
    }
}

#[component]
fn NewUserDialog(open: RwSignal<bool>, action: ServerAction<CreateUser>) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let display_name = RwSignal::new(String::new());
    let role = RwSignal::new(Role::User.as_str().to_string());
    let password = RwSignal::new(String::new());
    let local_error = RwSignal::new(None::<AppError>);
    let error = Signal::derive(move || local_error.get().or_else(|| action.value().get().and_then(|r| r.err())));

    Effect::new(move |_| {
        if let Some(Ok(_)) = action.value().get() {
            open.set(false);
            for s in [username, display_name, password] {
                s.set(String::new());
            }
            action.value().set(None);
        }
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let input = NewUser {
            username: username.get_untracked().trim().to_string(),
            display_name: display_name.get_untracked().trim().to_string(),
            role: Role::parse(&role.get_untracked()).unwrap_or(Role::User),
            password: password.get_untracked(),
        };
        match input.validate() {
            Err(e) => local_error.set(Some(e)),
            Ok(()) => {
                local_error.set(None);
                action.dispatch(CreateUser {
                    username: input.username,
                    display_name: input.display_name,
                    role: input.role,
                    password: input.password,
                });
            }
        }
    };

    view! {
        <Dialog title="New user" open>
            <form class="form" on:submit=on_submit novalidate>
                <FormError error/>
                <TextField name="username" label="Username" value=username error autofocus=true
                    hint="Lowercase letters, digits, '-', '_' and '.'; used to sign in."/>
                <TextField name="display_name" label="Display name (optional)" value=display_name error/>
                <SelectField name="role" label="Role" value=role options=role_options() error/>
                <TextField name="password" label="Initial password" kind="password" value=password error
                    autocomplete="new-password" hint="At least 10 characters. Share it with the person once."/>
                <div class="form-actions">
                    <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                    <button class="button primary" type="submit" disabled=move || action.pending().get()>"Create user"</button>
                </div>
            </form>
        </Dialog>
    }
}

#[component]
fn ResetPasswordDialog(target: RwSignal<Option<UserView>>, action: ServerAction<ResetUserPassword>) -> impl IntoView {
    let open = open_for(target);
    let password = RwSignal::new(String::new());
    let local_error = RwSignal::new(None::<AppError>);
    let error = Signal::derive(move || local_error.get().or_else(|| action.value().get().and_then(|r| r.err())));
    let generated = Signal::derive(move || action.value().get().and_then(|r| r.ok()).flatten());
    let done = Signal::derive(move || matches!(action.value().get(), Some(Ok(_))));

    // Each opening starts clean.
    Effect::new(move |_| {
        if target.with(Option::is_some) {
            password.set(String::new());
            local_error.set(None);
            action.value().set(None);
        }
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Some(u) = target.get_untracked() else {
            return;
        };
        let input = SetPasswordInput { id: u.id, password: password.get_untracked() };
        match input.validate() {
            Err(e) => local_error.set(Some(e)),
            Ok(()) => {
                local_error.set(None);
                action.dispatch(ResetUserPassword { id: input.id, password: input.password });
            }
        }
    };
    let title =
        Signal::derive(move || target.get().map(|u| format!("Reset password of {}", u.username)).unwrap_or_default());

    view! {
        <Dialog title=title.get_untracked() open>
            <Show
                when=move || done.get()
                fallback=move || view! {
                    <form class="form" on:submit=on_submit novalidate>
                        <p class="muted">{move || title.get()}". Their sessions end; they sign in with the new password."</p>
                        <FormError error/>
                        <TextField name="password" label="New password" kind="password" value=password error
                            autocomplete="new-password" autofocus=true hint="Leave empty to generate a strong one."/>
                        <div class="form-actions">
                            <button class="button" type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                            <button class="button primary" type="submit" disabled=move || action.pending().get()>"Reset password"</button>
                        </div>
                    </form>
                }
            >
                <div class="form">
                    {move || match generated.get() {
                        Some(pw) => view! {
                            <p>"The new password is shown only this once:"</p>
                            <code class="secret" data-testid="generated-password">{pw}</code>
                        }.into_any(),
                        None => view! { <p>"The password was changed."</p> }.into_any(),
                    }}
                    <div class="form-actions">
                        <button class="button primary" type="button" on:click=move |_| open.set(false)>"Done"</button>
                    </div>
                </div>
            </Show>
        </Dialog>
    }
}
