//! The lifecycle of an applicant's card: the shared [`app::App`], a plugin's poller that keeps
//! cards in line with WeChat's list, a team chat's desk that posts and edits them, decisions from
//! claim to recorded outcome (and the quorum of votes an approval may need), reminders, and
//! health. It uses the store, the WeChat client and the Telegram transport, and knows no chat
//! handler.

pub mod app;
pub mod decision;
pub mod desk;
pub mod health;
pub mod leader;
pub mod plugin;
pub mod poller;
pub mod quorum;
pub mod reminder;
