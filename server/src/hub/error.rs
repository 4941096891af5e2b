use app::error::{AppError, ErrorCode};

/// What went wrong talking to a cluster, in H-MAS's terms, with the API server's message.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HubError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The API server refused the object; `field` names what, when it said.
    #[error("{message}")]
    Invalid { message: String, field: Option<String> },
    #[error("the cluster refused the credentials: {0}")]
    Unauthorized(String),
    #[error("the cluster's RBAC does not allow this: {0}")]
    Forbidden(String),
    #[error("the cluster is unreachable: {0}")]
    Unavailable(String),
    #[error("kubeconfig: {0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

impl From<kube::Error> for HubError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => {
                // An answer that is not a Kubernetes Status (a proxy's page, something else
                // listening there) is summarised, never repeated: it is not the API server talking.
                let message = if s.reason == "Failed to parse error data" {
                    format!(
                        "HTTP {} with an answer that is not a Kubernetes API status ({} bytes; is this an API server?)",
                        s.code,
                        s.message.len()
                    )
                } else {
                    app::models::validate::clip(&s.message, 1000).to_string()
                };
                match s.code {
                    404 => HubError::NotFound(message),
                    409 => HubError::Conflict(message),
                    400 | 422 => {
                        let field = s
                            .details
                            .as_ref()
                            .and_then(|d| d.causes.first())
                            .map(|c| c.field.clone())
                            .filter(|f| !f.is_empty());
                        HubError::Invalid { message, field }
                    }
                    401 => HubError::Unauthorized(message),
                    // An admission webhook's refusal is a judgement on the object, not on access.
                    403 if message.starts_with("admission webhook") => {
                        let field = webhook_field(&message);
                        HubError::Invalid { message, field }
                    }
                    403 => HubError::Forbidden(message),
                    500..=599 => HubError::Unavailable(message),
                    _ => HubError::Other(message),
                }
            }
            kube::Error::HyperError(e) => HubError::Unavailable(e.to_string()),
            kube::Error::Service(e) => HubError::Unavailable(e.to_string()),
            kube::Error::InferConfig(e) => HubError::Config(e.to_string()),
            kube::Error::Auth(e) => HubError::Unauthorized(e.to_string()),
            other => HubError::Other(other.to_string()),
        }
    }
}

/// The field a webhook names: `… denied the request: spec.propagateDeps: Invalid value: …`.
fn webhook_field(message: &str) -> Option<String> {
    let rest = message.split_once("denied the request: ")?.1;
    let field = rest.split_once(": ")?.0.trim_start_matches('[');
    (!field.is_empty() && !field.contains(' ')).then(|| field.to_string())
}

impl HubError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, HubError::NotFound(_))
    }
}

impl From<HubError> for AppError {
    fn from(e: HubError) -> Self {
        let code = match &e {
            HubError::NotFound(_) => ErrorCode::NotFound,
            HubError::Conflict(_) => ErrorCode::Conflict,
            HubError::Invalid { .. } | HubError::Config(_) => ErrorCode::Invalid,
            HubError::Unauthorized(_) | HubError::Forbidden(_) => ErrorCode::Forbidden,
            HubError::Unavailable(_) => ErrorCode::Unavailable,
            HubError::Other(_) => ErrorCode::Internal,
        };
        let mut a = AppError::new(code, e.to_string());
        if let HubError::Invalid { field: Some(f), message } = &e {
            a.fields.insert(f.clone(), message.clone());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status { message: message.into(), reason: "Forbidden".into(), code, ..Default::default() }
                .boxed(),
        )
    }

    #[test]
    fn an_answer_that_is_not_an_api_status_is_summarised_not_reflected() {
        let page = "<html>internal admin console, session=abc123</html>".repeat(100);
        let e = kube::Error::Api(
            kube::core::Status {
                message: page.clone(),
                reason: "Failed to parse error data".into(),
                code: 502,
                ..Default::default()
            }
            .boxed(),
        );
        let m = HubError::from(e).to_string();
        assert!(!m.contains("admin console") && m.contains("HTTP 502") && m.contains(&page.len().to_string()), "{m}");
        assert!(HubError::from(status(500, &"x".repeat(100_000))).to_string().len() < 1100);
    }

    #[test]
    fn a_webhook_denial_is_invalid_input_with_its_field() {
        let m = "admission webhook \"propagationpolicy.karmada.io\" denied the request: spec.propagateDeps: Invalid value: false: application failover is set, propagateDeps must be true";
        let e = HubError::from(status(403, m));
        assert_eq!(e, HubError::Invalid { message: m.into(), field: Some("spec.propagateDeps".into()) });
        let a = AppError::from(e);
        assert_eq!(a.code, ErrorCode::Invalid);
        assert!(!a.message.contains("RBAC"));
        let rbac = HubError::from(status(403, "deployments.apps is forbidden: User \"x\" cannot create"));
        assert!(matches!(rbac, HubError::Forbidden(_)));
    }
}
