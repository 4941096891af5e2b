use leptos::prelude::*;
use std::time::Duration;

/// A counter that goes up every `every` in the browser (never on the server), for resources
/// that should stay live without reloading the page.
pub fn use_tick(every: Duration) -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(move || set_tick.update(|t| *t += 1), every) {
            on_cleanup(move || h.clear());
        }
    });
    tick
}
