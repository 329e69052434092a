//! wxplugin-bot: a Telegram chat-ops bot for approving applicants to a WeChat mini-program plugin.
//!
//! The poller notices new applicants and posts a card for each to the team chat; a press on the
//! card goes through the WeChat client and the card shows who decided, when, and the outcome.
//!
//! Layers, each using only those before it (checked by `tests/layering.rs`):
//! `domain` → `store`, `wechat` → `config`, `telegram` → `lifecycle` → `chat` → `bot` (the
//! wiring) → `cli`. `i18n`, `telemetry`, `redact`, `report` and `alloc` are leaves anyone may use; `testbed`
//! (sandbox, fake Bot API, demo) is not the bot and only the CLI and tests use it.

pub mod alloc;
pub mod bot;
pub mod chat;
pub mod cli;
pub mod config;
pub mod domain;
pub mod i18n;
pub mod lifecycle;
pub mod redact;
pub mod report;
pub mod store;
pub mod telegram;
pub mod telemetry;
pub mod testbed;
pub mod wechat;
