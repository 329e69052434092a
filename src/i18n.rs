//! Every text a person reads in the chat, in Chinese and English, from this one place. The
//! language is chosen once by `BOT_LANG`. Templates use `{name}` placeholders filled by [`fill`];
//! callers pass values already escaped for Telegram HTML.

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

impl Lang {
    /// The texts of this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Self::Zh => &ZH,
            Self::En => &EN,
        }
    }
}

/// Replaces each `{key}` in `template` with its value, in one pass over the template: a value
/// is never searched again, so a nickname or a reason that contains `{reason}` or `{time}`
/// (text from WeChat or from a person) appears verbatim. A `{…}` with no value stays as it is.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let key = &after[..close];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The ASCII punctuation in a Chinese text where full-width belongs (`，：；（）！？`), outside
/// HTML tags, entities and `{placeholders}`.
#[cfg(test)]
pub(crate) fn zh_punctuation_problems(text: &str) -> Vec<char> {
    let mut out = Vec::new();
    let mut skip_until: Option<char> = None;
    for c in text.chars() {
        if let Some(end) = skip_until {
            if c == end {
                skip_until = None;
            }
            continue;
        }
        match c {
            '<' => skip_until = Some('>'),
            '{' => skip_until = Some('}'),
            '&' => skip_until = Some(';'),
            ',' | ':' | ';' | '(' | ')' | '!' | '?' => out.push(c),
            _ => {}
        }
    }
    out
}

