//! Text made safe for Telegram's HTML parse mode: escaping, and cleaning WeChat- or
//! user-supplied text (control and bidi characters, length).

use crate::i18n::Texts;

/// Escapes text for Telegram's HTML parse mode (also inside attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Makes WeChat- or user-supplied text safe to show: control characters dropped (newlines kept
/// when `multiline`), whitespace runs tidied, cut to `max` characters with an ellipsis.
pub fn clean(text: &str, max: usize, multiline: bool) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut newlines = 0;
    for c in text.trim().chars() {
        let c = match c {
            '\n' if multiline => {
                newlines += 1;
                if newlines > 6 { ' ' } else { '\n' }
            }
            '\r' => continue,
            c if c.is_control() => ' ',
            // Bidi overrides and zero-width characters can make text lie about itself.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}' => continue,
            c => c,
        };
        if count == max {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// Telegram's most for a message's text: UTF-16 code units of the text after entity parsing.
pub const TEXT_MAX_UTF16: usize = 4096;

/// The length of `html` as Telegram counts it: UTF-16 code units of the text after entity
/// parsing (tags dropped, each `&...;` one unit), so an emoji outside the BMP counts two.
pub fn telegram_len(html: &str) -> usize {
    let mut count = 0;
    let mut chars = html.chars();
    while let Some(c) = chars.next() {
        match c {
            '<' => {
                for c in chars.by_ref() {
                    if c == '>' {
                        break;
                    }
                }
            }
            '&' => {
                count += 1;
                let rest = chars.as_str();
                if let Some(end) = rest.find(';').filter(|&i| i <= 8) {
                    chars = rest[end + 1..].chars();
                }
            }
            c => count += c.len_utf16(),
        }
    }
    count
}

/// `text` cut to at most `max` UTF-16 code units, the last of them an ellipsis when it is cut.
pub fn cut_utf16(text: &str, max: usize) -> String {
    if text.encode_utf16().count() <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf16() > max.saturating_sub(1) {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// Most characters of a name shown in the chat. WeChat caps a mini-program's name at 30
/// characters and Telegram a person's first and last name at 64 each, so this cuts only junk;
/// lists of such names stop at what fits in a message ([`telegram_len`]).
pub const NAME_MAX_CHARS: usize = 64;

/// A name shown in the chat, cleaned, cut to [`NAME_MAX_CHARS`] and escaped.
pub(crate) fn name_html(name: &str) -> String {
    escape(&clean(name, NAME_MAX_CHARS, false))
}

/// An applicant's nickname as every chat text shows it: [`name_html`], or the language's
/// placeholder when WeChat gave none (or nothing printable).
pub fn nickname_html(nickname: Option<&str>, t: &Texts) -> String {
    match nickname.map(name_html) {
        Some(name) if !name.is_empty() => name,
        _ => t.no_nickname.to_owned(),
    }
}

/// Only http(s) links become anchors: WeChat-supplied URLs are not trusted blindly.
pub(crate) fn safe_url(url: &str) -> Option<&str> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    ((lower.starts_with("https://") || lower.starts_with("http://"))
        && url.len() <= 1024
        && !url.chars().any(|c| c.is_whitespace() || c.is_control()))
    .then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_and_clean_make_hostile_text_safe() {
        assert_eq!(
            escape(r#"<b>"x" & y</b>"#),
            "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
        );
        assert_eq!(clean("a\u{0}b\u{202e}c\r\nd", 100, true), "a bc\nd");
        assert_eq!(clean("a\nb", 100, false), "a b");
        let long = "字".repeat(10_000);
        let cut = clean(&long, 10, false);
        assert_eq!(cut.chars().count(), 11);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn lengths_are_counted_as_telegram_counts_them() {
        assert_eq!(telegram_len("<b>😀</b>&amp;中"), 4);
        assert_eq!(
            cut_utf16(&"😀".repeat(150), 200).encode_utf16().count(),
            199
        );
        assert_eq!(cut_utf16("short", 200), "short");
        for html in [
            "plain",
            "<b>Decision history (latest 3):</b>\n• <code>wx1</code> → done",
            "&lt;&amp;&gt;&quot;x — <a href=\"https://t.me/c/1/2?a=1&amp;b=2\">card</a>",
            "中文 🧩 &lt;appid&gt; 👨‍👩‍👧",
        ] {
            let plain = crate::testbed::fake_telegram::html_to_plain(html).expect("valid HTML");
            assert_eq!(telegram_len(html), plain.encode_utf16().count(), "{html}");
        }
    }
}
