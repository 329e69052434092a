//! Callback data: what a card's button asks for, in at most 64 bytes. Forgeable, so a decoded
//! press is only a claim: the handler checks it against the stored card for that chat and message.

/// What a button press asks for. Encoded in callback data (at most 64 bytes); forgeable, so the
/// card id is always checked against the stored card for the chat and message pressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Press {
    /// ✅
    Approve(i64),
    /// ❌: show the preset reasons.
    Reject(i64),
    /// A preset reason, by [`reason_key`] of its text: the button names the words it shows, so a
    /// reordered or edited `REJECT_REASONS` can never send WeChat other words than the button's.
    Reason(i64, u32),
    /// ✍️ Other…: ask for a typed reason.
    OtherReason(i64),
    /// ↩ Cancel the reject flow.
    Cancel(i64),
    /// 🔁 Retry the failed decision.
    Retry(i64),
    /// 🔄 Re-read the applicant's status.
    Refresh(i64),
    /// 🗑 Delete a refused or timed-out applicant.
    Delete(i64),
    /// ↩ Take back one's own ✅ vote (quorum).
    Withdraw(i64),
    /// ↩ Take back a decision waiting out its undo window.
    Undo(i64),
}

/// Telegram's limit on callback data.
pub const CALLBACK_DATA_MAX: usize = 64;

impl Press {
    /// The card the press is about.
    pub fn card_id(self) -> i64 {
        match self {
            Self::Approve(id)
            | Self::Reject(id)
            | Self::Reason(id, _)
            | Self::OtherReason(id)
            | Self::Cancel(id)
            | Self::Retry(id)
            | Self::Refresh(id)
            | Self::Delete(id)
            | Self::Withdraw(id)
            | Self::Undo(id) => id,
        }
    }

    /// The callback data string.
    pub fn encode(self) -> String {
        match self {
            Self::Approve(id) => format!("ap:{id}"),
            Self::Reject(id) => format!("rj:{id}"),
            Self::Reason(id, key) => format!("rs:{id}:{key:08x}"),
            Self::OtherReason(id) => format!("ot:{id}"),
            Self::Cancel(id) => format!("cx:{id}"),
            Self::Retry(id) => format!("rt:{id}"),
            Self::Refresh(id) => format!("rf:{id}"),
            Self::Delete(id) => format!("dl:{id}"),
            Self::Withdraw(id) => format!("wd:{id}"),
            Self::Undo(id) => format!("ud:{id}"),
        }
    }

    /// Parses callback data; anything not produced by [`Press::encode`] is `None`.
    pub fn decode(data: &str) -> Option<Self> {
        if data.len() > CALLBACK_DATA_MAX {
            return None;
        }
        let mut parts = data.split(':');
        let code = parts.next()?;
        let id: i64 = parts.next()?.parse().ok().filter(|id| *id > 0)?;
        let extra = parts.next();
        if parts.next().is_some() {
            return None;
        }
        let strict_id = |p: Press| (p.encode() == data).then_some(p);
        let press = match (code, extra) {
            ("ap", None) => Self::Approve(id),
            ("rj", None) => Self::Reject(id),
            ("rs", Some(k)) if k.len() == 8 => Self::Reason(id, u32::from_str_radix(k, 16).ok()?),
            ("ot", None) => Self::OtherReason(id),
            ("cx", None) => Self::Cancel(id),
            ("rt", None) => Self::Retry(id),
            ("rf", None) => Self::Refresh(id),
            ("dl", None) => Self::Delete(id),
            ("wd", None) => Self::Withdraw(id),
            ("ud", None) => Self::Undo(id),
            _ => return None,
        };
        // Reject non-canonical spellings ("ap:+1", "ap:01") so one card has one encoding.
        strict_id(press)
    }
}

/// A preset reason's key: FNV-1a of its text, stable across restarts and builds.
pub fn reason_key(reason: &str) -> u32 {
    reason.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// The preset reason whose key is `key`, if one of `reasons` has it.
pub fn reason_by_key(reasons: &[String], key: u32) -> Option<&String> {
    reasons.iter().find(|r| reason_key(r) == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_press_round_trips_within_64_bytes() {
        for id in [1, 42, i64::MAX] {
            for press in [
                Press::Approve(id),
                Press::Reject(id),
                Press::Reason(id, 0),
                Press::Reason(id, u32::MAX),
                Press::OtherReason(id),
                Press::Cancel(id),
                Press::Retry(id),
                Press::Refresh(id),
                Press::Delete(id),
                Press::Withdraw(id),
                Press::Undo(id),
            ] {
                let data = press.encode();
                assert!(data.len() <= CALLBACK_DATA_MAX, "{data}");
                assert_eq!(Press::decode(&data), Some(press));
                assert_eq!(press.card_id(), id);
            }
        }
    }

    #[test]
    fn garbage_and_non_canonical_data_decode_to_nothing() {
        for data in [
            "",
            "ap",
            "ap:",
            "ap:0",
            "ap:-1",
            "ap:+1",
            "ap:01",
            "ap:1:2",
            "rs:1",
            "rs:1:256",
            "rs:1:0",
            "rs:1:ABCDEF12",
            "rs:1:+bcdef12",
            "rs:1:0000000g",
            "zz:1",
            "ap:99999999999999999999",
            "ap:1 ",
            "<b>:1",
        ] {
            assert_eq!(Press::decode(data), None, "{data:?}");
        }
        assert_eq!(Press::decode(&format!("ap:{}", "1".repeat(70))), None);
    }
}
