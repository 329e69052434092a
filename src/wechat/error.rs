//! The one error type of the WeChat client. Callers branch on it: an API errcode is shown on the
//! card, a transport failure may be retried, an unknown outcome makes the bot re-read the status,
//! and a write that never left the process says so instead of claiming an unknown outcome.
//! No variant holds a `reqwest::Error` (its Debug output prints the URL with the token): the text
//! is redacted when the error is made.

use crate::i18n::Lang;
use crate::redact::redact;
use crate::wechat::errcode;

/// How a request failed to get an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// No answer within the request timeout.
    Timeout,
    /// The connection could not be made (refused, DNS, connect timeout): nothing was sent.
    Connect,
    /// Anything else on the way (reset, TLS, body read).
    Other,
}

/// Everything that can go wrong talking to WeChat.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WeChatError {
    /// WeChat answered with a non-zero errcode.
    #[error("WeChat errcode {code}: {}{}", errcode::meaning(*code, Lang::En).unwrap_or("unknown error code"), errmsg_suffix(errmsg))]
    Api {
        /// WeChat's errcode.
        code: i64,
        /// WeChat's errmsg, as sent.
        errmsg: String,
    },
    /// No answer came back.
    #[error("WeChat could not be reached ({kind:?}): {detail}")]
    Transport {
        /// Timeout, connect or other.
        kind: TransportKind,
        /// The cause, with secrets redacted.
        detail: String,
    },
    /// An HTTP status other than 2xx.
    #[error("WeChat answered HTTP {status}")]
    Http { status: u16 },
    /// An answer that redirects (3xx). It is never followed: a followed `stable_token` redirect
    /// would send the AppSecret wherever `Location` points.
    #[error("WeChat answered HTTP {status} redirecting to {location}; not followed")]
    Redirect {
        /// The HTTP status.
        status: u16,
        /// Where it pointed (without its query, cut to [`OUTSIDE_TEXT_MAX_CHARS`]).
        location: String,
    },
    /// A 2xx answer whose body is not what the API sends.
    #[error("WeChat answered HTTP {status} with a body that could not be read: {detail}")]
    Decode {
        /// The HTTP status it came with.
        status: u16,
        /// What was wrong with the body.
        detail: String,
    },
    /// A write may have reached WeChat and no answer can be trusted (timeout after sending, 5xx,
    /// unreadable answer, or a stale-state errcode on a resend after -1): it may or may not have
    /// taken effect. The caller must re-read the applicant's status instead of sending it again.
    #[error("outcome unknown for {action} on {appid}: {cause}")]
    OutcomeUnknown {
        /// `dev_agree`, `dev_refuse` or `dev_delete`.
        action: &'static str,
        appid: String,
        /// Why no answer is trusted.
        cause: Box<WeChatError>,
    },
    /// A write never left this process, and the last try failed without an answer: the connection
    /// could not be made, or fetching the access token failed in transport (no answer, an HTTP
    /// error, an unreadable body). WeChat did nothing, so the same decision may simply be tried
    /// again. A token endpoint that answers with an errcode gives [`WeChatError::Api`] instead.
    #[error("nothing reached WeChat: {action} on {appid} was not sent ({cause})")]
    NotSent {
        /// `dev_agree`, `dev_refuse` or `dev_delete`.
        action: &'static str,
        appid: String,
        /// Why it could not be sent.
        cause: Box<WeChatError>,
    },
    /// The request was refused before anything was sent (for example a refuse without a reason).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A write's time to be sent passed before it (or its resend after -1) could leave: the
    /// process was paused or starved, and another replica may already be settling the decision
    /// from WeChat's list, so a late write would contradict what it records.
    #[error("too late to send: this replica was held up past the decision's window to write")]
    TooLate,
    /// `list_all` hit its bound on calls: the server never sent the empty page that ends a listing.
    #[error("WeChat kept sending applicants: stopped after {pages} pages")]
    TooManyPages {
        /// How many pages were read (calls made).
        pages: u32,
    },
    /// The token file (mode `file`) could not be used.
    #[error("access token file {path}: {reason}")]
    TokenFile { path: String, reason: String },
    /// The `component_verify_ticket` file (mode `authorizer`) could not be used.
    #[error("component_verify_ticket file {path}: {reason} (check the platform's ticket receiver)")]
    TicketFile { path: String, reason: String },
}

/// Most characters of any text from outside (an errmsg, what a body held, a `Location`) that an
/// error keeps: a 4 KB errmsg must not make every chat message quoting it too long to send.
pub const OUTSIDE_TEXT_MAX_CHARS: usize = 200;

