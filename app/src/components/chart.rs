//! Small SVG charts drawn on the server and in the browser alike: no script, no library.
use leptos::prelude::*;

/// One bar: its label (for the tooltip and axis) and stacked values, bottom first.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    pub values: Vec<f64>,
}

const W: f64 = 600.0;
const H: f64 = 160.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;

/// A round number at or above `v`, so the axis reads 0 … 50 rather than 0 … 47.3.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|m| *m >= v).unwrap_or(10.0 * mag)
}

pub fn compact(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.0}k", v / 1e3),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v if v.fract() == 0.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

/// Stacked bars over time. `series` names and colours each stack level (CSS classes).
#[component]
pub fn BarChart(
    bars: Vec<Bar>,
    series: Vec<(&'static str, &'static str)>,
    #[prop(into)] label: String,
    #[prop(into, optional)] testid: String,
) -> impl IntoView {
    let max = nice_max(bars.iter().map(|b| b.values.iter().sum::<f64>()).fold(0.0, f64::max));
    let n = bars.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let bw = (slot * 0.78).max(1.0);
    let plot_h = H - BOTTOM;
    let y = move |v: f64| plot_h - v / max * (plot_h - 6.0);
    let ticks = [0.0, max / 2.0, max];
    let first = bars.first().map(|b| b.label.clone()).unwrap_or_default();
    let last = bars.last().map(|b| b.label.clone()).unwrap_or_default();
    let rects = bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let x = LEFT + i as f64 * slot + (slot - bw) / 2.0;
            let mut base = 0.0;
            let tip = format!(
                "{}: {}",
                b.label,
                series.iter().zip(&b.values).map(|((name, _), v)| format!("{name} {}", compact(*v))).collect::<Vec<_>>().join(", ")
            );
            let parts = b
                .values
                .iter()
                .zip(&series)
                .filter(|(v, _)| **v > 0.0)
                .map(|(v, (_, class))| {
                    let (top, bottom) = (y(base + v), y(base));
                    base += v;
                    view! { <rect class=*class x=format!("{x:.1}") y=format!("{top:.1}") width=format!("{bw:.1}") height=format!("{:.1}", (bottom - top).max(1.0))/> }
                })
                .collect_view();
            view! { <g><title>{tip}</title>{parts}<rect class="hit" x=format!("{:.1}", LEFT + i as f64 * slot) y="0" width=format!("{slot:.1}") height=format!("{plot_h:.1}")/></g> }
        })
        .collect_view();
    view! {
        <figure class="chart" data-testid=testid>
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=label.clone() preserveAspectRatio="none">
                {ticks.iter().map(|t| view! {
                    <line class="grid-line" x1=LEFT x2=W y1=format!("{:.1}", y(*t)) y2=format!("{:.1}", y(*t))/>
                    <text class="axis" x=LEFT - 6.0 y=format!("{:.1}", y(*t) + 4.0) text-anchor="end">{compact(*t)}</text>
                }).collect_view()}
                {rects}
                <text class="axis" x=LEFT y=H - 4.0>{first}</text>
                <text class="axis" x=W y=H - 4.0 text-anchor="end">{last}</text>
            </svg>
            <figcaption class="legend">
                {series.iter().map(|(name, class)| view! { <span><i class=format!("swatch {class}")></i>{*name}</span> }).collect_view()}
            </figcaption>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_rounds_up_and_numbers_shorten() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(47.3), 50.0);
        assert_eq!(nice_max(101.0), 200.0);
        assert_eq!(nice_max(2.2), 2.5);
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(25_000.0), "25k");
        assert_eq!(compact(3.0), "3");
    }
}
