//! The response body on its way back: every frame passes through unchanged and at once, while
//! the tap notes the first byte, reads `usage` (or counts streamed pieces), and reports how the
//! response ended — completed, cut by the upstream, or abandoned by the client — when dropped.
use super::errors::stream_error_event;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use memchr::memmem;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Completed,
    /// The upstream failed after the response began.
    UpstreamError,
    /// The client went away first.
    Cancelled,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Completed => "ok",
            Ending::UpstreamError => "upstream_error",
            Ending::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug)]
pub struct Seen {
    pub ending: Ending,
    pub first_byte: Option<Duration>,
    /// `(prompt, completion)` as the upstream reported them.
    pub usage: Option<(u64, u64)>,
    /// Streamed events that carried text: the completion tokens when no usage came.
    pub pieces: u64,
}

/// Called once with what the tap saw.
pub trait OnEnd: Send + 'static {
    fn ended(self: Box<Self>, seen: Seen);
}

/// Keeps what is needed to find `usage` in a response without holding the response.
#[derive(Default)]
pub struct Scan {
    sse: bool,
    /// SSE: the unfinished last line. JSON: the body (or its tail, when large).
    buf: Vec<u8>,
    usage: Option<(u64, u64)>,
    pieces: u64,
}

const JSON_KEEP: usize = 64 * 1024;
const JSON_TAIL: usize = 8 * 1024;
const SSE_LINE_MAX: usize = 1024 * 1024;

impl Scan {
    pub fn new(sse: bool) -> Self {
        Self { sse, ..Default::default() }
    }

    /// `(prompt, completion)` if the answer reported usage, and the streamed pieces counted.
    pub fn counts(&self) -> (Option<(u64, u64)>, u64) {
        (self.usage, self.pieces)
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if !self.sse {
            if self.buf.len() + chunk.len() <= JSON_KEEP {
                self.buf.extend_from_slice(chunk);
            } else {
                self.buf.extend_from_slice(chunk);
                let cut = self.buf.len().saturating_sub(JSON_TAIL);
                self.buf.drain(..cut);
            }
            return;
        }
        let mut rest = chunk;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            if self.buf.is_empty() {
                self.line(&rest[..i]);
            } else {
                self.buf.extend_from_slice(&rest[..i]);
                let line = std::mem::take(&mut self.buf);
                self.line(&line);
            }
            rest = &rest[i + 1..];
        }
        if self.buf.len() + rest.len() <= SSE_LINE_MAX {
            self.buf.extend_from_slice(rest);
        } else {
            self.buf.clear();
        }
    }

    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else { return };
        // Each event is read as JSON: runtimes differ in spacing and key order (Python servers
        // write `"content": "x"`), so byte patterns miscount.
        let Ok(event) = serde_json::from_slice::<Event>(data) else { return };
        if let Some(u) = event.usage {
            self.usage = Some((u.prompt_tokens, u.completion_tokens));
        }
        self.pieces += event.choices.iter().filter(|c| c.is_piece()).count() as u64;
    }

    pub fn finish(&mut self) {
        if !self.sse {
            self.usage = serde_json::from_slice::<Event>(&self.buf)
                .ok()
                .and_then(|e| e.usage)
                .map(|u| (u.prompt_tokens, u.completion_tokens))
                .or_else(|| usage_in(&self.buf));
        }
    }
}

#[derive(serde::Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// What metering needs of an OpenAI-style answer or streamed event; the rest is skipped unread.
#[derive(serde::Deserialize)]
struct Event<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(serde::Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    /// `/v1/completions` streams `text` instead of a delta.
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    finish_reason: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct Delta<'a> {
    #[serde(default)]
    role: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
}

impl Choice<'_> {
    /// One generated token's event. A token may decode to no text (llama.cpp streams `""`
    /// mid-answer), so an empty piece counts unless it is the opener (with `role`) or the closer
    /// (with `finish_reason`), which carry no token.
    fn is_piece(&self) -> bool {
        let (text, opener) = match &self.delta {
            Some(d) => (d.content.as_deref(), d.role.is_some()),
            None => (self.text.as_deref(), false),
        };
        match text {
            None => false,
            Some("") => !opener && self.finish_reason.is_none(),
            Some(_) => true,
        }
    }
}

/// The last `"usage": {...}` object in `buf`, if it parses.
fn usage_in(buf: &[u8]) -> Option<(u64, u64)> {
    let at = memmem::rfind(buf, b"\"usage\"")? + 7;
    let rest = &buf[at..];
    let colon = rest.iter().position(|c| !c.is_ascii_whitespace())?;
    let rest = rest[colon..].strip_prefix(b":")?;
    let mut it = serde_json::Deserializer::from_slice(rest).into_iter::<Usage>();
    match it.next() {
        Some(Ok(u)) => Some((u.prompt_tokens, u.completion_tokens)),
        _ => None,
    }
}

pub struct Tap<B> {
    inner: B,
    started: Instant,
    first_byte: Option<Duration>,
    scan: Scan,
    ending: Option<Ending>,
    on_end: Option<Box<dyn OnEnd>>,
}

