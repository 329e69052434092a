//! What WeChat's error codes mean, in both chat languages, so a person reading a card knows what
//! went wrong and whether to try again. The table is docs/wechat-api.md#error-codes, and only
//! that.

use crate::i18n::Lang;

/// Codes that say "this access token is no good": drop it, fetch another, retry once.
pub const TOKEN_ERRCODES: [i64; 3] = [40001, 40014, 42001];

/// Codes that mean the operator configured something wrong; retrying cannot help.
pub const CONFIG_ERRCODES: [i64; 11] = [
    40013, 40125, 40164, 41001, 48001, 61004, 61005, 61006, 61011, 61023, 85107,
];

/// A third-party platform's refresh token is no longer valid: the plugin's owner must authorize
/// the platform again. Announced once, on its own.
pub const REFRESH_TOKEN_INVALID: i64 = 61023;

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

/// One error code WeChat documents, with what it means in each chat language.
struct Errcode {
    code: i64,
    zh: &'static str,
    en: &'static str,
}

/// Every code this project knows (docs/wechat-api.md#error-codes).
const TABLE: &[Errcode] = &[
    Errcode {
        code: -1,
        zh: "系统繁忙，请稍后再试",
        en: "system busy; try again later",
    },
    Errcode {
        code: 40001,
        zh: "access_token 无效或不是最新 / AppSecret 错误",
        en: "access token invalid or not the latest, or wrong AppSecret",
    },
    Errcode {
        code: 40013,
        zh: "不合法的 AppID",
        en: "invalid AppID",
    },
    Errcode {
        code: 40014,
        zh: "不合法的 access_token",
        en: "invalid access token",
    },
    Errcode {
        code: 40125,
        zh: "无效的 AppSecret",
        en: "invalid AppSecret",
    },
    Errcode {
        code: 40164,
        zh: "调用接口的 IP 不在白名单中",
        en: "the calling IP is not on the account's IP whitelist",
    },
    Errcode {
        code: 41001,
        zh: "缺少 access_token 参数",
        en: "access token missing",
    },
    Errcode {
        code: 42001,
        zh: "access_token 超时",
        en: "access token expired",
    },
    Errcode {
        code: 45009,
        zh: "接口调用超过每日限额",
        en: "daily API quota exhausted",
    },
    Errcode {
        code: 45011,
        zh: "API 调用太频繁，请稍后再试",
        en: "API called too often; try again in a minute",
    },
    Errcode {
        code: 47001,
        zh: "数据格式错误",
        en: "malformed request body",
    },
    Errcode {
        code: 48001,
        zh: "api 功能未授权",
        en: "API not authorized for this account",
    },
    Errcode {
        code: 61004,
        zh: "调用方 IP 不在第三方平台的白名单中",
        en: "the calling IP is not on the third-party platform's whitelist",
    },
    Errcode {
        code: 61005,
        zh: "component_verify_ticket 已过期",
        en: "the component_verify_ticket has expired",
    },
    Errcode {
        code: 61006,
        zh: "component_verify_ticket 无效",
        en: "the component_verify_ticket is invalid",
    },
    Errcode {
        code: 61007,
        zh: "接口未授权给第三方平台",
        en: "API not authorized for the third-party platform",
    },
    Errcode {
        code: 61011,
        zh: "无效的第三方平台",
        en: "invalid third-party platform (component AppID)",
    },
    Errcode {
        code: 61023,
        zh: "授权方的 refresh_token 已失效",
        en: "the authorizer's refresh token is no longer valid",
    },
    Errcode {
        code: 85107,
        zh: "接口不在云托管微信令牌权限的白名单中",
        en: "this API is not on the Cloud Run environment's WeChat token whitelist",
    },
    Errcode {
        code: 85113,
        zh: "云托管的开放接口服务尚未就绪，请几分钟后再试",
        en: "Cloud Run's cloud call is not ready yet; try again in a few minutes",
    },
    Errcode {
        code: 89236,
        zh: "该插件不能申请",
        en: "this plugin cannot be applied for",
    },
    Errcode {
        code: 89237,
        zh: "已经添加该插件",
        en: "the plugin is already added",
    },
    Errcode {
        code: 89238,
        zh: "申请或使用的插件已经达到上限",
        en: "plugin application or usage limit reached",
    },
    Errcode {
        code: 89239,
        zh: "该插件不存在",
        en: "the plugin does not exist",
    },
    Errcode {
        code: 89240,
        zh: "只有“待确认”的申请可操作通过/拒绝",
        en: "only pending applications can be approved or rejected",
    },
    Errcode {
        code: 89241,
        zh: "只有“已拒绝/已超时”的申请可操作删除",
        en: "only rejected or timed-out applications can be deleted",
    },
    Errcode {
        code: 89242,
        zh: "该appid不在申请列表内",
        en: "this appid is not in the application list",
    },
    Errcode {
        code: 89243,
        zh: "“待确认”的申请不可删除",
        en: "a pending application cannot be deleted",
    },
    Errcode {
        code: 89044,
        zh: "不存在该插件appid",
        en: "no plugin with this appid",
    },
    Errcode {
        code: 89244,
        zh: "不存在该插件appid",
        en: "no plugin with this appid",
    },
];

