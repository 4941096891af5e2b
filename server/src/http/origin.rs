//! Which site a browser's state-changing request comes from. SameSite=Strict cookies are the
//! first line against cross-site requests; this is the second: the whole origin (scheme, host,
//! port) must be H-MAS's own, and bodies must be JSON, which a cross-site form or a "simple"
//! `fetch` cannot send without a preflight.
use super::errors::error_response;
use app::error::AppError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{header, HeaderMap, Method};

/// Refuses a state-changing API call from another site, or one whose body is not declared JSON.
pub async fn guard(State(policy): State<OriginPolicy>, req: Request, next: Next) -> Response {
    if let Err(why) = policy.check(req.method(), req.headers()) {
        return error_response(&AppError::forbidden(why));
    }
    if req.uri().path().starts_with("/api/") && !json_body(req.method(), req.headers()) {
        return error_response(&AppError::field("Content-Type", "must be application/json"));
    }
    next.run(req).await
}

#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    /// `scheme://host[:port]` of the configured public URL, lowercased.
    public: Option<String>,
    /// Without a public URL: the scheme pages are served over (https when cookies are Secure).
    https: bool,
}

impl OriginPolicy {
    /// `public_url` is `http(s)://host[:port]` with no path.
    pub fn new(public_url: Option<&str>, https: bool) -> Result<Self, String> {
        let public = match public_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(u) => {
                let uri: http::Uri = u.parse().map_err(|_| "public-url: not a URL".to_string())?;
                let scheme = uri.scheme_str().filter(|s| *s == "http" || *s == "https");
                let (Some(scheme), Some(auth)) = (scheme, uri.authority()) else {
                    return Err("public-url: must be http(s)://HOST[:PORT]".into());
                };
                if !uri.path().trim_end_matches('/').is_empty() || uri.query().is_some() {
                    return Err("public-url: must have no path (H-MAS is served at the root)".into());
                }
                Some(format!("{scheme}://{}", auth.as_str().to_ascii_lowercase()))
            }
        };
        Ok(Self { public, https })
    }

    /// Reads are always fine; a write must come from this site (or from a script, which sends
    /// no Origin). The error says what did not match.
    pub fn check(&self, m: &Method, h: &HeaderMap) -> Result<(), &'static str> {
        if m == Method::GET || m == Method::HEAD || m == Method::OPTIONS {
            return Ok(());
        }
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_ascii_lowercase());
        if get("sec-fetch-site").is_some_and(|s| s == "cross-site") {
            return Err("cross-site request refused");
        }
        let Some(origin) = get(header::ORIGIN.as_str()) else { return Ok(()) };
        let host = get(header::HOST.as_str());
        let expected = match &self.public {
            Some(p) => {
                // A page reached under another name (DNS rebinding) is not this site.
                if host.as_deref().is_some_and(|h| !p.ends_with(&format!("://{h}"))) {
                    return Err("request for another host refused (Host does not match the public URL)");
                }
                p.clone()
            }
            None => {
                let Some(host) = host else { return Err("request without Host refused") };
                format!("{}://{host}", if self.https { "https" } else { "http" })
            }
        };
        if origin != expected {
            return Err("cross-origin request refused");
        }
        Ok(())
    }
}

/// Whether a state-changing request's body is declared JSON (`application/json`, parameters allowed).
pub fn json_body(m: &Method, h: &HeaderMap) -> bool {
    if m == Method::GET || m == Method::HEAD || m == Method::OPTIONS {
        return true;
    }
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_whole_origin_must_match() {
        let p = OriginPolicy::new(None, false).unwrap();
        let post = Method::POST;
        assert!(p.check(&post, &headers(&[("host", "h:3000"), ("origin", "http://h:3000")])).is_ok());
        assert!(p.check(&post, &headers(&[("host", "h:3000"), ("origin", "https://h:3000")])).is_err(), "scheme");
        assert!(p.check(&post, &headers(&[("host", "h:3000"), ("origin", "http://h:3001")])).is_err(), "port");
        assert!(p.check(&post, &headers(&[("host", "h:3000"), ("origin", "null")])).is_err());
        assert!(p.check(&post, &headers(&[("origin", "http://h:3000")])).is_err(), "no Host");
        assert!(p.check(&post, &headers(&[("host", "h:3000")])).is_ok(), "scripts send no Origin");
        assert!(p.check(&post, &headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(p.check(&Method::GET, &headers(&[("origin", "http://evil")])).is_ok());
        let s = OriginPolicy::new(None, true).unwrap();
        assert!(s.check(&post, &headers(&[("host", "h"), ("origin", "https://h")])).is_ok());
        assert!(s.check(&post, &headers(&[("host", "h"), ("origin", "http://h")])).is_err());
    }

    #[test]
    fn a_public_url_fixes_origin_and_host() {
        let p = OriginPolicy::new(Some("https://HMAS.example.com/"), false).unwrap();
        let post = Method::POST;
        let ok = headers(&[("host", "hmas.example.com"), ("origin", "https://hmas.example.com")]);
        assert!(p.check(&post, &ok).is_ok());
        let rebound = headers(&[("host", "evil.example"), ("origin", "http://evil.example")]);
        assert!(p.check(&post, &rebound).unwrap_err().contains("Host"));
        assert!(OriginPolicy::new(Some("ftp://x"), false).is_err());
        assert!(OriginPolicy::new(Some("https://x/sub"), false).unwrap_err().contains("path"));
    }

    #[test]
    fn bodies_must_be_json() {
        let post = Method::POST;
        assert!(json_body(&post, &headers(&[("content-type", "application/json; charset=utf-8")])));
        assert!(!json_body(&post, &headers(&[("content-type", "text/plain")])));
        assert!(!json_body(&post, &headers(&[("content-type", "application/x-www-form-urlencoded")])));
        assert!(!json_body(&post, &headers(&[])));
        assert!(json_body(&Method::GET, &headers(&[])));
    }
}
