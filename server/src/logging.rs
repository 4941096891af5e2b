//! The process log. Whatever a caller controls (a username, a model name, a path) can end up in
//! a field, so a line is written with its control characters escaped: a newline in a username
//! cannot forge a second line, and escape sequences or NUL never reach a terminal or a file raw.
//! JSON lines are escaped by the JSON writer itself.
use crate::config::LogFormat;
use std::io::Write;

pub fn init(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // kube's client logs every failed request as an error; H-MAS handles each and logs an
    // unreachable member once (crate::members), so while a member is down that line would
    // repeat on every poll.
    let filter = EnvFilter::try_from_env("HMAS_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info,kube_client::client::builder=off"));
    // No colours: their escape sequences could not be told from a caller's.
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    match format {
        LogFormat::Json => b.json().flatten_event(true).with_writer(std::io::stderr).init(),
        LogFormat::Text => b.with_writer(|| Escaped(std::io::stderr())).init(),
    }
}

/// Writes each event (one `write` per event) with control characters other than its final
/// newline shown as `\n`, `\r`, `\t` or `\xNN`.
pub struct Escaped<W: Write>(pub W);

impl<W: Write> Write for Escaped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.split_last() {
            Some((b'\n', body)) => (body, &b"\n"[..]),
            _ => (buf, &b""[..]),
        };
        if !body.iter().any(|b| needs_escape(*b)) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = Vec::with_capacity(buf.len() + 16);
        for &b in body {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b if needs_escape(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                b => out.push(b),
            }
        }
        out.extend_from_slice(end);
        self.0.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn needs_escape(b: u8) -> bool {
    (b < 0x20 && b != b' ') || b == 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &[u8]) -> String {
        let mut w = Escaped(Vec::new());
        w.write_all(s).unwrap();
        String::from_utf8(w.0).unwrap()
    }

    #[test]
    fn one_event_stays_one_line() {
        assert_eq!(escaped(b"plain line\n"), "plain line\n");
        assert_eq!(
            escaped(b"sign-in refused username=eve\nINFO forged\x1b[31m\0\n"),
            "sign-in refused username=eve\\nINFO forged\\x1b[31m\\x00\n"
        );
        assert_eq!(escaped(b"tab\there"), "tab\\there");
    }
}
