use axum::http::Request;
use rand::RngCore;
use tower_http::request_id::{MakeRequestId, RequestId};

/// 64-bit random ids: enough to find a request's log lines, short enough to read.
#[derive(Clone, Copy)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let mut b = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut b);
        hex::encode(b).parse().ok().map(RequestId::new)
    }
}

pub fn span<B>(req: &Request<B>) -> tracing::Span {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
}