/// The meaning of `code` in `lang`, if the code is known.
pub fn meaning(code: i64, lang: Lang) -> Option<&'static str> {
    TABLE.iter().find(|e| e.code == code).map(|e| match lang {
        Lang::Zh => e.zh,
        Lang::En => e.en,
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
        41001 => Some(
            "the call carried no access token: with WECHAT_TOKEN_MODE=cloudrun, switch on \
             开放接口服务 for this Cloud Run service and deploy a new version (one built before it \
             was switched on calls without it)",
        ),
        85107 => Some(
            "add /wxa/devplugin to the Cloud Run environment's WeChat token whitelist \
             (云托管控制台 → 云调用 → 微信令牌权限配置)",
        ),
        61004 => Some(
            "add this server's public IP to the third-party platform's whitelist \
             (open.weixin.qq.com → 第三方平台 → 开发资料 → 白名单IP)",
        ),
        61005 | 61006 => Some(
            "check the platform's ticket receiver: WECHAT_COMPONENT_TICKET_FILE must hold the \
             latest component_verify_ticket WeChat pushed (every 10 minutes)",
        ),
        61011 => Some("WECHAT_COMPONENT_APPID is not this third-party platform's AppID"),
        61023 => Some(
            "the plugin's owner must authorize the third-party platform again; then set \
             WECHAT_AUTHORIZER_REFRESH_TOKEN to the new authorizer_refresh_token and restart",
        ),
        _ => None,
    }
}

/// [`config_hint`] for the chat, in its language.
pub fn config_hint_in(code: i64, lang: Lang) -> Option<&'static str> {
    match lang {
        Lang::En => config_hint(code),
        Lang::Zh => match code {
            40164 => Some(
                "请把本服务器的公网 IP 加入小程序的 IP 白名单（mp.weixin.qq.com → 开发管理 → 开发设置 → IP白名单）",
            ),
            40125 => Some("WECHAT_SECRET 不是这个小程序的 AppSecret"),
            40013 => Some("WECHAT_APPID 不是有效的 AppID"),
            48001 => Some("这个账号没有插件管理接口的权限"),
            41001 => Some(
                "调用没有带 access_token：使用 WECHAT_TOKEN_MODE=cloudrun 时，请为这个云托管服务开启开放接口服务并部署新版本（开启之前构建的版本不会带上它）",
            ),
            85107 => Some(
                "请把 /wxa/devplugin 加入云托管环境的微信令牌白名单（云托管控制台 → 云调用 → 微信令牌权限配置）",
            ),
            61004 => Some(
                "请把本服务器的公网 IP 加入第三方平台的白名单（open.weixin.qq.com → 第三方平台 → 开发资料 → 白名单IP）",
            ),
            61005 | 61006 => Some(
                "请检查第三方平台的票据接收服务：WECHAT_COMPONENT_TICKET_FILE 应保存微信最新推送的 component_verify_ticket（每 10 分钟推送一次）",
            ),
            61011 => Some("WECHAT_COMPONENT_APPID 不是这个第三方平台的 AppID"),
            61023 => Some(
                "需要插件所有者重新授权第三方平台；之后把新的 authorizer_refresh_token 填入 WECHAT_AUTHORIZER_REFRESH_TOKEN 并重启",
            ),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chinese_meanings_use_full_width_punctuation() {
        for e in super::TABLE {
            let problems = crate::i18n::zh_punctuation_problems(e.zh);
            assert!(problems.is_empty(), "{}: {} ({problems:?})", e.code, e.zh);
            let hint = super::config_hint_in(e.code, crate::i18n::Lang::Zh).unwrap_or_default();
            assert!(
                crate::i18n::zh_punctuation_problems(hint).is_empty(),
                "{hint}"
            );
            assert_eq!(
                super::config_hint_in(e.code, crate::i18n::Lang::Zh).is_some(),
                super::config_hint(e.code).is_some(),
                "{}: a hint in both languages or neither",
                e.code
            );
        }
    }

    use super::*;

    #[test]
    fn every_code_in_the_docs_has_both_languages() {
        let documented = [
            -1, 40001, 40013, 40014, 40125, 40164, 41001, 42001, 45009, 45011, 47001, 48001, 61004,
            61005, 61006, 61007, 61011, 61023, 85107, 85113, 89236, 89237, 89238, 89239, 89240,
            89241, 89242, 89243, 89044, 89244,
        ];
        for code in documented {
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
