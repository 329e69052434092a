//! The applicant: a mini-program that asked to use the team's plugin, as the rest of the bot sees it.
//!
//! WeChat's wire format is loose (missing fields, numbers as strings); these types are what is left
//! after parsing at the boundary, so everything past the WeChat client can trust them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest appid we accept. Real ones are 18 characters (`wx` + 16 hex digits); the margin
/// admits other account kinds without letting arbitrary text into callback data or SQL keys.
pub const APPID_MAX_LEN: usize = 32;

/// A validated mini-program appid: 2 to 32 ASCII letters, digits, `_` or `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppId(String);

/// Why a string is not an appid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppIdError {
    /// Nothing was given.
    #[error("the appid is empty")]
    Empty,
    /// Longer than [`APPID_MAX_LEN`].
    #[error("the appid is {0} characters long; at most {APPID_MAX_LEN} are allowed")]
    TooLong(usize),
    /// Shorter than two characters.
    #[error("the appid is too short")]
    TooShort,
    /// Holds something other than ASCII letters, digits, `_` or `-`.
    #[error("the appid may hold only ASCII letters, digits, '_' and '-'")]
    BadCharacter,
}

impl AppId {
    /// Parses user or wire input, trimming surrounding whitespace.
    pub fn parse(raw: &str) -> Result<Self, AppIdError> {
        let s = raw.trim();
        let len = s.chars().count();
        if len == 0 {
            return Err(AppIdError::Empty);
        }
        if len > APPID_MAX_LEN {
            return Err(AppIdError::TooLong(len));
        }
        if len < 2 {
            return Err(AppIdError::TooShort);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(AppIdError::BadCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// The appid as WeChat spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AppId {
    type Error = AppIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AppId> for String {
    fn from(value: AppId) -> Self {
        value.0
    }
}

impl std::str::FromStr for AppId {
    type Err = AppIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Where an application stands, as WeChat reports it (`status` 1–4). Unknown codes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApplyStatus {
    /// 1 申请中: the only state that can be approved or refused.
    Pending,
    /// 2 申请通过.
    Approved,
    /// 3 被拒绝: can be deleted.
    Refused,
    /// 4 申请已超时: can be deleted.
    Expired,
    /// Any other value WeChat sends; kept as is, never acted on.
    Unknown(i64),
}

impl ApplyStatus {
    /// Maps WeChat's numeric status.
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => Self::Pending,
            2 => Self::Approved,
            3 => Self::Refused,
            4 => Self::Expired,
            other => Self::Unknown(other),
        }
    }

    /// WeChat's numeric status.
    pub fn code(self) -> i64 {
        match self {
            Self::Pending => 1,
            Self::Approved => 2,
            Self::Refused => 3,
            Self::Expired => 4,
            Self::Unknown(c) => c,
        }
    }

    /// Whether WeChat will accept `dev_agree` / `dev_refuse` for it.
    pub fn is_decidable(self) -> bool {
        self == Self::Pending
    }

    /// Whether WeChat will accept `dev_delete` for it.
    pub fn is_deletable(self) -> bool {
        matches!(self, Self::Refused | Self::Expired)
    }

    /// A stable lower-case name, used in commands (`/list refused`) and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Refused => "refused",
            Self::Expired => "expired",
            Self::Unknown(_) => "unknown",
        }
    }

    /// Parses a name given by a person (`pending`, `approved`, …, or the numeric code).
    pub fn parse_name(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "refused" | "rejected" => Some(Self::Refused),
            "expired" | "timeout" | "timed-out" => Some(Self::Expired),
            other => other.parse::<i64>().ok().map(Self::from_code),
        }
    }
}

impl fmt::Display for ApplyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(c) => write!(f, "unknown({c})"),
            other => f.write_str(other.name()),
        }
    }
}

/// One category pair the applicant's mini-program is registered under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// First-level category (一级类目).
    pub first: String,
    /// Second-level category (二级类目).
    pub second: String,
}

/// A mini-program that applied to use the plugin, with everything WeChat told about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applicant {
    /// Who applied.
    pub appid: AppId,
    /// Where the application stands.
    pub status: ApplyStatus,
    /// The mini-program's name, when WeChat sent one.
    pub nickname: Option<String>,
    /// Link to its avatar.
    pub avatar_url: Option<String>,
    /// The applicant's own explanation.
    pub reason: Option<String>,
    /// Link to the applicant's mini-program code image.
    pub apply_url: Option<String>,
    /// When it applied.
    pub applied_at: Option<jiff::Timestamp>,
    /// Its registered categories; often empty.
    pub categories: Vec<Category>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appid_accepts_real_ids_and_trims() {
        let id = AppId::parse("  wx1234567890abcdef ").unwrap();
        assert_eq!(id.as_str(), "wx1234567890abcdef");
    }

    #[test]
    fn appid_rejects_what_is_not_an_appid() {
        assert_eq!(AppId::parse(""), Err(AppIdError::Empty));
        assert_eq!(AppId::parse("   "), Err(AppIdError::Empty));
        assert_eq!(AppId::parse("w"), Err(AppIdError::TooShort));
        assert_eq!(AppId::parse(&"a".repeat(33)), Err(AppIdError::TooLong(33)));
        assert_eq!(AppId::parse("wx<b>"), Err(AppIdError::BadCharacter));
        assert_eq!(AppId::parse("wx 12"), Err(AppIdError::BadCharacter));
        assert_eq!(AppId::parse("wx１２"), Err(AppIdError::BadCharacter));
    }

    #[test]
    fn status_codes_round_trip_and_unknown_is_kept() {
        for code in [1, 2, 3, 4, 0, 7, -3] {
            assert_eq!(ApplyStatus::from_code(code).code(), code);
        }
        assert_eq!(ApplyStatus::from_code(9), ApplyStatus::Unknown(9));
        assert!(ApplyStatus::Pending.is_decidable());
        assert!(!ApplyStatus::Refused.is_decidable());
        assert!(ApplyStatus::Expired.is_deletable());
        assert!(!ApplyStatus::Approved.is_deletable());
        assert_eq!(
            ApplyStatus::parse_name("Refused"),
            Some(ApplyStatus::Refused)
        );
        assert_eq!(ApplyStatus::parse_name("4"), Some(ApplyStatus::Expired));
        assert_eq!(ApplyStatus::parse_name("nope"), None);
    }
}
