//! Kubernetes resource quantities (`500m`, `16Gi`, `2`), in milli-units so CPU and counts compare
//! exactly.

pub fn parse_milli(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "m" => 0.001,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    Some((n * mult * 1000.0).round() as i128)
}

/// Formats a milli-quantity for `resource` the way kubectl shows it.
pub fn format(resource: &str, milli: i128) -> String {
    if resource == "cpu" {
        if milli % 1000 == 0 {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        }
    } else if resource == "memory" || resource.ends_with("storage") {
        let bytes = milli / 1000;
        let gi = 1024i128.pow(3);
        let mi = 1024i128.pow(2);
        if bytes % gi == 0 {
            format!("{}Gi", bytes / gi)
        } else if bytes % mi == 0 {
            format!("{}Mi", bytes / mi)
        } else {
            format!("{}Ki", bytes / 1024)
        }
    } else {
        (milli / 1000).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        assert_eq!(parse_milli("500m"), Some(500));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_milli("1Gi"), Some(1024 * 1024 * 1024 * 1000));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("x"), None);
        assert_eq!(parse_milli("3Qi"), None);
        assert_eq!(format("cpu", 1500), "1500m");
        assert_eq!(format("cpu", 4000), "4");
        assert_eq!(format("memory", parse_milli("64Gi").unwrap()), "64Gi");
        assert_eq!(format("nvidia.com/gpu", 8000), "8");
    }
}