/// All chat texts of one language.
#[allow(missing_docs)]
pub struct Texts {
    // card
    pub card_title: &'static str,
    pub no_nickname: &'static str,
    /// `{code}` and its `{meaning}`: how a WeChat errcode is shown wherever it is shown.
    pub errcode: &'static str,
    /// A WeChat error answer; `{error}` is the [`Texts::errcode`] text.
    pub wechat_errcode: &'static str,
    pub label_reason: &'static str,
    pub label_categories: &'static str,
    pub label_applied: &'static str,
    pub label_avatar: &'static str,
    pub label_code: &'static str,
    pub line_pending: &'static str,
    pub line_approved: &'static str,
    pub line_rejected: &'static str,
    pub line_deleted: &'static str,
    pub line_elsewhere: &'static str,
    pub line_gone: &'static str,
    pub line_failed: &'static str,
    pub line_failed_plain: &'static str,
    pub line_unknown: &'static str,
    pub line_deciding: &'static str,
    pub line_choosing: &'static str,
    pub line_awaiting: &'static str,
    // names
    pub status_pending: &'static str,
    /// An applicant no longer in WeChat's list (deleted), where a status is named.
    pub status_gone: &'static str,
    pub status_approved: &'static str,
    pub status_refused: &'static str,
    pub status_expired: &'static str,
    pub status_unknown: &'static str,
    pub action_approve: &'static str,
    pub action_reject: &'static str,
    pub action_delete: &'static str,
    // buttons (the leading emoji are relied on by outside checks)
    pub button_approve: &'static str,
    pub button_reject: &'static str,
    pub button_other: &'static str,
    pub button_cancel: &'static str,
    pub button_retry: &'static str,
    pub button_refresh: &'static str,
    pub button_delete: &'static str,
    // callback answers
    pub alert_not_approver: &'static str,
    pub alert_not_deleter: &'static str,
    /// A waiting card's line on the applicant's past.
    pub history_first: &'static str,
    pub history_before_approved: &'static str,
    pub history_before_refused: &'static str,
    pub history_before_deleted: &'static str,
    pub alert_invalid: &'static str,
    /// Why a press was refused: someone holds the card (since when), or what already happened.
    pub alert_held_deciding: &'static str,
    pub alert_held_choosing: &'static str,
    pub alert_held_awaiting: &'static str,
    pub alert_settled: &'static str,
    pub alert_moved: &'static str,
    pub alert_nothing_to_cancel: &'static str,
    pub alert_unsettled: &'static str,
    pub line_superseded: &'static str,
    /// A card of a plugin the bot no longer serves (`{plugin}`, `{time}`).
    pub line_unserved: &'static str,
    pub line_moved: &'static str,
    pub line_interrupted: &'static str,
    pub status_deleted: &'static str,
    pub alert_reason_gone: &'static str,
    pub toast_working: &'static str,
    pub toast_cancelled: &'static str,
    pub toast_refreshed: &'static str,
    pub prompt_reason: &'static str,
    pub reason_too_long: &'static str,
    // commands
    pub not_team_chat: &'static str,
    pub help_header: &'static str,
    pub cmd_help: &'static str,
    pub cmd_pending: &'static str,
    pub cmd_list: &'static str,
    pub cmd_approve: &'static str,
    pub cmd_reject: &'static str,
    pub cmd_delete: &'static str,
    pub cmd_refresh: &'static str,
    pub cmd_history: &'static str,
    pub cmd_status: &'static str,
    pub cmd_chatid: &'static str,
    pub cmd_subscribe: &'static str,
    pub cmd_unsubscribe: &'static str,
    pub pending_none: &'static str,
    pub pending_header: &'static str,
    pub list_none: &'static str,
    pub list_header: &'static str,
    /// `/list` with no status: every applicant, whatever its status.
    pub list_all_none: &'static str,
    /// `{n}` applicants of every status.
    pub list_all_header: &'static str,
    pub list_usage: &'static str,
    pub approve_usage: &'static str,
    pub reject_usage: &'static str,
    pub delete_usage: &'static str,
    pub bad_appid: &'static str,
    pub unknown_applicant: &'static str,
    /// Heads a card, an alert, a `/status` block or a listing group when the bot serves several
    /// plugins (`{name}`).
    pub plugin_line: &'static str,
    /// A bare appid that waits in several plugins (`{appid}`, `{choices}`: one command each).
    pub ambiguous_plugin: &'static str,
    /// A command naming a plugin the bot does not serve (`{name}`, `{names}`).
    pub unknown_plugin: &'static str,
    pub not_approver_command: &'static str,
    pub not_deleter_command: &'static str,
    pub no_card_link: &'static str,
    pub card_link: &'static str,
    pub decided_reply: &'static str,
    pub refresh_done: &'static str,
    pub refresh_failed: &'static str,
    pub history_none: &'static str,
    pub history_header: &'static str,
    pub status_text: &'static str,
    pub status_never: &'static str,
    pub status_no_error: &'static str,
    pub chat_id_is: &'static str,
    pub poll_outage: &'static str,
    pub poll_recovered: &'static str,
    /// A third-party platform's refresh token is refused (61023): a person must act.
    pub reauthorize: &'static str,
    pub quota_exhausted: &'static str,
    pub digest_header: &'static str,
    pub digest_more: &'static str,
    pub reminder_header: &'static str,
    pub reminder_line: &'static str,
    pub reminder_more: &'static str,
    pub waited_hours: &'static str,
    pub waited_days: &'static str,
    pub quota_paused: &'static str,
    /// `/refresh` or 🔄 at a replica that does not lead ({leader}).
    pub refresh_standby: &'static str,
    /// Who leads when no replica does.
    pub replica_none: &'static str,
    /// `/status`: this replica leads ({me}, {since}).
    pub status_replica_leads: &'static str,
    /// `/status`: another replica leads ({me}, {leader}, {since}).
    pub status_replica_standby: &'static str,
    /// `/status`: no replica leads just now ({me}).
    pub status_replica_none: &'static str,
    pub wechat_unreachable: &'static str,
    /// A poll whose listing the database could not record; `{error}` is the database's words.
    pub store_failed: &'static str,
    // `/history` and `/status` details
    pub history_ok: &'static str,
    pub history_error: &'static str,
    pub history_unknown: &'static str,
    pub history_in_flight: &'static str,
    pub history_more: &'static str,
    pub history_more_of_one: &'static str,
    pub status_token_cached: &'static str,
    pub status_token_none: &'static str,
    pub status_token_refresh: &'static str,
    // Telegram's own conditions
    /// `{name}`: a mention (`<a href="tg://user?id=…">`) of the approver asked to reply again.
    pub reason_too_long_prompt: &'static str,
    /// The answer to a decision (command or typed reason) from an anonymous group admin.
    pub anonymous_cannot_decide: &'static str,
    /// The answer to a command in the supergroup the team chat became; `{id}` is its id.
    pub team_chat_upgraded: &'static str,
    /// A `/status` line while another instance polls the same token: `{n}` 409s since `{since}`.
    pub status_telegram_conflict: &'static str,
    /// A `/status` line while WeChat seems to ignore `page` (full pages bring no new applicant).
    pub status_paging_broken: &'static str,
    pub status_oldest: &'static str,
    // issue 21
    /// A command's decision that does not apply: `{appid}` (HTML), its `{status}`, the `{action}`.
    pub cmd_not_applicable: &'static str,
    /// `/reject <appid> <reason>` with a reason of `{len}` characters, over `{max}`.
    pub reject_reason_too_long: &'static str,
    /// A `/status` line while polling rests after 45009, until `{until}`.
    pub status_quota_rests: &'static str,
    /// The last line of a cut `/pending` or `/list`: `{n}` not listed.
    pub list_more: &'static str,
    /// An application time WeChat did not give, or gave as junk.
    pub time_unknown: &'static str,
    /// A duration of `{h}` hours and `{m}` minutes.
    pub duration_hours: &'static str,
    /// A duration of `{m}` minutes.
    pub duration_minutes: &'static str,
    /// A duration of `{s}` seconds.
    pub duration_seconds: &'static str,
    /// A decision whose write got an unclear answer (`{detail}`: its errcode as an aside, or
    /// nothing) and that a re-read shows did not take effect: the applicant is still where it was.
    pub line_not_applied: &'static str,
    pub appid_empty: &'static str,
    /// `{len}` characters, at most `{max}`.
    pub appid_too_long: &'static str,
    pub appid_too_short: &'static str,
    pub appid_bad_character: &'static str,
    /// Between a card's label and its value.
    pub label_sep: &'static str,
    /// Between items of a list inside one line (categories).
    pub list_sep: &'static str,
    /// WeChat's own `{errmsg}` after an errcode.
    pub errmsg: &'static str,
    /// An aside after a text: `{text}` in parentheses.
    pub aside: &'static str,
    /// A press on a stray copy of a card (sent twice around a restart): its buttons are removed.
    pub alert_stray: &'static str,
    // quorum (`APPROVALS_REQUIRED` of 2 or more): `{n}` votes of `{needed}`
    /// ✅ while votes are gathered.
    pub button_approve_votes: &'static str,
    /// Takes the presser's own vote back (the ↩ is relied on by outside checks).
    pub button_withdraw: &'static str,
    /// The votes so far on an open card; `{names}` are the voters.
    pub line_votes: &'static str,
    /// After the votes line: votes of people no longer approvers, not counted.
    pub votes_uncounted: &'static str,
    pub toast_voted: &'static str,
    pub toast_withdrawn: &'static str,
    pub alert_already_voted: &'static str,
    pub alert_not_voted: &'static str,
    /// `/approve` that was counted as a vote; `{appid}` is the applicant (HTML).
    pub cmd_voted: &'static str,
    pub cmd_already_voted: &'static str,
    pub history_vote: &'static str,
    pub history_withdrawn: &'static str,
    // the undo window (`UNDO_SECS`)
    /// A decision waiting out its window: `{name}`, `{action}`, `{time}` it goes out, `{in}`.
    pub line_scheduled: &'static str,
    /// After [`Texts::line_scheduled`] when a restart took the wait up again.
    pub line_resumed: &'static str,
    /// After a decided line whose write went out at start, its window having ended meanwhile.
    pub line_late: &'static str,
    /// Takes a scheduled decision back (the ↩ is relied on by outside checks).
    pub button_undo: &'static str,
    pub toast_scheduled: &'static str,
    pub toast_undone: &'static str,
    pub alert_nothing_to_undo: &'static str,
    /// A press on a card whose decision waits out its window: `{name}`, `{action}`, `{due}`.
    pub alert_held_scheduled: &'static str,
    pub history_scheduled: &'static str,
    pub history_undone: &'static str,
    // escalation (`ESCALATE_AFTER_HOURS`) and direct messages (`/subscribe`)
    pub escalation_header: &'static str,
    /// `{mentions}`: a text mention of each approver.
    pub escalation_approvers: &'static str,
    pub subscribe_private_only: &'static str,
    pub subscribe_not_approver: &'static str,
    pub subscribed: &'static str,
    pub unsubscribed: &'static str,
    pub not_subscribed: &'static str,
    /// `{name}`, `{appid}`, `{card}` (a link to it, or where it is).
    pub dm_new_card: &'static str,
    /// As [`Texts::dm_new_card`], with `{waited}`.
    pub dm_escalation: &'static str,
    /// `{link}`: the card's `t.me/c/…` address.
    pub dm_card_link: &'static str,
    /// `{chat}`: the team chat's name, where no link is possible (a basic group).
    pub card_in_chat: &'static str,
}

