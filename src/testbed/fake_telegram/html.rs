//! Telegram's HTML parse mode, as strict as Telegram: the fake rejects what Telegram rejects (an
//! unknown tag, a bare `<`, an unclosed tag), so an escaping bug fails a test instead of a chat.

/// Tags Telegram accepts.
const ALLOWED: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

/// Parses `html`, returning the text a person sees (tags removed, entities decoded) or the
/// reason Telegram would give.
pub fn to_plain(html: &str) -> Result<String, String> {
    let mut out = String::with_capacity(html.len());
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    let offset = |rest: &str| html.len() - rest.len();
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let Some(end) = rest.find('>') else {
                    return Err(format!(
                        "Can't find end of the entity starting at byte offset {}",
                        offset(rest)
                    ));
                };
                let inner = &rest[1..end];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    match stack.pop() {
                        Some(open) if open == name => {}
                        Some(open) => {
                            return Err(format!(
                                "Unmatched end tag at byte offset {}, expected \"</{open}>\", found \"</{name}>\"",
                                offset(rest)
                            ));
                        }
                        None => {
                            return Err(format!(
                                "Unexpected end tag at byte offset {}",
                                offset(rest)
                            ));
                        }
                    }
                } else {
                    let name = inner
                        .split(|c: char| c.is_whitespace())
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    if !ALLOWED.contains(&name.as_str()) {
                        return Err(format!(
                            "Unsupported start tag \"{name}\" at byte offset {}",
                            offset(rest)
                        ));
                    }
                    if name == "a" && !inner.contains("href=") {
                        return Err(format!(
                            "Can't find href in a tag at byte offset {}",
                            offset(rest)
                        ));
                    }
                    if !inner.matches('"').count().is_multiple_of(2) {
                        return Err(format!(
                            "Unclosed attribute value at byte offset {}",
                            offset(rest)
                        ));
                    }
                    stack.push(name);
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let entity_end = rest[1..].find(';').map(|i| i + 1).filter(|i| *i <= 10);
                let decoded =
                    entity_end.and_then(|end| decode_entity(&rest[1..end]).map(|c| (c, end)));
                match decoded {
                    Some((ch, end)) => {
                        out.push(ch);
                        rest = &rest[end + 1..];
                    }
                    None => {
                        out.push('&');
                        rest = &rest[1..];
                    }
                }
            }
            c => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    match stack.pop() {
        Some(open) => Err(format!(
            "Can't find end tag corresponding to start tag \"{open}\""
        )),
        None => Ok(out),
    }
}

/// The user ids of `<a href="tg://user?id=N">` links, which Telegram turns into mentions.
pub fn user_links(html: &str) -> Vec<i64> {
    html.split("tg://user?id=")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::to_plain;

    #[test]
    fn accepts_what_telegram_accepts() {
        assert_eq!(
            to_plain("<b>a</b> &lt;x&gt; &amp; &quot;q&quot; &#65;&#x42;").unwrap(),
            "a <x> & \"q\" AB"
        );
        assert_eq!(
            to_plain("<a href=\"https://x/?a=1&amp;b=2\">link</a>").unwrap(),
            "link"
        );
        assert_eq!(to_plain("a > b & c").unwrap(), "a > b & c");
    }

    #[test]
    fn rejects_what_telegram_rejects() {
        assert!(
            to_plain("<script>x</script>")
                .unwrap_err()
                .contains("Unsupported start tag \"script\"")
        );
        assert!(to_plain("1 < 2").is_err());
        assert!(
            to_plain("<b>open")
                .unwrap_err()
                .contains("Can't find end tag")
        );
        assert!(to_plain("<b>x</i>").is_err());
        assert!(to_plain("<a>x</a>").is_err());
    }
}
