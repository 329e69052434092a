//! The bot's vocabulary, free of I/O and of Telegram: applicants as WeChat lists them, the card
//! that stands for each, the actions approvers take and what the audit log keeps of them. Every
//! other layer speaks these types; none of them knows the store, WeChat or the chat.

pub mod action;
pub mod applicant;
pub mod audit;
pub mod card;

/// Now, in unix seconds.
pub fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Now, in unix milliseconds (an undo window's deadline).
pub fn now_millis() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