/// The demo's chat page, around the chat: its own words in the same two languages. `hint` is
/// HTML (the page links `/metrics` and `/healthz` after it).
#[allow(missing_docs)]
#[derive(serde::Serialize)]
pub struct PageTexts {
    pub html_lang: &'static str,
    pub page_title: &'static str,
    pub chat_title: &'static str,
    pub connecting: &'static str,
    pub live: &'static str,
    pub reconnecting: &'static str,
    pub failed: &'static str,
    pub you_are: &'static str,
    pub who_label: &'static str,
    pub approver: &'static str,
    pub not_approver: &'static str,
    pub replying_to: &'static str,
    pub do_not_reply: &'static str,
    pub placeholder: &'static str,
    pub message_label: &'static str,
    pub send: &'static str,
    pub hint: &'static str,
    pub asks_reply: &'static str,
    pub edited: &'static str,
    pub could_not_press: &'static str,
    pub could_not_send: &'static str,
}

impl Lang {
    /// The demo page's words in this language.
    pub fn page(self) -> &'static PageTexts {
        match self {
            Self::Zh => &PAGE_ZH,
            Self::En => &PAGE_EN,
        }
    }
}

static PAGE_ZH: PageTexts = PageTexts {
    html_lang: "zh-CN",
    page_title: "wxplugin-bot 演示",
    chat_title: "插件团队（演示）",
    connecting: "正在连接…",
    live: "已连接",
    reconnecting: "正在重新连接…",
    failed: "失败",
    you_are: "你是",
    who_label: "选择你的身份",
    approver: "审批人",
    not_approver: "不是审批人",
    replying_to: "回复",
    do_not_reply: "不回复",
    placeholder: "输入命令：/pending、/status、/history、/help …",
    message_label: "消息",
    send: "发送",
    hint: "这里的一切都是模拟的：一个微信沙盒、一个假的 Telegram，以及夹在两者之间的真实机器人。新的申请会不断到来。",
    asks_reply: "↩ 机器人在等你回复：请在下方输入。",
    edited: "已编辑",
    could_not_press: "按钮没有按成",
    could_not_send: "消息没有发出",
};

static PAGE_EN: PageTexts = PageTexts {
    html_lang: "en",
    page_title: "wxplugin-bot demo",
    chat_title: "Plugin team (demo)",
    connecting: "connecting…",
    live: "live",
    reconnecting: "reconnecting…",
    failed: "failed",
    you_are: "You are",
    who_label: "Who you are",
    approver: "approver",
    not_approver: "not an approver",
    replying_to: "Replying to",
    do_not_reply: "Do not reply",
    placeholder: "Type a command: /pending, /status, /history, /help …",
    message_label: "Message",
    send: "Send",
    hint: "Everything here is simulated: a WeChat sandbox, a fake Telegram and the real bot between them. Applicants keep arriving.",
    asks_reply: "↩ The bot asks for a reply: type it below.",
    edited: "edited",
    could_not_press: "Could not press",
    could_not_send: "Could not send",
};

