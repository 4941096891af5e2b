//! The address the browser reached H-MAS at: what copied examples must use. The server renders a
//! placeholder (it cannot know which of its names the user typed) that hydration replaces.
use leptos::prelude::*;

pub fn page_origin() -> RwSignal<String> {
    let origin = RwSignal::new("https://<this host>".to_string());
    Effect::new(move |_| {
        if let Ok(o) = window().location().origin() {
            origin.set(o);
        }
    });
    origin
}
