//! What a token endpoint answers, read the same way for every token WeChat hands out (the
//! account's own, a component token, an authorizer token), and when to fetch the next one.

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use crate::wechat::WeChatError;

/// The longest life WeChat documents for a token (`expires_in` is up to 7200 s): a longer one
/// from the answer is taken as this.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 7200;

/// Refresh 5 minutes before expiry (the stable endpoint renews in its last 5 minutes), or at half
/// the lifetime when the token has less than 10 minutes left. Lifetimes are capped at
/// [`MAX_TOKEN_LIFETIME_SECS`], so the instant it gives never overflows.
pub(crate) fn refresh_after(expires_in: u64) -> Duration {
    let expires_in = expires_in.min(MAX_TOKEN_LIFETIME_SECS);
    let secs = if expires_in > 600 {
        expires_in - 300
    } else {
        expires_in / 2
    };
    Duration::from_secs(secs.max(1))
}

/// A token's lifetime from `expires_in`: a positive number of seconds, capped at
/// [`MAX_TOKEN_LIFETIME_SECS`] however large; `None` for nonsense (zero, negative, not a number).
fn token_lifetime(value: &Value) -> Option<u64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(secs) = n.as_u64() {
        return (secs > 0).then(|| secs.min(MAX_TOKEN_LIFETIME_SECS));
    }
    // Negative, fractional or beyond u64: as a float, which saturates instead of overflowing.
    let secs = n.as_f64()?;
    (secs >= 1.0).then(|| (secs.min(MAX_TOKEN_LIFETIME_SECS as f64)) as u64)
}

/// A token endpoint's answer.
pub(crate) struct TokenAnswer {
    /// The token.
    pub token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// `authorizer_refresh_token`, when the answer has one (the authorizer token's endpoint).
    pub refresh_token: Option<String>,
}

/// Reads a token answer whose token is in `field`. It is read as a JSON value and checked field
/// by field, so no error quotes a value from it (serde's type errors would: the token itself,
/// when it is not a string).
pub(crate) fn decode_token_answer(
    status: u16,
    bytes: &[u8],
    field: &str,
) -> Result<TokenAnswer, WeChatError> {
    if !(200..300).contains(&status) {
        return Err(WeChatError::Http { status });
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| WeChatError::decode(status, &super::describe_bad_body(bytes, &e)))?;
    let bad = |what: String| WeChatError::decode(status, &format!("the token answer's {what}"));
    let Some(answer) = value.as_object() else {
        return Err(WeChatError::decode(
            status,
            &format!(
                "the token answer is {}, not an object",
                super::json_kind(&value)
            ),
        ));
    };
    match answer.get("errcode") {
        None | Some(Value::Null) => {}
        Some(code) => match super::lenient_i64(code) {
            Some(0) => {}
            Some(code) => {
                let errmsg = answer
                    .get("errmsg")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                return Err(WeChatError::api(code, errmsg));
            }
            None => {
                return Err(bad(format!(
                    "errcode is {}, not a number",
                    super::json_kind(code)
                )));
            }
        },
    }
    let token = match answer.get(field) {
        Some(Value::String(token)) if !token.is_empty() => token.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(WeChatError::decode(
                status,
                &format!("the token answer has neither errcode nor {field}"),
            ));
        }
        Some(other) => {
            return Err(bad(format!(
                "{field} is {}, not a string",
                super::json_kind(other)
            )));
        }
    };
    let expires_in = match answer.get("expires_in") {
        None | Some(Value::Null) => MAX_TOKEN_LIFETIME_SECS,
        Some(value) => token_lifetime(value).ok_or_else(|| {
            bad(format!(
                "expires_in is {}, not a positive number of seconds",
                match value {
                    Value::Number(_) => "zero or negative",
                    other => super::json_kind(other),
                }
            ))
        })?,
    };
    let refresh_token = answer
        .get("authorizer_refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Ok(TokenAnswer {
        token,
        expires_in,
        refresh_token,
    })
}

/// `base` + `path`, whether or not `base` ends in a slash.
pub(crate) fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_margin() {
        assert_eq!(refresh_after(7200), Duration::from_secs(6900));
        assert_eq!(refresh_after(400), Duration::from_secs(200));
        assert_eq!(refresh_after(0), Duration::from_secs(1));
        assert_eq!(refresh_after(u64::MAX), Duration::from_secs(6900));
    }

    #[test]
    fn token_lifetimes_are_capped_and_nonsense_is_refused() {
        let life = |text: &str| token_lifetime(&serde_json::from_str(text).unwrap());
        assert_eq!(life("7200"), Some(7200));
        assert_eq!(life("60"), Some(60));
        assert_eq!(life("9223372036854775808"), Some(7200));
        assert_eq!(life("1e300"), Some(7200));
        assert_eq!(life("90.5"), Some(90));
        for nonsense in ["0", "-5", "0.5", "-1e300", "\"7200\"", "null", "[]"] {
            assert_eq!(life(nonsense), None, "{nonsense}");
        }
    }

    #[test]
    fn join_keeps_base_path() {
        let base = Url::parse("http://127.0.0.1:9/prefix/").unwrap();
        assert_eq!(
            join(&base, "wxa/devplugin").as_str(),
            "http://127.0.0.1:9/prefix/wxa/devplugin"
        );
        let base = Url::parse("https://api.weixin.qq.com").unwrap();
        assert_eq!(
            join(&base, "cgi-bin/token").as_str(),
            "https://api.weixin.qq.com/cgi-bin/token"
        );
    }
}
