//! What browsers download and keep: the bundle under `/pkg` (content-hashed names, stored
//! compressed by `scripts/build-site`, kept for a year) and the pages themselves (an ETag, so a
//! revalidation that finds nothing new costs a 304 and no body).
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use std::path::Path;
use tower_http::services::ServeDir;

/// Name of the unhashed bundle a development build (or `cargo leptos`) leaves.
const PLAIN: &str = "hmas";
const FOREVER: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
/// Pages larger than this are sent without an ETag rather than held whole in memory.
const ETAG_MAX: usize = 4 << 20;

/// The bundle's current name (`hmas.<hash>`), as `scripts/build-site` recorded it in `pkg/build`.
pub fn bundle_name(site_root: &Path) -> String {
    let recorded = std::fs::read_to_string(site_root.join("pkg").join("build")).unwrap_or_default();
    let name = recorded.trim();
    if is_bundle(name) {
        name.to_string()
    } else {
        PLAIN.to_string()
    }
}

/// `hmas.` and the 16 hex digits of the content hash `scripts/build-site` gives the bundle.
fn is_bundle(name: &str) -> bool {
    name.strip_prefix("hmas.").is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `/pkg/*`: brotli or gzip as the browser accepts, immutable when the name carries the hash.
pub fn router(site_root: &Path) -> Router {
    let files = ServeDir::new(site_root.join("pkg")).precompressed_br().precompressed_gzip();
    Router::new().nest_service("/pkg", files).layer(from_fn(cache_control))
}

async fn cache_control(req: Request, next: Next) -> Response {
    let immutable = is_hashed(req.uri().path());
    let mut res = next.run(req).await;
    if res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED {
        res.headers_mut().insert(header::CACHE_CONTROL, if immutable { FOREVER } else { REVALIDATE });
    }
    res
}

/// `hmas.0123456789abcdef.js`, `…_bg.wasm`, `….css`.
fn is_hashed(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    let Some(rest) = file.strip_prefix("hmas.") else { return false };
    let hash: &str = rest.split(['.', '_']).next().unwrap_or_default();
    hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A page answers with a weak ETag of its bytes; a browser that already has them gets a 304.
/// Pages depend on who asks, so they stay private and are revalidated every time.
pub async fn page_etag(req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let asked = req.headers().get(header::IF_NONE_MATCH).cloned();
    let res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !html || res.status() != StatusCode::OK || res.headers().contains_key(header::CONTENT_ENCODING) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match http_body_util::Limited::new(body, ETAG_MAX).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "page body could not be read whole");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let tag = format!("W/\"{}\"", hex::encode(&page_digest(&bytes)[..12]));
    let tag = HeaderValue::from_str(&tag).expect("hex is a valid header value");
    parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    let fresh = asked.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|v| matches_tag(v, &tag));
    parts.headers.insert(header::ETAG, tag);
    if fresh {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The digest of a page without its script nonce, which differs on every render: the policy
/// allows inline scripts either way, so two renders that differ only there are the same page.
fn page_digest(page: &[u8]) -> [u8; 32] {
    const MARK: &[u8] = b"nonce=\"";
    let nonce = page.windows(MARK.len()).position(|w| w == MARK).and_then(|at| {
        let value = &page[at + MARK.len()..];
        value.iter().position(|&b| b == b'"').map(|end| &value[..end])
    });
    let mut hash = Sha256::new();
    match nonce.filter(|n| !n.is_empty()) {
        Some(n) => {
            let mut rest = page;
            while let Some(at) = rest.windows(n.len()).position(|w| w == n) {
                hash.update(&rest[..at]);
                rest = &rest[at + n.len()..];
            }
            hash.update(rest);
        }
        None => hash.update(page),
    }
    hash.finalize().into()
}

/// `If-None-Match` is a list; weak comparison, as RFC 9110 asks for it.
fn matches_tag(list: &str, tag: &HeaderValue) -> bool {
    let ours = tag.to_str().unwrap_or_default().trim_start_matches("W/");
    list.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hashed_names_are_immutable() {
        assert!(is_hashed("/pkg/hmas.a66fc0720d5b06c0.js"));
        assert!(is_hashed("/pkg/hmas.a66fc0720d5b06c0_bg.wasm"));
        assert!(is_hashed("/pkg/hmas.a66fc0720d5b06c0.css"));
        assert!(!is_hashed("/pkg/hmas.js"));
        assert!(!is_hashed("/pkg/hmas_bg.wasm"));
        assert!(!is_hashed("/pkg/build"));
        assert!(!is_hashed("/pkg/hmas.nothex0000000000.js"));
    }

    #[test]
    fn the_nonce_does_not_change_the_tag() {
        let a = page_digest(b"<script nonce=\"abc\">x</script><link crossorigin=\"abc\">");
        let b = page_digest(b"<script nonce=\"xyz\">x</script><link crossorigin=\"xyz\">");
        let c = page_digest(b"<script nonce=\"xyz\">y</script><link crossorigin=\"xyz\">");
        assert_eq!(a, b);
        assert_ne!(b, c);
    }

    #[test]
    fn if_none_match_is_compared_weakly() {
        let tag = HeaderValue::from_static("W/\"abc\"");
        assert!(matches_tag("W/\"abc\"", &tag));
        assert!(matches_tag("\"x\", \"abc\"", &tag));
        assert!(matches_tag("*", &tag));
        assert!(!matches_tag("W/\"abd\"", &tag));
    }

    #[test]
    fn the_bundle_name_falls_back_to_the_plain_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(bundle_name(dir.path()), "hmas");
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/build"), "hmas.0123456789abcdef\n").unwrap();
        assert_eq!(bundle_name(dir.path()), "hmas.0123456789abcdef");
        std::fs::write(dir.path().join("pkg/build"), "../evil\n").unwrap();
        assert_eq!(bundle_name(dir.path()), "hmas");
    }
}
