//! One HTTP(S) client for the runtime on loopback and for model hubs on the internet, following
//! redirects (Hugging Face sends large files to its CDN) and dropping credentials when a redirect
//! leaves the host they were meant for.
use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub type Response = http::Response<Incoming>;

#[derive(Clone)]
pub struct Http {
    client: Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Result<Http, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("TLS roots: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Http { client: Client::builder(TokioExecutor::new()).build(https) })
    }

    /// Sends a request; GETs follow up to 5 redirects. `bearer` goes only to the first host.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<Bytes>,
        headers: &[(&str, String)],
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<Response, String> {
        let mut uri: Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let first_host = uri.host().map(String::from);
        for _ in 0..6 {
            let mut req = Request::builder().method(method.clone()).uri(uri.clone());
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(token) = bearer.filter(|_| uri.host().map(String::from) == first_host) {
                req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            if body.is_some() {
                req = req.header(header::CONTENT_TYPE, "application/json");
            }
            let req = req.body(Full::new(body.clone().unwrap_or_default())).map_err(|e| e.to_string())?;
            let resp = tokio::time::timeout(timeout, self.client.request(req))
                .await
                .map_err(|_| format!("{uri}: no answer in {} s", timeout.as_secs()))?
                .map_err(|e| format!("{uri}: {e}"))?;
            if resp.status().is_redirection() && method == Method::GET {
                let Some(loc) = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
                    return Ok(resp);
                };
                uri = resolve(&uri, loc)?;
                continue;
            }
            return Ok(resp);
        }
        Err(format!("{url}: too many redirects"))
    }

    pub async fn get(&self, url: &str, bearer: Option<&str>, timeout: Duration) -> Result<Response, String> {
        self.send(Method::GET, url, None, &[], bearer, timeout).await
    }

    /// A whole small body as text, with the status.
    pub async fn get_text(&self, url: &str, timeout: Duration) -> Result<(StatusCode, String), String> {
        let resp = self.get(url, None, timeout).await?;
        let status = resp.status();
        let body = tokio::time::timeout(timeout, resp.into_body().collect())
            .await
            .map_err(|_| format!("{url}: body timed out"))?
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// A redirect's Location against the URL that sent it (absolute, or a path on the same host).
fn resolve(base: &Uri, location: &str) -> Result<Uri, String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().map_err(|e| format!("redirect to {location}: {e}"));
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    let path = if location.starts_with('/') { location.to_string() } else { format!("/{location}") };
    format!("{scheme}://{authority}{path}").parse().map_err(|e| format!("redirect to {location}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve() {
        let base: Uri = "https://huggingface.co/org/m/resolve/main/a.bin".parse().unwrap();
        assert_eq!(resolve(&base, "https://cdn.example/x?sig=1").unwrap().to_string(), "https://cdn.example/x?sig=1");
        assert_eq!(
            resolve(&base, "/api/resolve-cache/x").unwrap().to_string(),
            "https://huggingface.co/api/resolve-cache/x"
        );
    }
}
