//! Chat with a deployed model through the gateway, as the signed-in user: streamed tokens as they
//! arrive, a stop button that cancels the upstream, and per-answer time to first token and speed.
use crate::api::keys::chat_models;
use crate::components::feedback::{error_fallback, EmptyState};
use crate::components::layout::PageHeader;
use crate::components::poll::use_tick;
use crate::error::AppError;
use crate::models::apikey::ChatModel;
use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use leptos_meta::Title;
use send_wrapper::SendWrapper;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
// Stopped and failed answers happen only in the browser, where answers stream.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum State {
    Streaming,
    Done,
    Stopped,
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
struct Meta {
    state: State,
    ttft_ms: Option<f64>,
    tokens_per_s: Option<f64>,
    tokens: Option<u64>,
}

#[derive(Clone, Copy)]
struct Turn {
    user: bool,
    text: RwSignal<String>,
    meta: RwSignal<Meta>,
}

/// What the model needs to continue the conversation: the system prompt, then every exchange
/// that produced text.
fn messages(system: &str, turns: &[Turn]) -> Vec<Value> {
    let mut out = Vec::new();
    if !system.trim().is_empty() {
        out.push(json!({"role": "system", "content": system}));
    }
    for t in turns {
        let text = t.text.get_untracked();
        if !text.is_empty() {
            out.push(json!({"role": if t.user { "user" } else { "assistant" }, "content": text}));
        }
    }
    out
}

/// One event of a streamed answer.
#[derive(Debug, PartialEq)]
pub enum Piece {
    Text(String),
    Usage(u64),
    Error(String),
    Done,
}