static ZH: Texts = Texts {
    card_title: "🧩 插件使用申请",
    no_nickname: "（未提供名称）",
    errcode: "{code}：{meaning}",
    wechat_errcode: "微信错误码 {error}",
    label_reason: "申请说明",
    label_categories: "类目",
    label_applied: "申请时间",
    label_avatar: "头像",
    label_code: "小程序码",
    line_pending: "⏳ 待审核",
    line_approved: "✅ 已由 {name} 通过 · {time}",
    line_rejected: "❌ 已由 {name} 拒绝：{reason} · {time}",
    line_deleted: "🗑 已由 {name} 删除 · {time}",
    line_elsewhere: "ℹ️ 已在微信后台变为「{status}」· {time}",
    line_gone: "🗑 已不在微信申请列表中 · {time}",
    line_failed: "⚠️ {name} 的{action}操作失败：错误码 {detail} · {time}",
    line_failed_plain: "⚠️ {name} 的{action}操作失败：{detail} · {time}",
    line_unknown: "❓ {name} 的{action}操作结果未知：微信没有应答。请点 🔄 刷新，查看微信中的实际状态。",
    line_deciding: "⏳ {name} 正在{action}…",
    line_choosing: "❌ {name} 正在选择拒绝理由…",
    line_awaiting: "✍️ 等待 {name} 回复拒绝理由…",
    status_pending: "待审核",
    status_gone: "已不在微信申请列表中",
    status_approved: "已通过",
    status_refused: "已拒绝",
    status_expired: "已超时",
    status_unknown: "未知状态（{code}）",
    action_approve: "通过",
    action_reject: "拒绝",
    action_delete: "删除",
    button_approve: "✅ 通过",
    button_reject: "❌ 拒绝",
    button_other: "✍️ 其他理由…",
    button_cancel: "↩ 取消",
    button_retry: "🔁 重试",
    button_refresh: "🔄 刷新",
    button_delete: "🗑 删除",
    alert_not_approver: "只有审批人可以处理插件申请。",
    alert_not_deleter: "只有 DELETE_IDS 中列出的人可以删除插件申请。",
    history_first: "🆕 首次申请（没有更早的审批记录）",
    history_before_approved: "🕘 曾经申请过：{date} 由 {name} 通过，之后在微信后台被更改",
    history_before_refused: "🕘 曾经申请过：{date} 被 {name} 拒绝——{reason}",
    history_before_deleted: "🕘 曾经申请过：{date} 被 {name} 删除",
    alert_invalid: "这个按钮已失效。",
    alert_held_deciding: "{name} 自 {time} 起正在{action}这个申请，请等待结果。",
    alert_held_choosing: "{name} 自 {time} 起正在选择拒绝理由。",
    alert_held_awaiting: "{name} 自 {time} 起正在填写拒绝理由。",
    alert_settled: "未执行任何操作：{line}",
    alert_moved: "团队群已迁移到「{chat}」，请在那里处理。",
    alert_nothing_to_cancel: "现在没有人在拒绝这个申请，没有可以取消的操作。",
    line_superseded: "🔁 已重新进入待审核 · {time}：此卡片已由下方的新卡片取代",
    line_unserved: "⏹ 本机器人已不再管理插件 <code>{plugin}</code> · {time}：请在微信后台处理，或把它加回配置",
    line_moved: "➡️ 团队群已迁至「{chat}」· {time}：此卡片不再更新，请到新群处理",
    line_interrupted: "ℹ️ 微信中现为{status} · {time}：{name} 的{action}没有收到微信的明确答复，无法确定是这次操作还是别处完成的",
    status_deleted: "已删除",
    alert_unsettled: "上一次操作的结果尚不确定，请先点 🔄 刷新，确认微信的状态后再处理。",
    alert_reason_gone: "这个预设理由已不再提供，请重新选择。",
    toast_working: "正在处理…",
    toast_cancelled: "已取消",
    toast_refreshed: "已刷新",
    prompt_reason: "{name}，请回复这条消息，写下拒绝 {nickname}（{appid}）的理由：",
    reason_too_long: "理由太长了（最多 {max} 个字），请再回复一次。",
    not_team_chat: "这个机器人只在团队群里工作。",
    help_header: "插件申请审批机器人。新的申请会以卡片形式出现在群里，审批人可以直接按按钮处理。命令：",
    cmd_help: "显示帮助",
    cmd_pending: "待审核的申请及其卡片",
    cmd_list: "按状态列出申请：pending / approved / refused / expired",
    cmd_approve: "通过申请：/approve <appid>",
    cmd_reject: "拒绝申请：/reject <appid> <理由>",
    cmd_delete: "删除已拒绝或已超时的申请：/delete <appid>",
    cmd_refresh: "立即从微信刷新申请列表",
    cmd_history: "审批记录：/history [appid]",
    cmd_status: "机器人状态",
    cmd_chatid: "显示当前聊天的 ID",
    cmd_subscribe: "（私聊）新卡片和升级提醒私信给我",
    cmd_unsubscribe: "（私聊）不再私信我",
    pending_none: "没有待审核的申请。",
    pending_header: "待审核的申请（{n}）：",
    list_none: "没有「{status}」的申请。",
    list_header: "「{status}」的申请（{n}）：",
    list_usage: "用法：/list [pending|approved|refused|expired]",
    approve_usage: "用法：/approve <appid>",
    reject_usage: "用法：/reject <appid> <理由>",
    delete_usage: "用法：/delete <appid>",
    bad_appid: "「{input}」不是有效的 AppID：{why}",
    unknown_applicant: "找不到申请者 {appid}。可以先 /refresh 再试。",
    plugin_line: "📦 插件：<b>{name}</b>",
    ambiguous_plugin: "{appid} 申请了不止一个插件，请写明是哪个：{choices}",
    unknown_plugin: "没有名为「{name}」的插件。本机器人管理的插件：{names}",
    not_approver_command: "只有审批人可以处理插件申请。",
    not_deleter_command: "只有 DELETE_IDS 中列出的人可以删除插件申请。",
    no_card_link: "（无卡片）",
    card_link: "卡片",
    decided_reply: "{appid}：{line}",
    refresh_done: "已刷新：共 {n} 个申请者，新卡片 {new} 张，更新 {updated} 张。",
    refresh_failed: "刷新失败：{error}",
    history_none: "还没有审批记录。",
    history_header: "审批记录（最近 {n} 条）：",
    status_text: "<b>状态</b>\n上次成功读取：{last_ok}\n上次读取：{last_poll}\n最近错误：{last_error}\n连续失败：{failures}\n访问令牌：{token}\n待审核 {pending} · 已通过 {approved} · 已拒绝 {refused} · 已超时 {expired}\n卡片：{cards}",
    status_never: "从未",
    status_no_error: "无",
    chat_id_is: "当前聊天的 ID：<code>{id}</code>",
    poll_outage: "⚠️ 已连续 {n} 次无法读取微信申请列表（自 {since} 起）。最近的错误：{error}\n恢复后会再通知。",
    poll_recovered: "✅ 已恢复读取微信申请列表（中断了 {minutes} 分钟）。",
    reauthorize: "🔑 微信拒绝了第三方平台的刷新令牌（错误码 61023）：需要插件所有者重新授权第三方平台，然后把新的 authorizer_refresh_token 填入 WECHAT_AUTHORIZER_REFRESH_TOKEN 并重启机器人。在此之前无法读取或处理任何申请。",
    quota_exhausted: "⚠️ 微信接口今日调用次数已用完（45009）。暂停读取申请列表，{until} 再试；恢复后会通知。",
    quota_paused: "微信接口今日调用次数已用完，{until} 前不再读取。",
    refresh_standby: "这个副本处于待命状态，由 {leader} 读取微信的申请列表；它会在下一次读取时处理。",
    replica_none: "暂无副本",
    status_replica_leads: "副本：{me}（主副本，自 {since} 起负责读取微信）",
    status_replica_standby: "副本：{me}（待命；{leader} 自 {since} 起负责读取微信）",
    status_replica_none: "副本：{me}（待命；目前没有副本负责读取微信，租约到期后将由一个副本接手）",
    digest_header: "📥 收到 {n} 份新的插件申请。卡片将按 Telegram 的发送限速陆续发出，预计约 {eta}内发完；/pending 可按申请时间从早到晚查看待审核的申请：",
    digest_more: "…以及另外 {n} 份",
    reminder_header: "⏰ 以下 {n} 份插件申请已等待超过 {hours} 小时，请处理：",
    reminder_line: "• {name} <code>{appid}</code>，已等待 {waited}",
    reminder_more: "…以及另外 {n} 份（/pending 可按申请时间从早到晚查看）",
    waited_hours: "{n} 小时",
    waited_days: "{n} 天",
    wechat_unreachable: "无法连接微信，未做任何操作",
    store_failed: "机器人的数据库无法记录读取结果：{error}",
    history_ok: "成功",
    history_error: "失败",
    history_unknown: "结果未知",
    history_in_flight: "进行中",
    history_more: "…另有 {n} 条更早的记录未显示。/history &lt;appid&gt; 可查看某个申请者的记录。",
    history_more_of_one: "…这个申请者另有 {n} 条更早的记录未显示。",
    status_token_cached: "已缓存",
    status_token_none: "尚未获取",
    status_token_refresh: "约 {in}后刷新",
    reason_too_long_prompt: "{name}，理由太长了（最多 {max} 个字），请回复这条消息再写一次。",
    anonymous_cannot_decide: "匿名管理员无法审批插件申请：机器人无法识别您的身份。请关闭「匿名」后以本人身份发送（按钮不受影响）。",
    team_chat_upgraded: "⚠️ 团队群已升级为超级群，新的 ID 是 <code>{id}</code>。Telegram 不再接受旧 ID：请把 TEAM_CHAT_ID 改为 {id} 并重启机器人。旧群里的卡片不会迁移过来。",
    status_oldest: "等待最久：{name} <code>{appid}</code>，已等待 {waited}（自 {since} 起）",
    status_paging_broken: "⚠️ 微信的分页似乎失效了：连续两个满页都没有新的申请者。申请列表可能不完整。",
    status_telegram_conflict: "⚠️ 另一个实例正在用同一个机器人令牌接收更新（自 {since} 起 {n} 次 409 冲突），只能运行一个实例。",
    cmd_not_applicable: "{appid} 当前为「{status}」，无法{action}。",
    reject_reason_too_long: "理由太长了（{len} 个字，最多 {max} 个字）。请缩短理由后重新发送 /reject &lt;appid&gt; &lt;理由&gt;。",
    status_quota_rests: "⏸ 微信接口今日调用次数已用完（45009），暂停读取至 {until}",
    list_more: "…另有 {n} 份未列出",
    time_unknown: "未知",
    duration_hours: "{h} 小时 {m} 分钟",
    duration_minutes: "{m} 分钟",
    duration_seconds: "{s} 秒",
    line_not_applied: "⚠️ {name} 的{action}操作没有生效：微信没有给出明确答复{detail}，重新读取后仍为待审核，可以再试一次 · {time}",
    appid_empty: "AppID 为空",
    appid_too_long: "AppID 有 {len} 个字符，最多 {max} 个",
    appid_too_short: "AppID 太短",
    appid_bad_character: "AppID 只能包含英文字母、数字、“_”和“-”",
    label_sep: "：",
    list_sep: "；",
    errmsg: "（微信原文：{errmsg}）",
    list_all_header: "全部申请（{n}）：",
    list_all_none: "还没有任何申请。",
    aside: "（{text}）",
    alert_stray: "这是重启时多发的一张重复卡片，它的按钮已移除。请在这个申请最新的卡片上处理。",
    button_approve_votes: "✅ 通过（{n}/{needed}）",
    button_withdraw: "↩ 撤回我的赞成",
    line_votes: "👍 {n}/{needed} · {names}",
    votes_uncounted: "（不计入：{names} 已不是审批人）",
    toast_voted: "👍 已记下你的赞成：{n}/{needed}，还需 {left} 位审批人。",
    toast_withdrawn: "↩ 已撤回你的赞成：{n}/{needed}。",
    alert_already_voted: "你已经赞成过了（{n}/{needed}），还需要其他审批人的 ✅。",
    alert_not_voted: "你在这张卡片上没有可撤回的赞成。",
    cmd_voted: "👍 {appid}：已记下你的赞成，{n}/{needed}，还需 {left} 位审批人。",
    cmd_already_voted: "{appid}：你已经赞成过了（{n}/{needed}），还需要其他审批人。",
    history_vote: "👍 赞成",
    history_withdrawn: "↩ 撤回赞成",
    line_scheduled: "⏳ {name} 的{action}将于 {time}（{in}后）发送给微信，按 ↩ 撤销 可收回",
    line_resumed: "（重启后继续计时）",
    line_late: "（撤销时限在机器人停止期间已过，启动时发出）",
    button_undo: "↩ 撤销",
    toast_scheduled: "⏳ 将在 {in}后{action}；按卡片上的 ↩ 撤销 可收回。",
    toast_undone: "↩ 已撤销：没有发送给微信。",
    alert_nothing_to_undo: "这张卡片上没有等待发送的决定。",
    alert_held_scheduled: "{name} 的{action}决定将于 {due} 发送给微信；按 ↩ 撤销 可收回。",
    history_scheduled: "⏳ 等待发送",
    history_undone: "↩ 已撤销",
    escalation_header: "🚨 以下 {n} 份插件申请已等待超过 {hours} 小时仍未处理（无人处理的申请会被微信判为超时）：",
    escalation_approvers: "请审批人处理：{mentions}",
    subscribe_private_only: "请在与我的私聊中发送 /subscribe：提醒会私信给你。",
    subscribe_not_approver: "只有审批人可以订阅私信提醒。",
    subscribed: "🔔 已订阅：每张新的申请卡片和每次升级提醒都会私信给你。发送 /unsubscribe 可取消。",
    unsubscribed: "🔕 已取消订阅，不会再私信你。",
    not_subscribed: "你还没有订阅。",
    dm_new_card: "🧩 新的插件使用申请：{name} <code>{appid}</code> · {card}",
    dm_escalation: "🚨 已等待 {waited} 仍未处理：{name} <code>{appid}</code> · {card}",
    dm_card_link: "<a href=\"{link}\">查看卡片</a>",
    card_in_chat: "卡片在「{chat}」中",
};

