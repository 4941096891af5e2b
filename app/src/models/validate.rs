//! Field rules shared by forms (instant feedback) and server fns (authority).

pub fn required(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("is required".into())
    } else {
        Ok(())
    }
}

pub fn max_len(value: &str, max: usize) -> Result<(), String> {
    if value.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}

/// Longest piece of a caller's input repeated back in a message.
pub const SHOWN_MAX: usize = 80;

/// `value` cut at `max` characters (on a character boundary).
pub fn clip(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((i, _)) => &value[..i],
        None => value,
    }
}

/// A caller's input as echoed in a message: whole when short, else its start and how long it was,
/// so an error about a megabyte of name is a line, not a megabyte.
pub fn shown(value: &str) -> std::borrow::Cow<'_, str> {
    let head = clip(value, SHOWN_MAX);
    if head.len() == value.len() {
        head.into()
    } else {
        format!("{head}… ({} bytes)", value.len()).into()
    }
}

/// Keys of `sent` (at any depth) that `read` lacks, as dotted paths (`spec.replcias`,
/// `spec.settings[2].x`). A key sent as `null` counts as not sent.
#[cfg(feature = "ssr")]
pub fn unknown_keys(sent: &serde_json::Value, read: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match (sent, read) {
        (Value::Object(s), Value::Object(r)) => {
            for (k, v) in s {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match r.get(k) {
                    Some(rv) => unknown_keys(v, rv, &p, out),
                    None if v.is_null() => {}
                    None => out.push(clip(&p, 200).to_string()),
                }
            }
        }
        (Value::Array(s), Value::Array(r)) => {
            for (i, (v, rv)) in s.iter().zip(r).enumerate() {
                unknown_keys(v, rv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A DNS-1123 label of at most `max` characters: lowercase letters, digits and '-', starting and
/// ending with a letter or digit.
pub fn dns1123_label(value: &str, max: usize) -> Result<(), String> {
    required(value)?;
    if value.len() > max {
        return Err(format!("must be at most {max} characters"));
    }
    let b = value.as_bytes();
    if !b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        || b[0] == b'-'
        || b[b.len() - 1] == b'-'
    {
        return Err(
            "may contain only lowercase letters, digits and '-', and must start and end with a letter or digit".into(),
        );
    }
    Ok(())
}

/// A DNS-1035 label: what Kubernetes accepts as a Service name, and what H-MAS uses for
/// every name that ends up in the hub.
pub fn dns1035_label(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is required".into());
    }
    if value.len() > 63 {
        return Err("must be at most 63 characters".into());
    }
    let bytes = value.as_bytes();
    if !bytes[0].is_ascii_lowercase() {
        return Err("must start with a lowercase letter".into());
    }
    if !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err("must end with a letter or digit".into());
    }
    if !bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-') {
        return Err("may contain only lowercase letters, digits and '-'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ssr")]
    #[test]
    fn unknown_keys_are_found_at_any_depth() {
        let sent = serde_json::json!({"spec": {"model": "m", "replcias": 2, "cache": null,
            "settings": [{"k": 1, "x": 2}]}, "force": false, "extra": 1});
        let read = serde_json::json!({"spec": {"model": "m", "settings": [{"k": 1}]}, "force": false});
        let mut out = Vec::new();
        unknown_keys(&sent, &read, "", &mut out);
        assert_eq!(out, ["extra", "spec.replcias", "spec.settings[0].x"]);
    }

    #[test]
    fn echoed_values_are_clipped_on_character_boundaries() {
        assert_eq!(shown("short"), "short");
        let long = "é".repeat(1000);
        let s = shown(&long);
        assert!(s.chars().count() < SHOWN_MAX + 20 && s.ends_with("(2000 bytes)"), "{s}");
        assert_eq!(clip("abc", 2), "ab");
        assert_eq!(clip("abc", 5), "abc");
    }

    #[test]
    fn dns1035_table() {
        for ok in ["a", "llama3-2-1b", "x9", &"a".repeat(63)] {
            assert!(dns1035_label(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "-a", "a-", "Abc", "a_b", "a.b", &"a".repeat(64)] {
            assert!(dns1035_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn required_and_len() {
        assert!(required("  ").is_err());
        assert!(required("x").is_ok());
        assert!(max_len("ééé", 3).is_ok());
        assert!(max_len("éééé", 3).is_err());
    }
}
