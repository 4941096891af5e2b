//! Kubernetes name rules, with the API server's own wording so clients see familiar messages.
use super::resources::NameRule;

const LABEL_1123: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_1123: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label_1123(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// None when valid; else the message for `metadata.name`.
pub fn check(rule: NameRule, name: &str) -> Option<String> {
    match rule {
        NameRule::Label1123 if !is_label_1123(name) => Some(LABEL_1123.into()),
        NameRule::Label1035 if !(is_label_1123(name) && name.as_bytes()[0].is_ascii_lowercase()) => {
            Some(LABEL_1035.into())
        }
        NameRule::PathSegment
            if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('%') =>
        {
            Some("may not be '.' or '..' and may not contain '/' or '%'".to_string())
        }
        NameRule::Subdomain if name.len() > 253 || !name.split('.').all(is_label_1123) => Some(SUBDOMAIN_1123.into()),
        _ => None,
    }
}

/// Label keys (`prefix/name`) and values, as labels and selectors need them.
pub fn valid_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric())
}

pub fn valid_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(|p| check(NameRule::Subdomain, p).is_none()) && !name.is_empty() && valid_label_value(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check(NameRule::Label1123, "default").is_none());
        assert!(check(NameRule::Label1123, "Bad_Name").is_some());
        assert!(check(NameRule::Label1123, "1abc").is_none());
        assert!(check(NameRule::Label1035, "1abc").is_some());
        assert!(check(NameRule::Subdomain, "a.b-c.d").is_none());
        assert!(check(NameRule::Subdomain, "a..b").is_some());
        assert!(check(NameRule::Subdomain, "").is_some());
        assert!(check(NameRule::PathSegment, "system:controller:x").is_none());
        assert!(check(NameRule::PathSegment, "a/b").is_some());
        assert!(valid_label_key("nvidia.com/gpu.product"));
        assert!(!valid_label_key("Bad Key"));
        assert!(valid_label_value("Tesla-T4"));
        assert!(!valid_label_value("NVIDIA T4"));
    }
}