/// `text` cut to [`OUTSIDE_TEXT_MAX_CHARS`] characters (never inside one), with "…" when cut.
pub fn cut_outside_text(text: &str) -> String {
    match text.char_indices().nth(OUTSIDE_TEXT_MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn errmsg_suffix(errmsg: &str) -> String {
    if errmsg.is_empty() {
        String::new()
    } else {
        format!(" (errmsg: {})", redact(errmsg))
    }
}

impl WeChatError {
    /// An errcode answer, its errmsg redacted and cut to [`OUTSIDE_TEXT_MAX_CHARS`] (in that
    /// order, so a token is never cut in two and left half visible).
    pub(crate) fn api(code: i64, errmsg: &str) -> Self {
        Self::Api {
            code,
            errmsg: cut_outside_text(&redact(errmsg)),
        }
    }

    /// An unreadable 2xx body, the description cut to [`OUTSIDE_TEXT_MAX_CHARS`].
    pub(crate) fn decode(status: u16, detail: &str) -> Self {
        Self::Decode {
            status,
            detail: cut_outside_text(&redact(detail)),
        }
    }

    /// The `errcode` label of the calls metric: WeChat's code, or what failed instead
    /// (`transport`, `http_503`, `decode`, `other`).
    pub fn metric_label(&self) -> String {
        match (self.errcode(), self) {
            (Some(code), _) => code.to_string(),
            (None, Self::Transport { .. }) => "transport".to_owned(),
            (None, Self::Http { status }) => format!("http_{status}"),
            (None, Self::Redirect { status, .. }) => format!("redirect_{status}"),
            (None, Self::Decode { .. }) => "decode".to_owned(),
            (None, _) => "other".to_owned(),
        }
    }

    /// Builds a transport error from reqwest's, keeping no URL and no token.
    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        // Connect first: a connect timeout is both, and it matters that nothing was sent.
        let kind = if err.is_connect() {
            TransportKind::Connect
        } else if err.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Other
        };
        // Drop the URL (it carries the token), then append the cause chain so the text names the
        // root cause ("connection refused"), redacted in case a lower layer quotes the URL.
        let err = err.without_url();
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        let detail = cut_outside_text(&redact(&detail));
        Self::Transport { kind, detail }
    }

    /// The errcode, when WeChat sent one (also inside an unknown outcome). A write that was not
    /// sent has none: its cause came from the token endpoint or the network, not from the write.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            Self::OutcomeUnknown { cause, .. } => cause.errcode(),
            _ => None,
        }
    }

    /// WeChat's errmsg, redacted, when WeChat answered an errcode with one.
    pub fn errmsg(&self) -> Option<String> {
        match self {
            Self::Api { errmsg, .. } if !errmsg.is_empty() => Some(redact(errmsg)),
            Self::OutcomeUnknown { cause, .. } => cause.errmsg(),
            _ => None,
        }
    }

    /// The errcode's meaning in `lang`, when there is an errcode and it is known.
    pub fn meaning(&self, lang: Lang) -> Option<&'static str> {
        self.errcode().and_then(|c| errcode::meaning(c, lang))
    }

    /// Whether the access token was rejected (40001 / 40014 / 42001).
    pub fn is_token_error(&self) -> bool {
        matches!(self, Self::Api { code, .. } if errcode::TOKEN_ERRCODES.contains(code))
    }

    /// Whether this is an operator's configuration mistake (IP whitelist, AppSecret, AppID).
    pub fn is_config_error(&self) -> bool {
        matches!(self, Self::Api { code, .. } if errcode::CONFIG_ERRCODES.contains(code))
            || matches!(self, Self::TokenFile { .. } | Self::TicketFile { .. })
    }

    /// What an operator should do, for configuration errors.
    pub fn hint(&self) -> Option<&'static str> {
        self.errcode().and_then(errcode::config_hint)
    }

    /// Whether a read may be sent again: busy, rate-limited, 5xx, transport or decode trouble.
    pub fn is_retryable_read(&self) -> bool {
        match self {
            Self::Api { code, .. } => {
                *code == errcode::SYSTEM_BUSY || *code == errcode::RATE_LIMITED
            }
            Self::Http { status } => *status >= 500,
            Self::Transport { .. } | Self::Decode { .. } => true,
            _ => false,
        }
    }

    /// Whether the same decision may be tried again by a person (busy, transport, unknown outcome,
    /// not sent).
    pub fn is_retryable_by_person(&self) -> bool {
        match self {
            Self::Api { code, .. } => {
                *code == errcode::SYSTEM_BUSY || *code == errcode::RATE_LIMITED
            }
            Self::Http { .. }
            | Self::Redirect { .. }
            | Self::Transport { .. }
            | Self::Decode { .. } => true,
            Self::OutcomeUnknown { .. } | Self::NotSent { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_cut_on_a_char_boundary_with_an_ellipsis() {
        let short = "invalid ip 203.0.113.7, not in whitelist rid: 60196b9b";
        assert_eq!(cut_outside_text(short), short);
        let exact = "错".repeat(OUTSIDE_TEXT_MAX_CHARS);
        assert_eq!(cut_outside_text(&exact), exact);
        for long in ["错误".repeat(2048), "a😀".repeat(2048), "x".repeat(4096)] {
            let cut = cut_outside_text(&long);
            assert_eq!(cut.chars().count(), OUTSIDE_TEXT_MAX_CHARS + 1);
            assert!(cut.ends_with('…') && long.starts_with(cut.trim_end_matches('…')));
        }
    }

    #[test]
    fn an_errmsg_is_kept_to_200_characters_and_an_ellipsis() {
        let error = WeChatError::api(40001, &"x".repeat(4096));
        assert_eq!(error.errmsg().map(|m| m.chars().count()), Some(201));
    }
}
