//! Keeps secrets out of log lines, whatever the log level. Two nets: query parameters that
//! carry secrets (`access_token=`, `secret=`, `token=`) are masked by pattern, and every secret
//! the process registered (the AppSecret, the bot token, the webhook secret, each access token it
//! fetched) is masked wherever it appears. Every log line the binary writes, text or JSON, passes
//! through [`RedactingStderr`] (installed by `cli::init_tracing`), the last line of defence for
//! what libraries log (teloxide's own error lines quote request URLs, and it hides the bot token
//! in them only when the token has the usual shape). Text that does not go through `tracing` is
//! safe only where it was redacted when made: [`WeChatError`](crate::wechat::WeChatError) does so,
//! and the CLI redacts what it prints; secrets shorter than six characters are not masked.

use std::io::Write;
use std::sync::RwLock;

/// Query parameters whose values are secret.
const SECRET_PARAMS: [&str; 3] = ["access_token=", "secret=", "token="];

/// Most literal secrets remembered (old access tokens age out first).
const MAX_KNOWN: usize = 64;

static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers a secret so it is masked wherever it appears in output from now on.
pub fn register_secret(secret: &str) {
    if secret.len() < 6 {
        return;
    }
    let mut known = KNOWN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if known.iter().any(|k| k == secret) {
        return;
    }
    if known.len() == MAX_KNOWN {
        // Keep the first two (AppSecret, bot token); drop the oldest access token.
        known.remove(2.min(MAX_KNOWN - 1));
    }
    known.push(secret.to_owned());
}

/// Masks secret query values and every registered secret in `text`.
pub fn redact(text: &str) -> String {
    let mut out = redact_params(text);
    let known = KNOWN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for secret in known.iter() {
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
}
