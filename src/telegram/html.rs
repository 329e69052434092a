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

/// Undoes [`escape`]: the plain text of HTML that holds no tags, such as a card's outcome line,
/// for places Telegram shows without parsing (an answer to a press).
pub fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Makes WeChat- or user-supplied text safe to show: control characters dropped (newlines kept
/// when `multiline`), characters that show nothing or lie about the text dropped (bidi controls,
/// zero-width and invisible ones, fillers, stray tag characters) while the joiners and tags inside
/// emoji sequences stay, cut to `max` characters with an ellipsis.
pub fn clean(text: &str, max: usize, multiline: bool) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut newlines = 0;
    let mut last: Option<char> = None;
    let mut chars = text.trim().chars();
    while let Some(c) = chars.next() {
        let c = match c {
            '\n' if multiline => {
                newlines += 1;
                if newlines > 6 { ' ' } else { '\n' }
            }
            '\r' => continue,
            // Line and paragraph separators: a plain space keeps the words apart.
            '\u{2028}' | '\u{2029}' => ' ',
            c if c.is_control() => ' ',
            // Inside an emoji sequence a joiner is part of the picture ("👨‍👩‍👧").
            '\u{200d}'
                if last.is_some_and(ends_emoji)
                    && chars.as_str().chars().next().is_some_and(is_pictograph) =>
            {
                '\u{200d}'
            }
            // A flag's tag characters, kept whole when they close properly (🏴 + tags + cancel).
            '\u{e0020}'..='\u{e007e}' if last == Some('\u{1f3f4}') => {
                let rest = chars.as_str();
                let tags = rest
                    .char_indices()
                    .find(|&(_, t)| !('\u{e0020}'..='\u{e007e}').contains(&t))
                    .filter(|&(_, t)| t == '\u{e007f}');
                if let Some((end, cancel)) = tags {
                    out.push(c);
                    out.push_str(&rest[..end]);
                    out.push(cancel);
                    chars = rest[end + cancel.len_utf8()..].chars();
                    last = Some(cancel);
                }
                continue;
            }
            c if is_invisible(c) => continue,
            c => c,
        };
        if count == max {
            out.push('…');
            return out;
        }
        out.push(c);
        last = Some(c);
        count += 1;
    }
    out
}

/// Characters that show nothing (or pass for a space) and so can make text lie about itself:
/// bidi controls and marks, zero-width characters, word joiners and invisible operators, the soft
/// hyphen, the BOM, Mongolian and Hangul fillers, tag characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{061c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fff8}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// A pictograph that emoji sequences are made of (approximately Unicode's
/// Extended_Pictographic: enough to tell a joiner inside an emoji from a stray one).
fn is_pictograph(c: char) -> bool {
    matches!(
        c as u32,
        0x00a9
            | 0x00ae
            | 0x203c
            | 0x2049
            | 0x2122
            | 0x2139
            | 0x2194..=0x21aa
            | 0x231a..=0x23ff
            | 0x24c2
            | 0x25aa..=0x27bf
            | 0x2934
            | 0x2935
            | 0x2b05..=0x2b55
            | 0x3030
            | 0x303d
            | 0x3297
            | 0x3299
            | 0x1f000..=0x1faff
    )
}

/// Whether an emoji may end with `c` and so be joined to the next: a pictograph, a skin tone (a
/// pictograph here), the emoji presentation selector or a keycap.
fn ends_emoji(c: char) -> bool {
    is_pictograph(c) || c == '\u{fe0f}' || c == '\u{20e3}'
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
        for text in [r#"<b>"x" & y</b>"#, "&amp;lt; 中 &", ""] {
            assert_eq!(unescape(&escape(text)), text);
        }
        assert_eq!(clean("a\u{0}b\u{202e}c\r\nd", 100, true), "a bc\nd");
        assert_eq!(clean("a\nb", 100, false), "a b");
        assert_eq!(clean("a\u{200d}b\u{e0041}\u{2028}c", 100, false), "ab c");
        let family =
            "👨\u{200d}👩\u{200d}👧 🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}";
        assert_eq!(clean(family, 100, false), family);
        assert_eq!(clean("🏴\u{e0067}\u{e0062} x", 100, false), "🏴 x");
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
