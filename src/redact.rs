//! Keeps secrets out of the log. What it guarantees, exactly: every line written through
//! [`RedactingStderr`] (the binary's whole `tracing` and `log` output, text or JSON, any level,
//! any crate; installed by `cli::init_tracing`) has
//! - the value of every `access_token=`, `secret=` and `token=` query parameter replaced by `***`
//!   (up to the next `&`, space, quote, `)`, `#`, `,`, `>` or line end), and
//! - every registered secret of six characters or more replaced by `***` wherever it appears:
//!   the configured ones (AppSecret, bot token, webhook secret) for the life of the process, and
//!   the last [`MAX_ACCESS_TOKENS`] access tokens fetched.
//!
//! Nothing else is promised. A shorter secret, an older access token, or a secret in another
//! shape (`"access_token":"…"` in JSON) passes, and so does text that does not go through
//! `tracing` (chat messages, `/healthz`, CLI output) unless it was redacted when made, as
//! [`WeChatError`](crate::wechat::WeChatError) and the CLI's printed errors are.

use std::io::Write;
use std::sync::RwLock;

/// Query parameters whose values are secret.
const SECRET_PARAMS: [&str; 3] = ["access_token=", "secret=", "token="];

/// Most access tokens remembered; older ones are forgotten first (a token lives two hours, so
/// these cover days of refreshes).
pub const MAX_ACCESS_TOKENS: usize = 64;

/// Secrets shorter than this are not masked: they would mask ordinary words.
const MIN_SECRET_LEN: usize = 6;

/// The configured secrets (never forgotten), then the access tokens fetched, oldest first.
static KNOWN: RwLock<(Vec<String>, Vec<String>)> = RwLock::new((Vec::new(), Vec::new()));

/// Remembers a configured secret (AppSecret, bot token, webhook secret): masked wherever it
/// appears in output for the life of the process.
pub fn register_secret(secret: &str) {
    remember(secret, |(configured, _)| configured);
}

/// Remembers a fetched access token: masked until [`MAX_ACCESS_TOKENS`] newer ones push it out.
pub fn register_access_token(token: &str) {
    remember(token, |(_, fetched)| {
        if fetched.len() == MAX_ACCESS_TOKENS {
            fetched.remove(0);
        }
        fetched
    });
}

fn remember(secret: &str, list: impl FnOnce(&mut (Vec<String>, Vec<String>)) -> &mut Vec<String>) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut known = KNOWN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if known.0.iter().chain(&known.1).any(|k| k == secret) {
        return;
    }
    list(&mut known).push(secret.to_owned());
}

/// Masks secret query values and every registered secret in `text`.
pub fn redact(text: &str) -> String {
    let mut out = redact_params(text);
    let known = KNOWN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for secret in known.0.iter().chain(&known.1) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

fn redact_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let hit = SECRET_PARAMS
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, p.len())))
            .min_by_key(|(i, _)| *i);
        let Some((start, len)) = hit else {
            out.push_str(rest);
            return out;
        };
        let value_start = start + len;
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        let value_len = rest[value_start..]
            .find(['&', ' ', ')', '"', '\'', '\n', '#', ',', '>'])
            .unwrap_or(rest.len() - value_start);
        rest = &rest[value_start + value_len..];
    }
}

/// A `tracing` writer to stderr that redacts each formatted event before it is written.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedactingStderr;

/// The writer [`RedactingStderr`] makes.
pub struct RedactingWriter;

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_tokens_and_secrets_in_urls() {
        let s = "error sending request for url (http://h/wxa/devplugin?access_token=ABC.def-1&x=1)";
        assert_eq!(
            redact(s),
            "error sending request for url (http://h/wxa/devplugin?access_token=***&x=1)"
        );
        let s = "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=S3cr3t";
        assert_eq!(
            redact(s),
            "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=***"
        );
        assert_eq!(redact("nothing here"), "nothing here");
        assert_eq!(
            redact("a token=1 b access_token=2"),
            "a token=*** b access_token=***"
        );
    }

    #[test]
    fn hides_registered_secrets_anywhere() {
        register_secret("777:bot-token-for-redaction-test");
        let line = "POST http://api/bot777:bot-token-for-redaction-test/GetMe";
        assert_eq!(redact(line), "POST http://api/bot***/GetMe");
        register_secret("abc");
        assert_eq!(redact("abc"), "abc", "too short to register");
    }

    #[test]
    fn configured_secrets_outlive_any_number_of_access_tokens() {
        register_secret("webhook-secret-for-redaction-test");
        for n in 0..=MAX_ACCESS_TOKENS {
            register_access_token(&format!("access-token-{n:04}-for-redaction-test"));
        }
        assert_eq!(redact("webhook-secret-for-redaction-test"), "***");
        let newest = format!("access-token-{MAX_ACCESS_TOKENS:04}-for-redaction-test");
        assert_eq!(redact(&newest), "***");
    }
}
