//! wxplugin-bot: a Telegram chat-ops bot for approving applicants to a WeChat mini-program plugin.
//!
//! The poller notices new applicants and posts a card for each to the team chat; a press on the
//! card goes through the WeChat client and the card shows who decided, when, and the outcome.

pub mod app;
pub mod applicant;
pub mod approver;
pub mod bot;
pub mod card;
pub mod cli;
pub mod commands;
pub mod config;
pub mod decision;
pub mod demo;
pub mod fake_telegram;
pub mod i18n;
pub mod limiter;
pub mod poller;
pub mod redact;
pub mod reminder;
pub mod sandbox;
pub mod store;
pub mod telemetry;
pub mod wechat;
