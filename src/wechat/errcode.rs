//! What WeChat's error codes mean, in both chat languages, so a person reading a card knows what
//! went wrong and whether to try again. The table is NOTES.md's, and only NOTES.md's.

use crate::i18n::Lang;

/// Codes that say "this access token is no good": drop it, fetch another, retry once.
pub const TOKEN_ERRCODES: [i64; 3] = [40001, 40014, 42001];

/// Codes that mean the operator configured something wrong; retrying cannot help.
pub const CONFIG_ERRCODES: [i64; 4] = [40013, 40125, 40164, 48001];

/// WeChat's "system busy". Writes are sent again on it, but nothing public promises that a write
/// answered -1 was not applied, so a resend's stale-state answer is read as "probably applied".
pub const SYSTEM_BUSY: i64 = -1;
/// "Only pending / only refused or timed out / not in the list": what a resend of a write that
/// already took effect gets.
pub const STALE_STATE: [i64; 3] = [89240, 89241, 89242];
/// Per-minute call limit.
pub const RATE_LIMITED: i64 = 45011;
/// Daily call quota exhausted.
pub const DAILY_QUOTA: i64 = 45009;

/// `(code, 中文, English)` for every code this project knows.
const TABLE: &[(i64, &str, &str)] = &[
    (-1, "系统繁忙,请稍后再试", "system busy; try again later"),
    (
        40001,
        "access_token 无效或不是最新 / AppSecret 错误",
        "access token invalid or not the latest, or wrong AppSecret",
    ),
    (40013, "不合法的 AppID", "invalid AppID"),
    (40014, "不合法的 access_token", "invalid access token"),
    (40125, "无效的 AppSecret", "invalid AppSecret"),
    (
        40164,
        "调用接口的 IP 不在白名单中",
        "the calling IP is not on the account's IP whitelist",
    ),
    (42001, "access_token 超时", "access token expired"),
    (45009, "接口调用超过每日限额", "daily API quota exhausted"),
    (
        45011,
        "API 调用太频繁,请稍后再试",
        "API called too often; try again in a minute",
    ),
    (47001, "数据格式错误", "malformed request body"),
    (
        48001,
        "api 功能未授权",
        "API not authorized for this account",
    ),
    (
        61007,
        "接口未授权给第三方平台",
        "API not authorized for the third-party platform",
    ),
    (89236, "该插件不能申请", "this plugin cannot be applied for"),
    (89237, "已经添加该插件", "the plugin is already added"),
    (
        89238,
        "申请或使用的插件已经达到上限",
        "plugin application or usage limit reached",
    ),
    (89239, "该插件不存在", "the plugin does not exist"),
    (
        89240,
        "只有“待确认”的申请可操作通过/拒绝",
        "only pending applications can be approved or rejected",
    ),
    (
        89241,
        "只有“已拒绝/已超时”的申请可操作删除",
        "only rejected or timed-out applications can be deleted",
    ),
    (
        89242,
        "该appid不在申请列表内",
        "this appid is not in the application list",
    ),
    (
        89243,
        "“待确认”的申请不可删除",
        "a pending application cannot be deleted",
    ),
    (89044, "不存在该插件appid", "no plugin with this appid"),
    (89244, "不存在该插件appid", "no plugin with this appid"),
];

/// The meaning of `code` in `lang`, if the code is known.
pub fn meaning(code: i64, lang: Lang) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, zh, en)| match lang {
            Lang::Zh => *zh,
            Lang::En => *en,
        })
}

/// What an operator should do about a configuration error code, in English (it goes to logs and
/// to the `check` command).
pub fn config_hint(code: i64) -> Option<&'static str> {
    match code {
        40164 => Some(
            "add this server's public IP to the mini-program's IP whitelist \
             (mp.weixin.qq.com → 开发管理 → 开发设置 → IP白名单)",
        ),
        40125 => Some("WECHAT_SECRET is not this mini-program's AppSecret"),
        40013 => Some("WECHAT_APPID is not a valid AppID"),
        48001 => Some("this account is not authorized for the plugin API"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_in_notes_has_both_languages() {
        let notes = [
            -1, 40001, 40013, 40014, 40125, 40164, 42001, 45009, 45011, 47001, 48001, 61007, 89236,
            89237, 89238, 89239, 89240, 89241, 89242, 89243, 89044, 89244,
        ];
        for code in notes {
            let zh = meaning(code, Lang::Zh).unwrap_or_default();
            let en = meaning(code, Lang::En).unwrap_or_default();
            assert!(
                !zh.is_empty() && !en.is_empty(),
                "code {code} lacks a meaning"
            );
            assert_ne!(zh, en, "code {code}: the two languages are the same text");
        }
        assert_eq!(meaning(12345, Lang::En), None);
    }

    #[test]
    fn config_codes_have_hints() {
        for code in CONFIG_ERRCODES {
            assert!(config_hint(code).is_some(), "{code}");
        }
    }
}
