//! Keeps secrets out of logs and error text. Anything that may hold a URL WeChat was called with
//! (reqwest errors print it, and it carries `access_token=` or `secret=`) goes through [`redact`].

/// Query parameters whose values are secret.
const SECRET_PARAMS: [&str; 3] = ["access_token=", "secret=", "token="];

/// Replaces the value of every secret query parameter in `text` with `***`.
pub fn redact(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::redact;

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
}