static EN: Texts = Texts {
    card_title: "🧩 Plugin application",
    no_nickname: "(no name given)",
    errcode: "{code}: {meaning}",
    wechat_errcode: "WeChat errcode {error}",
    label_reason: "Reason",
    label_categories: "Categories",
    label_applied: "Applied",
    label_avatar: "Avatar",
    label_code: "Mini-program code",
    line_pending: "⏳ Pending",
    line_approved: "✅ Approved by {name} · {time}",
    line_rejected: "❌ Rejected by {name}: {reason} · {time}",
    line_deleted: "🗑 Deleted by {name} · {time}",
    line_elsewhere: "ℹ️ Changed outside the bot: now {status} · {time}",
    line_gone: "🗑 No longer in WeChat's application list · {time}",
    line_failed: "⚠️ {action} by {name} failed: errcode {detail} · {time}",
    line_failed_plain: "⚠️ {action} by {name} failed: {detail} · {time}",
    line_unknown: "❓ Outcome of {action} by {name} unknown: WeChat did not answer. Press 🔄 Refresh to see the real status.",
    line_deciding: "⏳ {name}: {action} in progress…",
    line_choosing: "❌ {name} is choosing a reason…",
    line_awaiting: "✍️ Waiting for {name}'s reason…",
    status_pending: "pending",
    status_gone: "no longer in WeChat's application list",
    status_approved: "approved",
    status_refused: "rejected",
    status_expired: "timed out",
    status_unknown: "unknown status ({code})",
    action_approve: "Approve",
    action_reject: "Reject",
    action_delete: "Delete",
    button_approve: "✅ Approve",
    button_reject: "❌ Reject",
    button_other: "✍️ Other…",
    button_cancel: "↩ Cancel",
    button_retry: "🔁 Retry",
    button_refresh: "🔄 Refresh",
    button_delete: "🗑 Delete",
    alert_not_approver: "Only approvers can decide on plugin applications.",
    alert_not_deleter: "Only the people listed in DELETE_IDS can delete plugin applications.",
    history_first: "🆕 First application (no earlier decision on record)",
    history_before_approved: "🕘 Applied before: approved {date} by {name}, later changed in the console",
    history_before_refused: "🕘 Applied before: rejected {date} by {name} — {reason}",
    history_before_deleted: "🕘 Applied before: deleted {date} by {name}",
    alert_invalid: "This button is no longer valid.",
    alert_held_deciding: "{name} has been deciding this since {time} ({action}): wait for the outcome.",
    alert_held_choosing: "{name} has been choosing a reason to reject it since {time}.",
    alert_held_awaiting: "{name} has been writing a reason to reject it since {time}.",
    alert_settled: "Nothing was done: {line}",
    alert_moved: "The team chat moved to “{chat}”: decide there.",
    alert_nothing_to_cancel: "Nobody is rejecting this application now: there is nothing to cancel.",
    line_superseded: "🔁 Pending again · {time}: a newer card below replaces this one",
    line_unserved: "⏹ This bot no longer serves plugin <code>{plugin}</code> · {time}: decide in the WeChat console, or serve it again",
    line_moved: "➡️ The team chat moved to “{chat}” · {time}: this card is no longer updated; decide there",
    line_interrupted: "ℹ️ Now {status} in WeChat · {time}: {name}'s {action} got no clear answer from WeChat, so it may have been done elsewhere",
    status_deleted: "deleted",
    alert_unsettled: "The last attempt's outcome is not known yet: press 🔄 Refresh to re-read WeChat before deciding again.",
    alert_reason_gone: "That preset reason is no longer offered; please choose again.",
    toast_working: "Working…",
    toast_cancelled: "Cancelled",
    toast_refreshed: "Refreshed",
    prompt_reason: "{name}, reply to this message with the reason for rejecting {nickname} ({appid}):",
    reason_too_long: "That reason is too long (at most {max} characters); please reply again.",
    not_team_chat: "This bot works only in its team chat.",
    help_header: "Plugin application approvals. New applications appear here as cards; approvers press the buttons to decide. Commands:",
    cmd_help: "show this help",
    cmd_pending: "pending applications with links to their cards",
    cmd_list: "list applications by status: pending / approved / refused / expired",
    cmd_approve: "approve: /approve <appid>",
    cmd_reject: "reject: /reject <appid> <reason>",
    cmd_delete: "delete a rejected or timed-out application: /delete <appid>",
    cmd_refresh: "read WeChat's application list now",
    cmd_history: "decision history: /history [appid]",
    cmd_status: "bot status",
    cmd_chatid: "show this chat's id",
    cmd_subscribe: "(private chat) message me about new cards and escalations",
    cmd_unsubscribe: "(private chat) stop messaging me",
    pending_none: "No pending applications.",
    pending_header: "Pending applications ({n}):",
    list_none: "No {status} applications.",
    list_header: "Applications, {status} ({n}):",
    list_usage: "Usage: /list [pending|approved|refused|expired]",
    approve_usage: "Usage: /approve <appid>",
    reject_usage: "Usage: /reject <appid> <reason>",
    delete_usage: "Usage: /delete <appid>",
    bad_appid: "'{input}' is not a valid AppID: {why}",
    unknown_applicant: "No applicant {appid} is known. Try /refresh first.",
    plugin_line: "📦 Plugin: <b>{name}</b>",
    ambiguous_plugin: "{appid} applied to more than one plugin; say which: {choices}",
    unknown_plugin: "No plugin is called '{name}'. The plugins this bot serves: {names}",
    not_approver_command: "Only approvers can decide on plugin applications.",
    not_deleter_command: "Only the people listed in DELETE_IDS can delete plugin applications.",
    no_card_link: "(no card)",
    card_link: "card",
    decided_reply: "{appid}: {line}",
    refresh_done: "Refreshed: {n} applicants, {new} new cards, {updated} updated.",
    refresh_failed: "Refresh failed: {error}",
    history_none: "No decisions yet.",
    history_header: "Decision history (latest {n}):",
    status_text: "<b>Status</b>\nLast successful poll: {last_ok}\nLast poll: {last_poll}\nLast error: {last_error}\nFailures in a row: {failures}\nAccess token: {token}\nPending {pending} · approved {approved} · rejected {refused} · timed out {expired}\nCards: {cards}",
    status_never: "never",
    status_no_error: "none",
    chat_id_is: "This chat's id: <code>{id}</code>",
    poll_outage: "⚠️ WeChat's application list could not be read {n} times in a row (since {since}). Last error: {error}\nI'll say when it recovers.",
    poll_recovered: "✅ Reading WeChat's application list again (it was down for {minutes} min).",
    reauthorize: "🔑 WeChat refuses the third-party platform's refresh token (errcode 61023): the plugin's owner must authorize the platform again; then set WECHAT_AUTHORIZER_REFRESH_TOKEN to the new authorizer_refresh_token and restart the bot. Until then no applicant can be listed or decided.",
    quota_exhausted: "⚠️ WeChat's daily API quota is used up (45009). Polling rests until {until}; I'll say when it works again.",
    quota_paused: "WeChat's daily API quota is used up; not polling before {until}.",
    refresh_standby: "This replica stands by: {leader} polls WeChat and picks this up at its next poll.",
    replica_none: "no replica",
    status_replica_leads: "Replica: {me} (leading: polls WeChat since {since})",
    status_replica_standby: "Replica: {me} (standing by; {leader} polls WeChat since {since})",
    status_replica_none: "Replica: {me} (standing by; no replica polls WeChat just now: one takes over when the lease ends)",
    digest_header: "📥 {n} new plugin applications. Their cards follow at Telegram's pace, all within about {eta}; /pending lists pending applications now, oldest first:",
    digest_more: "… and {n} more",
    reminder_header: "⏰ Still waiting for a decision after more than {hours} h ({n}):",
    reminder_line: "• {name} <code>{appid}</code>, waiting {waited}",
    reminder_more: "… and {n} more (/pending lists them, oldest first)",
    waited_hours: "{n} h",
    waited_days: "{n} days",
    wechat_unreachable: "WeChat could not be reached; nothing was done",
    store_failed: "the bot's database could not record the listing: {error}",
    history_ok: "done",
    history_error: "failed",
    history_unknown: "outcome unknown",
    history_in_flight: "in progress",
    history_more: "… {n} earlier entries not shown. /history &lt;appid&gt; shows one applicant's entries.",
    history_more_of_one: "… {n} earlier entries of this applicant not shown.",
    status_token_cached: "cached",
    status_token_none: "none yet",
    status_token_refresh: "refresh in about {in}",
    reason_too_long_prompt: "{name}, that reason is too long (at most {max} characters); please reply to this message again.",
    anonymous_cannot_decide: "Anonymous admins cannot decide on plugin applications: the bot cannot tell who you are. Turn off \"Remain anonymous\" and post as yourself (buttons work either way).",
    team_chat_upgraded: "⚠️ The team chat was upgraded to a supergroup; its new id is <code>{id}</code>. Telegram refuses the old id: set TEAM_CHAT_ID={id} and restart the bot. Cards in the old chat are not carried over.",
    status_oldest: "Waiting longest: {name} <code>{appid}</code>, for {waited} (since {since})",
    status_paging_broken: "⚠️ WeChat's paging looks broken: two full pages in a row brought no new applicant. The list may be incomplete.",
    status_telegram_conflict: "⚠️ Another instance is long-polling this bot's token ({n} × 409 Conflict since {since}); only one may run.",
    cmd_not_applicable: "{appid} is {status} now: “{action}” cannot be done to it.",
    reject_reason_too_long: "That reason is {len} characters long; at most {max} are allowed. Send /reject &lt;appid&gt; &lt;reason&gt; again with a shorter one.",
    status_quota_rests: "⏸ WeChat's daily quota is used up (45009): polling rests until {until}",
    list_more: "… {n} more not listed",
    time_unknown: "unknown",
    duration_hours: "{h} h {m} min",
    duration_minutes: "{m} min",
    duration_seconds: "{s} s",
    line_not_applied: "⚠️ {action} by {name} did not take effect: WeChat gave no clear answer{detail}; a re-read shows it still pending, so it can be tried again · {time}",
    appid_empty: "the appid is empty",
    appid_too_long: "the appid is {len} characters long; at most {max} are allowed",
    appid_too_short: "the appid is too short",
    appid_bad_character: "the appid may hold only ASCII letters, digits, '_' and '-'",
    label_sep: ": ",
    list_sep: "; ",
    errmsg: " (errmsg: {errmsg})",
    list_all_header: "All applications ({n}):",
    list_all_none: "No applications yet.",
    aside: " ({text})",
    alert_stray: "This is an extra copy of a card, sent twice around a restart; its buttons are gone. Decide on the applicant's newest card.",
    button_approve_votes: "✅ Approve ({n}/{needed})",
    button_withdraw: "↩ Withdraw my vote",
    line_votes: "👍 {n}/{needed} · {names}",
    votes_uncounted: " (not counted: {names}, no longer an approver)",
    toast_voted: "👍 Your vote counts: {n}/{needed}. It takes {left} more approver(s).",
    toast_withdrawn: "↩ Your vote is withdrawn: {n}/{needed}.",
    alert_already_voted: "You have already voted for this one ({n}/{needed}); it takes another approver's ✅.",
    alert_not_voted: "You have no vote on this card to withdraw.",
    cmd_voted: "👍 {appid}: your vote counts, {n}/{needed}; it takes {left} more approver(s).",
    cmd_already_voted: "{appid}: you have already voted ({n}/{needed}); it takes another approver.",
    history_vote: "👍 voted",
    history_withdrawn: "↩ vote withdrawn",
    line_scheduled: "⏳ {name}: {action} goes to WeChat at {time} (in {in}) unless someone presses ↩ Undo",
    line_resumed: " (resumed after a restart)",
    line_late: " (sent at start: its undo window ended while the bot was stopped)",
    button_undo: "↩ Undo",
    toast_scheduled: "⏳ {action} in {in}; ↩ Undo on the card takes it back.",
    toast_undone: "↩ Undone: nothing was sent to WeChat.",
    alert_nothing_to_undo: "Nothing on this card is waiting to be sent.",
    alert_held_scheduled: "{name}'s decision ({action}) goes to WeChat at {due}; ↩ Undo takes it back.",
    history_scheduled: "⏳ scheduled",
    history_undone: "↩ undone",
    escalation_header: "🚨 Waiting over {hours} h with no decision ({n}); WeChat times applications out if nobody decides:",
    escalation_approvers: "Approvers, please decide: {mentions}",
    subscribe_private_only: "Send /subscribe to me in a private chat: the messages go there.",
    subscribe_not_approver: "Only approvers can subscribe to direct messages.",
    subscribed: "🔔 Subscribed: you get a direct message for each new application card and each escalation. /unsubscribe stops them.",
    unsubscribed: "🔕 Unsubscribed: no more direct messages.",
    not_subscribed: "You were not subscribed.",
    dm_new_card: "🧩 New plugin application: {name} <code>{appid}</code> · {card}",
    dm_escalation: "🚨 Waiting {waited} with no decision: {name} <code>{appid}</code> · {card}",
    dm_card_link: "<a href=\"{link}\">open the card</a>",
    card_in_chat: "the card is in {chat}",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_every_placeholder() {
        assert_eq!(
            fill("{a} and {b} and {a}", &[("a", "1"), ("b", "2")]),
            "1 and 2 and 1"
        );
    }

    /// Each text of a static (`ZH`, `EN`, `PAGE_ZH`…) as written in this file: (field,
    /// template), from the static's opening line to its closing brace.
    fn templates(lang: &str) -> Vec<(String, String)> {
        let source = include_str!("i18n.rs");
        let start = source
            .find(&format!("static {lang}: "))
            .expect("the static");
        let body = &source[start..];
        let body = &body[..body.find("\n};").expect("its end")];
        body.lines()
            .skip(1)
            .filter_map(|line| {
                let (field, value) = line.trim().split_once(": \"")?;
                let value = value.strip_suffix("\",")?;
                Some((field.to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// The `{name}` placeholders of a template, sorted, repeats removed.
    fn placeholders(template: &str) -> Vec<String> {
        let mut names: Vec<String> = template
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_owned()))
            .filter(|name| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn chinese_and_english_texts_use_the_same_placeholders() {
        let zh = templates("ZH");
        let en = templates("EN");
        assert!(zh.len() > 100, "only {} texts read", zh.len());
        let mut zh_fields: Vec<&String> = zh.iter().map(|(f, _)| f).collect();
        let mut en_fields: Vec<&String> = en.iter().map(|(f, _)| f).collect();
        zh_fields.sort();
        en_fields.sort();
        assert_eq!(zh_fields, en_fields, "both languages have every text");
        for (field, zh_text) in &zh {
            let en_text = &en.iter().find(|(f, _)| f == field).expect("same fields").1;
            assert_eq!(
                placeholders(zh_text),
                placeholders(en_text),
                "{field}: zh {zh_text:?} / en {en_text:?}"
            );
        }
    }

    /// Text from WeChat (a nickname) or from a person (a reason) that contains every placeholder
    /// name comes out verbatim, in every template of both languages.
    #[test]
    fn values_that_contain_placeholders_appear_verbatim() {
        let all: Vec<String> = templates("ZH")
            .iter()
            .chain(templates("EN").iter())
            .flat_map(|(_, t)| placeholders(t))
            .collect();
        let every = all.iter().map(|n| format!("{{{n}}}")).collect::<String>();
        let nickname = format!("Nick {every} end");
        let reason = format!("因为 {every} 理由");
        for lang in ["ZH", "EN"] {
            for (field, template) in templates(lang) {
                let names = placeholders(&template);
                if names.is_empty() {
                    continue;
                }
                let values: Vec<(String, String)> = names
                    .iter()
                    .map(|n| {
                        let v = if n == "reason" {
                            reason.clone()
                        } else {
                            format!("<{n}:{nickname}>")
                        };
                        (n.clone(), v)
                    })
                    .collect();
                let pairs: Vec<(&str, &str)> = values
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();

                let filled = fill(&template, &pairs);

                let mut expected = template.clone();
                for (i, (name, _)) in values.iter().enumerate() {
                    expected = expected.replace(&format!("{{{name}}}"), &format!("\u{0}{i}\u{0}"));
                }
                for (i, (_, value)) in values.iter().enumerate() {
                    expected = expected.replace(&format!("\u{0}{i}\u{0}"), value);
                }
                assert_eq!(filled, expected, "{lang}.{field}");
            }
        }
        assert_eq!(
            fill(
                "❌ {name}: {reason} · {time}",
                &[
                    ("name", "{reason}"),
                    ("reason", "{time}{name}"),
                    ("time", "12:00")
                ]
            ),
            "❌ {reason}: {time}{name} · 12:00"
        );
    }

    #[test]
    fn buttons_keep_their_leading_emoji_in_both_languages() {
        for lang in [Lang::Zh, Lang::En] {
            let t = lang.texts();
            assert!(t.button_approve.starts_with('✅'));
            assert!(t.button_reject.starts_with('❌'));
        }
    }

    #[test]
    fn chinese_texts_use_full_width_punctuation() {
        let zh: Vec<(String, String)> = templates("ZH")
            .into_iter()
            .chain(templates("PAGE_ZH"))
            .collect();
        assert!(zh.len() > 100, "read {} zh texts", zh.len());
        let problems: Vec<String> = zh
            .iter()
            .filter(|(_, text)| !zh_punctuation_problems(text).is_empty())
            .map(|(name, text)| format!("{name}: {text}"))
            .collect();
        assert!(
            problems.is_empty(),
            "ASCII punctuation in zh texts:\n{}",
            problems.join("\n")
        );
        // The check sees what it is for.
        assert_eq!(
            zh_punctuation_problems("理由太长了(最多 {max} 个字),请再回复"),
            ['(', ')', ',']
        );
        assert!(zh_punctuation_problems("用法：/approve <appid> &lt;理由&gt; {a}").is_empty());
    }

    #[test]
    fn fill_takes_values_verbatim() {
        assert_eq!(
            fill("{a}:{b}", &[("a", "{b}"), ("b", "x")]),
            "{b}:x",
            "a value holding a placeholder name is not filled again"
        );
    }

    #[test]
    fn languages_parse() {
        assert_eq!("EN".parse::<Lang>(), Ok(Lang::En));
        assert_eq!("zh".parse::<Lang>(), Ok(Lang::Zh));
        assert!("fr".parse::<Lang>().is_err());
    }
}
