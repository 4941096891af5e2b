//! Label selectors in both forms: the query string (`a=b,c in (x,y),!d`) and the object form
//! (`matchLabels` / `matchExpressions`) that Deployments and Karmada policies carry.
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector(pub Vec<Req>);

pub type Labels = BTreeMap<String, String>;

impl Selector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("unable to parse requirement: {p}"))?;
                Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
            };
            if let Some(k) = p.strip_prefix('!') {
                reqs.push(Req::NotExists(k.trim().to_string()));
            } else if let Some((k, v)) = p.split_once("!=") {
                reqs.push(Req::NotEq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once("==") {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once('=') {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, rest)) = p.split_once(" notin ") {
                reqs.push(Req::NotIn(k.trim().into(), set(rest)?));
            } else if let Some((k, rest)) = p.split_once(" in ") {
                reqs.push(Req::In(k.trim().into(), set(rest)?));
            } else if p.contains(' ') || p.contains('(') {
                return Err(format!("unable to parse requirement: {p}"));
            } else {
                reqs.push(Req::Exists(p.to_string()));
            }
        }
        for r in &reqs {
            let k = match r {
                Req::Eq(k, _)
                | Req::NotEq(k, _)
                | Req::In(k, _)
                | Req::NotIn(k, _)
                | Req::Exists(k)
                | Req::NotExists(k) => k,
            };
            if !super::names::valid_label_key(k) {
                return Err(format!("invalid label key \"{k}\""));
            }
        }
        Ok(Selector(reqs))
    }

    /// The object form. A null or empty selector matches everything.
    pub fn from_json(v: &Value) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in m {
                reqs.push(Req::Eq(k.clone(), val.as_str().unwrap_or_default().to_string()));
            }
        }
        if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).ok_or("matchExpressions: key is required")?.to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                    .unwrap_or_default();
                reqs.push(match e.get("operator").and_then(Value::as_str) {
                    Some("In") => Req::In(key, values),
                    Some("NotIn") => Req::NotIn(key, values),
                    Some("Exists") => Req::Exists(key),
                    Some("DoesNotExist") => Req::NotExists(key),
                    other => return Err(format!("matchExpressions: unknown operator {other:?}")),
                });
            }
        }
        Ok(Selector(reqs))
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => labels.get(k) == Some(v),
            Req::NotEq(k, v) => labels.get(k) != Some(v),
            Req::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Req::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Req::Exists(k) => labels.contains_key(k),
            Req::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

pub fn labels_of(obj: &Value) -> Labels {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

/// `fieldSelector`: equality on dotted paths (`metadata.name=x,status.phase!=Running`).
pub fn field_matches(selector: &str, obj: &Value) -> Result<bool, String> {
    for part in selector.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (path, want, negate) = if let Some((p, v)) = part.split_once("!=") {
            (p, v, true)
        } else if let Some((p, v)) = part.split_once("==") {
            (p, v, false)
        } else if let Some((p, v)) = part.split_once('=') {
            (p, v, false)
        } else {
            return Err(format!("invalid selector: '{part}'; can't understand '{part}'"));
        };
        let ptr = format!("/{}", path.trim().replace('.', "/"));
        let have = match obj.pointer(&ptr) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        if (have == want.trim()) == negate {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn query_form() {
        let s = Selector::parse("app=web,tier in (a, b),!legacy,env!=prod,zone").unwrap();
        assert!(s.matches(&l(&[("app", "web"), ("tier", "b"), ("zone", "z1")])));
        assert!(!s.matches(&l(&[("app", "web"), ("tier", "c"), ("zone", "z1")])));
        assert!(!s.matches(&l(&[("app", "web"), ("tier", "a"), ("zone", "z1"), ("legacy", "")])));
        assert!(!s.matches(&l(&[("app", "web"), ("tier", "a")])));
        assert!(Selector::parse("").unwrap().matches(&l(&[])));
        assert!(Selector::parse("a in b").is_err());
        assert!(Selector::parse("bad key=1").is_err());
        let n = Selector::parse("x notin (1,2)").unwrap();
        assert!(n.matches(&l(&[])) && !n.matches(&l(&[("x", "1")])));
    }

    #[test]
    fn object_form() {
        let s = Selector::from_json(&json!({"matchLabels": {"gpu": "a100"}, "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]})).unwrap();
        assert!(s.matches(&l(&[("gpu", "a100"), ("zone", "a")])));
        assert!(!s.matches(&l(&[("gpu", "a100")])));
        assert!(Selector::from_json(&json!({})).unwrap().matches(&l(&[])));
        assert!(Selector::from_json(&json!({"matchExpressions": [{"key": "a", "operator": "Near"}]})).is_err());
    }

    #[test]
    fn fields() {
        let o = json!({"metadata": {"name": "p1"}, "status": {"phase": "Running"}, "spec": {}});
        assert!(field_matches("metadata.name=p1,status.phase!=Pending", &o).unwrap());
        assert!(!field_matches("spec.nodeName=n1", &o).unwrap());
        assert!(field_matches("spec.nodeName=", &o).unwrap());
        assert!(field_matches("nonsense", &o).is_err());
    }
}