/// Reads one SSE event's `data:` payload.
pub fn parse_event(event: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    for line in event.lines() {
        let Some(data) = line.strip_prefix("data:").map(str::trim) else { continue };
        if data == "[DONE]" {
            out.push(Piece::Done);
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else { continue };
        if let Some(m) = v.pointer("/error/message").and_then(Value::as_str) {
            out.push(Piece::Error(m.to_string()));
        }
        if let Some(t) = v.pointer("/choices/0/delta/content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            out.push(Piece::Text(t.to_string()));
        }
        if let Some(n) = v.pointer("/usage/completion_tokens").and_then(Value::as_u64) {
            out.push(Piece::Usage(n));
        }
    }
    out
}

/// Cancels the answer being streamed (browser-only: it holds the fetch's AbortController).
type Stop = SendWrapper<Box<dyn Fn()>>;

#[component]
pub fn PlaygroundPage() -> impl IntoView {
    let tick = use_tick(Duration::from_secs(10));
    let models = Resource::new(move || tick.get(), |_| chat_models());
    view! {
        <Title text="Playground"/>
        <PageHeader title="Playground" subtitle="Chat with a deployed model through the gateway, as you."/>
        <Transition fallback=|| view! { <div class="card"><p class="muted">"Loading models…"</p></div> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    let list = models.await?;
                    Ok::<_, AppError>(if list.is_empty() {
                        view! {
                            <div class="card">
                                <EmptyState title="No models deployed"
                                    body="Deploy a model under Deployments; it appears here when it is running."/>
                            </div>
                        }.into_any()
                    } else {
                        view! { <Chat models=list/> }.into_any()
                    })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn Chat(models: Vec<ChatModel>) -> impl IntoView {
    let first = models.iter().find(|m| m.ready).or(models.first()).map(|m| m.deployment.clone()).unwrap_or_default();
    let selected = RwSignal::new(first);
    let system = RwSignal::new("You are a helpful assistant.".to_string());
    let temperature = RwSignal::new(0.7f64);
    let max_tokens = RwSignal::new("256".to_string());
    let turns = RwSignal::new(Vec::<Turn>::new());
    let draft = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    // Thread-bound values exist only in the browser: the server renders this page on any worker
    // thread and drops it on another, which local storage would refuse with a panic.
    let stop = StoredValue::new(None::<Stop>);
    let models = StoredValue::new(models);
    let model_of = move |d: &str| models.with_value(|m| m.iter().find(|x| x.deployment == d).cloned());
    let ready = Signal::derive(move || model_of(&selected.get()).is_some_and(|m| m.ready));

    // Turns belong to the conversation, not to whatever button sent them: a Send button re-rendered
    // while busy would otherwise take the new answer's signals with it.
    let owner = StoredValue::new(Owner::current().expect("an owner"));
    let send = move || {
        let owner = owner.get_value();
        let text = draft.get_untracked().trim().to_string();
        if text.is_empty() || busy.get_untracked() || !ready.get_untracked() {
            return;
        }
        let Some(m) = model_of(&selected.get_untracked()) else { return };
        let new_turn = |user: bool, text: String, state: State| {
            owner.with(|| Turn {
                user,
                text: RwSignal::new(text),
                meta: RwSignal::new(Meta { state, ttft_ms: None, tokens_per_s: None, tokens: None }),
            })
        };
        let user = new_turn(true, text, State::Done);
        turns.update(|t| t.push(user));
        draft.set(String::new());
        let msgs = messages(&system.get_untracked(), &turns.get_untracked());
        let answer = new_turn(false, String::new(), State::Streaming);
        turns.update(|t| t.push(answer));
        let mut body = json!({"model": m.model, "messages": msgs, "stream": true, "stream_options": {"include_usage": true},
                              "temperature": temperature.get_untracked()});
        if let Ok(n) = max_tokens.get_untracked().trim().parse::<u64>() {
            body["max_tokens"] = json!(n);
        }
        busy.set(true);
        let url = format!("/api/inference/{}/v1/chat/completions", m.deployment);
        start_stream(url, body.to_string(), answer, busy, stop);
    };

    let numbered = move || turns.get().into_iter().enumerate().collect::<Vec<_>>();
    let on_key = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() {
            ev.prevent_default();
            send();
        }
    };

    let settings = view! {
            <aside class="card playground-settings">
                <div class="field">
                    <label for="pg-model">"Model"</label>
                    <select id="pg-model" bind:value=selected>
                        {models.get_value().into_iter().map(|m| {
                            let label = if m.ready { format!("{} ({})", m.model, m.deployment) } else { format!("{} ({}) — not ready", m.model, m.deployment) };
                            view! { <option value=m.deployment.clone() selected=selected.get_untracked() == m.deployment>{label}</option> }
                        }).collect_view()}
                    </select>
                    <Show when=move || !ready.get()>
                        <small class="field-error">"This deployment has no ready replica yet."</small>
                    </Show>
                </div>
                <div class="field">
                    <label for="pg-system">"System prompt"</label>
                    <textarea id="pg-system" rows="4" bind:value=system></textarea>
                </div>
                <div class="field">
                    <label for="pg-temp">"Temperature "<span class="muted">{move || format!("{:.1}", temperature.get())}</span></label>
                    <input id="pg-temp" type="range" min="0" max="2" step="0.1"
                        prop:value=move || temperature.get().to_string()
                        on:input=move |ev| if let Ok(v) = event_target_value(&ev).parse() { temperature.set(v) }/>
                </div>
                <div class="field">
                    <label for="pg-max">"Max tokens"</label>
                    <input id="pg-max" type="number" min="1" max="32768" bind:value=max_tokens/>
                </div>
                <button class="button" type="button" disabled=move || busy.get() || turns.with(|t| t.is_empty())
                    on:click=move |_| turns.set(Vec::new())>"Clear conversation"</button>
            </aside>
    }
    .into_any();
    let chat = view! {
            <section class="card playground-chat">
                <div class="messages" data-testid="messages" aria-live="polite">
                    <Show when=move || turns.with(|t| t.is_empty())>
                        <p class="muted empty-chat">"Ask something. Answers stream in as the model writes them; Stop cancels the generation."</p>
                    </Show>
                    <For each=numbered key=|(i, _)| *i let:item>
                        <Message turn=item.1/>
                    </For>
                </div>
                <div class="composer">
                    <textarea rows="2" placeholder="Message (Enter to send, Shift+Enter for a new line)" aria-label="Message"
                        bind:value=draft on:keydown=on_key data-testid="prompt"></textarea>
                    {move || if busy.get() {
                        view! { <button class="button danger" type="button" data-testid="stop"
                            on:click=move |_| stop.with_value(|s| if let Some(f) = s { (f.as_ref())() })>"Stop"</button> }.into_any()
                    } else {
                        view! { <button class="button primary" type="button" data-testid="send"
                            disabled=move || !ready.get() || draft.with(|d| d.trim().is_empty())
                            on:click=move |_| send()>"Send"</button> }.into_any()
                    }}
                </div>
            </section>
    }
    .into_any();
    view! { <div class="playground">{settings}{chat}</div> }
}

#[component]
fn Message(turn: Turn) -> impl IntoView {
    let meta = turn.meta;
    let stats = move || {
        let m = meta.get();
        let mut parts = Vec::new();
        if let Some(t) = m.ttft_ms {
            parts.push(format!("TTFT {t:.0} ms"));
        }
        if let Some(r) = m.tokens_per_s {
            parts.push(format!("{r:.1} tokens/s"));
        }
        if let Some(n) = m.tokens {
            parts.push(format!("{n} tokens"));
        }
        match &m.state {
            State::Stopped => parts.push("stopped".into()),
            State::Streaming => parts.push("writing…".into()),
            _ => {}
        }
        parts.join(" · ")
    };
    view! {
        <div class=if turn.user { "msg user" } else { "msg assistant" } data-testid=if turn.user { "msg-user" } else { "msg-assistant" }>
            <div class="msg-text">{move || turn.text.get()}
                {move || (meta.get().state == State::Streaming).then(|| view! { <span class="caret" aria-hidden="true"></span> })}
            </div>
            {move || match meta.get().state {
                State::Failed(e) => view! { <div class="msg-error" role="alert">{e}</div> }.into_any(),
                _ if turn.user => ().into_any(),
                _ => view! { <div class="msg-meta" data-testid="msg-meta">{stats}</div> }.into_any(),
            }}
        </div>
    }
}

#[cfg(not(feature = "hydrate"))]
fn start_stream(_: String, _: String, _: Turn, _: RwSignal<bool>, _: StoredValue<Option<Stop>>) {}

#[cfg(feature = "hydrate")]
fn start_stream(url: String, body: String, answer: Turn, busy: RwSignal<bool>, stop: StoredValue<Option<Stop>>) {
    let Ok(controller) = web_sys::AbortController::new() else {
        answer.meta.update(|m| m.state = State::Failed("this browser cannot cancel requests".into()));
        busy.set(false);
        return;
    };
    let signal = controller.signal();
    stop.set_value(Some(SendWrapper::new(Box::new(move || controller.abort()))));
    leptos::task::spawn_local(async move {
        let now = || window().performance().map(|p| p.now()).unwrap_or(0.0);
        let started = now();
        let mut first: Option<f64> = None;
        let mut pieces = 0u64;
        let mut usage = None;
        let result = stream::run(&url, &body, &signal, |piece| match piece {
            Piece::Text(t) => {
                if first.is_none() {
                    let t0 = now();
                    first = Some(t0);
                    answer.meta.update(|m| m.ttft_ms = Some(t0 - started));
                }
                pieces += 1;
                answer.text.update(|s| s.push_str(&t));
            }
            Piece::Usage(n) => usage = Some(n),
            Piece::Error(e) => answer.meta.update(|m| m.state = State::Failed(e)),
            Piece::Done => {}
        })
        .await;
        let tokens = usage.unwrap_or(pieces);
        let elapsed = first.map(|f| (now() - f) / 1000.0).unwrap_or(0.0);
        answer.meta.update(|m| {
            m.tokens = Some(tokens);
            if elapsed > 0.0 && tokens > 1 {
                m.tokens_per_s = Some((tokens - 1) as f64 / elapsed);
            }
            if m.state == State::Streaming {
                m.state = match result {
                    Ok(()) => State::Done,
                    Err(stream::Failure::Aborted) => State::Stopped,
                    Err(stream::Failure::Other(e)) => State::Failed(e),
                };
            }
        });
        stop.set_value(None);
        busy.set(false);
    });
}

#[cfg(feature = "hydrate")]
mod stream {
    use super::{parse_event, Piece};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    pub enum Failure {
        Aborted,
        Other(String),
    }

    fn fail(e: JsValue) -> Failure {
        let name = js_sys::Reflect::get(&e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
        if name == "AbortError" {
            return Failure::Aborted;
        }
        let msg = js_sys::Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string());
        Failure::Other(msg.unwrap_or_else(|| format!("{e:?}")))
    }

    /// POSTs `body` and calls `on` for every event as it arrives; cancelled through `signal`.
    pub async fn run(
        url: &str,
        body: &str,
        signal: &web_sys::AbortSignal,
        mut on: impl FnMut(Piece),
    ) -> Result<(), Failure> {
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(&JsValue::from_str(body));
        let headers = web_sys::Headers::new().map_err(fail)?;
        headers.set("content-type", "application/json").map_err(fail)?;
        init.set_headers(&headers);
        init.set_signal(Some(signal));
        let resp: web_sys::Response = JsFuture::from(leptos::prelude::window().fetch_with_str_and_init(url, &init))
            .await
            .map_err(fail)?
            .dyn_into()
            .map_err(fail)?;
        if !resp.ok() {
            let text = match resp.text() {
                Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
                Err(_) => String::new(),
            };
            let msg = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(String::from))
                .unwrap_or_else(|| format!("HTTP {}", resp.status()));
            return Err(Failure::Other(msg));
        }
        let reader: web_sys::ReadableStreamDefaultReader = resp
            .body()
            .ok_or_else(|| Failure::Other("the answer has no body".into()))?
            .get_reader()
            .dyn_into()
            .map_err(|o: js_sys::Object| fail(o.into()))?;
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = JsFuture::from(reader.read()).await.map_err(fail)?;
            if js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
                break;
            }
            let value: js_sys::Uint8Array =
                js_sys::Reflect::get(&chunk, &"value".into()).map_err(fail)?.dyn_into().map_err(fail)?;
            buf.extend_from_slice(&value.to_vec());
            // Events end with a blank line; a partial one waits for the next chunk.
            while let Some(i) = buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buf.drain(..i + 2).collect();
                for p in parse_event(&String::from_utf8_lossy(&event)) {
                    on(p);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events() {
        let e = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
        assert_eq!(parse_event(e), vec![Piece::Text("Hi".into())]);
        assert_eq!(parse_event("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}"), vec![]);
        assert_eq!(parse_event("data: {\"choices\":[],\"usage\":{\"completion_tokens\":7}}"), vec![Piece::Usage(7)]);
        assert_eq!(parse_event("data: {\"error\":{\"message\":\"gone\"}}"), vec![Piece::Error("gone".into())]);
        assert_eq!(parse_event("data: [DONE]"), vec![Piece::Done]);
    }
}
