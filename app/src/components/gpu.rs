use crate::models::cluster::GpuGroup;
use leptos::prelude::*;

/// Allocated against allocatable GPUs as a bar, with the numbers beside it.
#[component]
pub fn GpuBar(allocated: i64, allocatable: i64) -> impl IntoView {
    let pct = if allocatable > 0 { (allocated * 100 / allocatable).clamp(0, 100) } else { 0 };
    let label = format!("{allocated} of {allocatable} GPUs in use");
    view! {
        <div class="meter" role="meter" aria-valuemin="0" aria-valuemax=allocatable aria-valuenow=allocated aria-label=label.clone()>
            <div class="meter-fill" style=format!("width: {pct}%")></div>
        </div>
        <small class="muted">{label}</small>
    }
}

/// `16 × NVIDIA-H100-80GB-HBM3 · 80 GB · NVLink · MIG`
pub fn gpu_line(g: &GpuGroup) -> String {
    let mut s = format!("{} × {}", g.count, g.product);
    if g.memory_mib > 0 {
        s.push_str(&format!(" · {} GB", (g.memory_mib + 512) / 1024));
    }
    if g.nvlink {
        s.push_str(" · NVLink");
    }
    if g.mig_capable {
        s.push_str(" · MIG");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn line() {
        let g = crate::models::cluster::GpuGroup {
            product: "NVIDIA-A100".into(),
            count: 4,
            memory_mib: 81920,
            nvlink: true,
            mig_capable: false,
        };
        assert_eq!(super::gpu_line(&g), "4 × NVIDIA-A100 · 80 GB · NVLink");
    }
}
