//! The chat languages. Every text a person reads in the chat comes from here or from the
//! per-language tables next to the code that uses it, chosen once by `BOT_LANG`.

use std::str::FromStr;

/// A chat language.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    /// 中文 (the default).
    #[default]
    Zh,
    /// English.
    En,
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" | "zh_cn" | "cn" => Ok(Self::Zh),
            "en" | "en-us" | "en_us" | "en-gb" => Ok(Self::En),
            other => Err(format!("'{other}' is not a supported language (zh or en)")),
        }
    }
}
