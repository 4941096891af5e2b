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
