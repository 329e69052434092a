//! wxplugin-bot: a Telegram chat-ops bot for approving applicants to a WeChat mini-program plugin.

pub mod applicant;
pub mod i18n;
pub mod redact;
pub mod wechat;
