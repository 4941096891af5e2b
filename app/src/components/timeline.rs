//! The failover timeline: what happens after a cluster fails, drawn to scale from the policy —
//! failure → toleration → eviction and reschedule (→ grace period) → healthy elsewhere. Mini on
//! cards, full in the form and in a drill, where a "now" line walks along it.
use crate::models::policy::{failover_timeline, seconds_label, FailoverPolicy, PurgeMode, HUB_DETECTION_SECONDS};
use leptos::prelude::*;

/// Time a replica takes to serve on another cluster, when nothing measured says otherwise.
pub const RESTART_ESTIMATE_S: f64 = 60.0;

fn span_label(s: f64) -> String {
    if s >= 90.0 {
        format!("{:.1} min", s / 60.0).replace(".0 ", " ")
    } else {
        format!("{s:.0} s")
    }
}

#[component]
pub fn FailoverTimeline(
    #[prop(into)] policy: Signal<FailoverPolicy>,
    #[prop(optional)] mini: bool,
    /// Seconds since the failure, in a drill.
    #[prop(optional, into)]
    now: Option<Signal<Option<f64>>>,
    /// Seconds from the failure to serving elsewhere, once it happened.
    #[prop(optional, into)]
    recovered: Option<Signal<Option<f64>>>,
) -> impl IntoView {
    let (w, h) = if mini { (280.0, 34.0) } else { (640.0, 118.0) };
    let pad = if mini { 6.0 } else { 14.0 };
    move || {
        let p = policy.get();
        let now = now.and_then(|n| n.get());
        let recovered = recovered.and_then(|r| r.get());
        let restart = RESTART_ESTIMATE_S;
        let stages = failover_timeline(&p, restart);
        let healthy = stages.iter().find(|s| s.key == "healthy").map(|s| s.start).unwrap_or(0.0);
        let d = HUB_DETECTION_SECONDS as f64;
        let grace_end = if p.purge_mode == PurgeMode::Gracefully && p.enabled {
            d + p.toleration_seconds as f64 + p.grace_period_seconds as f64
        } else {
            0.0
        };
        let span = [healthy, grace_end, now.unwrap_or(0.0), recovered.unwrap_or(0.0), 10.0]
            .into_iter()
            .fold(0.0_f64, f64::max)
            * 1.08;
        let x = move |s: f64| pad + (w - 2.0 * pad) * (s / span).clamp(0.0, 1.0);
        let bar_y = if mini { 12.0 } else { 40.0 };
        let bar_h = if mini { 10.0 } else { 16.0 };
        let t = d + p.toleration_seconds as f64;
        let aria = if p.enabled {
            format!(
                "Failover timeline: the hub marks the cluster NotReady after about {}, tolerates it {}, then {} and reschedule; healthy elsewhere after about {}",
                span_label(d),
                seconds_label(p.toleration_seconds),
                match p.purge_mode {
                    PurgeMode::Directly => "evict at once",
                    PurgeMode::Gracefully => "keep the old copy during the grace period",
                    PurgeMode::Never => "keep the old copy",
                },
                span_label(healthy)
            )
        } else {
            "Failover disabled: workloads wait for their cluster to recover".to_string()
        };
        if !p.enabled {
            return view! {
                <svg class="timeline" class:mini=mini viewBox=format!("0 0 {w} {h}") role="img" aria-label=aria data-testid="failover-timeline">
                    <line class="axis" x1=pad y1=bar_y + bar_h / 2.0 x2=w - pad y2=bar_y + bar_h / 2.0/>
                    <circle class="dot danger" cx=pad cy=bar_y + bar_h / 2.0 r="5"/>
                    {(!mini).then(|| view! {
                        <text x=pad + 12.0 y=bar_y - 8.0 class="tl-label">"Failure — failover disabled: waits for the cluster to recover"</text>
                    })}
                </svg>
            }.into_any();
        }
        let grace = (grace_end > 0.0).then(|| {
            let y = bar_y + bar_h + 4.0;
            view! {
                <rect class="seg grace" x=x(t) y=y width=(x(grace_end) - x(t)).max(1.0) height=if mini { 4.0 } else { 7.0 } rx="2">
                    <title>{format!("Grace period {}: the old copy is kept until the new one is healthy", seconds_label(p.grace_period_seconds))}</title>
                </rect>
            }
        });
        let labels = (!mini).then(|| {
            let y_top = bar_y - 10.0;
            let y_under = bar_y + bar_h + 22.0;
            view! {
                <text x=x(0.0) y=y_top class="tl-label">"Failure"</text>
                <text x=x(healthy) y=y_top class="tl-label" text-anchor="end">{format!("Healthy elsewhere ~{}", span_label(healthy))}</text>
                {(x(d) - x(0.0) > 70.0).then(|| view! {
                    <text x=x(d / 2.0) y=bar_y + bar_h - 4.0 class="tl-in" text-anchor="middle">{format!("hub notices ~{}", span_label(d))}</text>
                })}
                {(x(t) - x(d) > 70.0).then(|| view! {
                    <text x=x((d + t) / 2.0) y=bar_y + bar_h - 4.0 class="tl-in" text-anchor="middle">{format!("tolerate {}", span_label(t - d))}</text>
                })}
                <text x=x(t) y=y_under class="tl-sub">{format!(
                    "{} at {} · ~{} to start elsewhere",
                    match p.purge_mode {
                        PurgeMode::Directly => "Evicted and rescheduled",
                        PurgeMode::Gracefully => "Rescheduled (old copy kept)",
                        PurgeMode::Never => "Rescheduled (old copy never removed)",
                    },
                    span_label(t),
                    span_label(restart)
                )}</text>
                {(grace_end > 0.0).then(|| view! {
                    <text x=x(grace_end) y=y_under + 16.0 class="tl-sub" text-anchor="end">{format!("grace period ends {}", span_label(grace_end))}</text>
                })}
            }
        });
        let now_line = now.map(|n| {
            view! {
                <line class="now" x1=x(n) y1=2.0 x2=x(n) y2=h - 2.0/>
                {(!mini).then(|| view! { <text x=x(n) + 4.0 y=h - 4.0 class="tl-now">{format!("now {}", span_label(n))}</text> })}
            }
        });
        let recovered_mark = recovered.map(|r| {
            view! {
                <circle class="dot ok solid" cx=x(r) cy=bar_y + bar_h / 2.0 r="7">
                    <title>{format!("Served again after {}", span_label(r))}</title>
                </circle>
            }
        });
        view! {
            <svg class="timeline" class:mini=mini viewBox=format!("0 0 {w} {h}") role="img" aria-label=aria data-testid="failover-timeline">
                <line class="axis" x1=pad y1=bar_y + bar_h / 2.0 x2=w - pad y2=bar_y + bar_h / 2.0/>
                <rect class="seg detect" x=x(0.0) y=bar_y width=(x(d) - x(0.0)).max(1.0) height=bar_h rx="3">
                    <title>{format!("The hub notices: NotReady about {} after the cluster's last answer", span_label(d))}</title>
                </rect>
                <rect class="seg toleration" x=x(d) y=bar_y width=(x(t) - x(d)).max(1.0) height=bar_h rx="3">
                    <title>{format!("Toleration {}", seconds_label(p.toleration_seconds))}</title>
                </rect>
                <rect class="seg reschedule" x=x(t) y=bar_y width=(x(healthy) - x(t)).max(1.0) height=bar_h rx="3">
                    <title>"Evicted, rescheduled and starting on another cluster"</title>
                </rect>
                {grace}
                <circle class="dot danger" cx=x(0.0) cy=bar_y + bar_h / 2.0 r="5"/>
                <circle class="dot warn" cx=x(t) cy=bar_y + bar_h / 2.0 r="5"/>
                <circle class="dot ok" cx=x(healthy) cy=bar_y + bar_h / 2.0 r="5"/>
                {labels}
                {recovered_mark}
                {now_line}
            </svg>
        }
        .into_any()
    }
}