impl<B> Tap<B> {
    pub fn new(inner: B, sse: bool, started: Instant, on_end: Box<dyn OnEnd>) -> Self {
        Self { inner, started, first_byte: None, scan: Scan::new(sse), ending: None, on_end: Some(on_end) }
    }
}

impl<B> Drop for Tap<B> {
    fn drop(&mut self) {
        self.scan.finish();
        if let Some(f) = self.on_end.take() {
            f.ended(Seen {
                ending: self.ending.unwrap_or(Ending::Cancelled),
                first_byte: self.first_byte,
                usage: self.scan.usage,
                pieces: self.scan.pieces,
            });
        }
    }
}

impl<B> Body for Tap<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if this.ending.is_some() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.first_byte.is_none() && !data.is_empty() {
                        this.first_byte = Some(this.started.elapsed());
                    }
                    this.scan.feed(data);
                }
                // A body of known length is done with its last byte: the server may never poll again.
                if this.inner.is_end_stream() {
                    this.ending = Some(Ending::Completed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.ending = Some(Ending::UpstreamError);
                tracing::warn!(error = %e, "upstream failed mid-response");
                if this.scan.sse {
                    // A stream ends with an error event the client can read, not a torn connection.
                    Poll::Ready(Some(Ok(Frame::data(stream_error_event(&format!(
                        "the model server stopped answering mid-stream: {e}"
                    ))))))
                } else {
                    Poll::Ready(Some(Err(e)))
                }
            }
            Poll::Ready(None) => {
                this.ending = Some(Ending::Completed);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ending.is_some() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::{Arc, Mutex};

    struct Catch(Arc<Mutex<Option<Seen>>>);
    impl OnEnd for Catch {
        fn ended(self: Box<Self>, seen: Seen) {
            *self.0.lock().unwrap() = Some(seen);
        }
    }

    async fn run(chunks: Vec<Result<&'static str, &'static str>>, sse: bool, read_all: bool) -> (Vec<u8>, Seen) {
        let frames = chunks.into_iter().map(|c| c.map(|s| Frame::data(Bytes::from(s))).map_err(|e| e.to_string()));
        let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
        let seen = Arc::new(Mutex::new(None));
        let mut tap = Tap::new(body, sse, Instant::now(), Box::new(Catch(seen.clone())));
        let mut out = Vec::new();
        while let Some(f) = tap.frame().await {
            match f {
                Ok(f) => out.extend_from_slice(f.data_ref().unwrap()),
                Err(_) => break,
            }
            if !read_all {
                break;
            }
        }
        drop(tap);
        let s = seen.lock().unwrap().take().unwrap();
        (out, s)
    }

    #[tokio::test]
    async fn sse_passes_unchanged_and_reads_usage_across_chunk_edges() {
        let chunks = vec![
            Ok("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"),
            Ok("data: {\"choices\":[{\"delta\":{\"content\":\"Hel"),
            Ok("lo\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n"),
            Ok("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n"),
            Ok("data: [DONE]\n\n"),
        ];
        let expected: String = chunks.iter().map(|c| *c.as_ref().unwrap()).collect();
        let (out, seen) = run(chunks, true, true).await;
        assert_eq!(out, expected.as_bytes());
        assert_eq!(seen.ending, Ending::Completed);
        assert_eq!(seen.usage, Some((5, 2)));
        assert_eq!(seen.pieces, 2);
        assert!(seen.first_byte.is_some());
    }

    #[tokio::test]
    async fn counts_pieces_without_usage_and_ends_a_broken_stream_with_an_error_event() {
        let chunks = vec![Ok("data: {\"choices\":[{\"text\":\"a\"}]}\n\n"), Err("connection reset")];
        let (out, seen) = run(chunks, true, true).await;
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("\n\n") && text.contains("\"error\"") && text.contains("connection reset"), "{text}");
        assert_eq!((seen.ending, seen.usage, seen.pieces), (Ending::UpstreamError, None, 1));
    }

    #[tokio::test]
    async fn json_usage_and_cancellation() {
        let body =
            r#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        let (_, seen) = run(vec![Ok(&body[..20]), Ok(&body[20..])], false, true).await;
        assert_eq!((seen.ending, seen.usage), (Ending::Completed, Some((3, 1))));
        let (_, seen) = run(vec![Ok("data: {}\n\n"), Ok("data: {}\n\n")], true, false).await;
        assert_eq!(seen.ending, Ending::Cancelled);
        assert_eq!(usage_in(br#"{"usage": null}"#), None);
    }

    #[tokio::test]
    async fn a_sized_body_is_complete_at_its_last_byte() {
        let seen = Arc::new(Mutex::new(None));
        let body =
            http_body_util::Full::new(Bytes::from_static(br#"{"usage":{"prompt_tokens":1,"completion_tokens":2}}"#));
        let mut tap = Tap::new(body, false, Instant::now(), Box::new(Catch(seen.clone())));
        tap.frame().await.unwrap().unwrap();
        assert!(tap.is_end_stream());
        drop(tap);
        let s = seen.lock().unwrap().take().unwrap();
        assert_eq!((s.ending, s.usage), (Ending::Completed, Some((1, 2))));
    }
}
