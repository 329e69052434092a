//! `PLUGINS_FILE`: the plugins one bot serves, from a TOML file read at start. A plugin's WeChat
//! side is judged by the very rules of the single plugin's `WECHAT_*` variables, its keys
//! standing in for them, so both forms refuse the same mistakes; every problem names the file,
//! the plugin and the key, and all of them are reported at once.

use std::collections::HashSet;

use teloxide::types::{ChatId, UserId};

use super::{ConfigError, PluginSettings, Problems, Var, wechat};
use crate::domain::applicant::AppId;

/// A plugin's keys, each with the variable it stands for in the single-plugin form (`None`:
/// the key has no such variable). Keys ending in `_env` name a variable that holds a secret.
const KEYS: [(&str, Option<&str>); 12] = [
    ("name", None),
    ("appid", Some("WECHAT_APPID")),
    ("secret_env", Some("WECHAT_SECRET")),
    ("token_mode", Some("WECHAT_TOKEN_MODE")),
    ("team_chat_id", None),
    ("approver_ids", None),
    ("api_base", Some("WECHAT_API_BASE")),
    ("access_token_file", Some("WECHAT_ACCESS_TOKEN_FILE")),
    ("component_appid", Some("WECHAT_COMPONENT_APPID")),
    ("component_secret_env", Some("WECHAT_COMPONENT_SECRET")),
    (
        "component_ticket_file",
        Some("WECHAT_COMPONENT_TICKET_FILE"),
    ),
    (
        "authorizer_refresh_token_env",
        Some("WECHAT_AUTHORIZER_REFRESH_TOKEN"),
    ),
];

/// Variables a plugin takes from the environment when its own key is absent.
const GLOBAL: [&str; 3] = ["WECHAT_API_BASE", "WECHAT_TIMEOUT_SECS", "WECHAT_PAGE_SIZE"];

/// The longest plugin name: it heads card lines and fits a command.
const NAME_MAX_CHARS: usize = 32;

/// The plugins `path` describes. `var` is the configuration's view of the environment (the
/// global defaults), `env` the whole of it (the variables the file names for secrets); `chat` and `approvers` are `TEAM_CHAT_ID` and `APPROVER_IDS`, the
/// defaults of a plugin that names neither (`None` for a chat: `TEAM_CHAT_ID` is unset). Every
/// problem is noted in `p`, under `PLUGINS_FILE`.
pub(super) fn read(
    path: &str,
    var: Var<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    chat: Option<ChatId>,
    approvers: &Option<Vec<UserId>>,
    p: &Problems,
) -> Option<Vec<PluginSettings>> {
    let problem = |what: String| ConfigError::new("PLUGINS_FILE", format!("{path}: {what}"));
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return p.check(Err(problem(format!("cannot be read: {e}")))),
    };
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let message = e.message().trim().replace('\n', " ");
            return p.check(Err(problem(match line {
                Some(line) => format!("is not TOML: line {line}: {message}"),
                None => format!("is not TOML: {message}"),
            })));
        }
    };
    for key in table.keys().filter(|k| *k != "plugin") {
        p.check::<()>(Err(problem(format!(
            "unknown table or key '{key}' (the file holds [[plugin]] tables)"
        ))));
    }
    let Some(entries) = table.get("plugin").and_then(toml::Value::as_array) else {
        return p.check(Err(problem(
            "names no plugin: add a [[plugin]] table for each".to_owned(),
        )));
    };
    let mut plugins = Vec::with_capacity(entries.len());
    let mut names = HashSet::new();
    let mut appids = HashSet::new();
    let mut whole = true;
    for (n, entry) in entries.iter().enumerate() {
        let label = entry
            .get("name")
            .and_then(toml::Value::as_str)
            .map_or_else(|| format!("#{}", n + 1), |name| format!("{name:?}"));
        let at = |key: &str, what: String| problem(format!("plugin {label}: {key}: {what}"));
        let Some(entry) = entry.as_table() else {
            p.check::<()>(Err(problem(format!("plugin #{}: is not a table", n + 1))));
            whole = false;
            continue;
        };
        match one(entry, var, env, chat, approvers, &at, p) {
            Some(plugin) => {
                if !names.insert(plugin.name.to_lowercase()) {
                    p.check::<()>(Err(at("name", "is used by another plugin".to_owned())));
                }
                if !appids.insert(plugin.wechat.appid.clone()) {
                    p.check::<()>(Err(at(
                        "appid",
                        "is another plugin's too: a plugin is listed once".to_owned(),
                    )));
                }
                plugins.push(plugin);
            }
            None => whole = false,
        }
    }
    // One team chat serves every plugin in this version: a plugin of its own elsewhere is
    // refused rather than quietly carded in the first plugin's chat.
    if let Some(first) = plugins.first() {
        for plugin in &plugins[1..] {
            let at =
                |key: &str, what: &str| problem(format!("plugin {:?}: {key}: {what}", plugin.name));
            if plugin.team_chat_id != first.team_chat_id {
                p.check::<()>(Err(at(
                    "team_chat_id",
                    "differs from the first plugin's: this version cards every plugin in one team chat (set TEAM_CHAT_ID, or the same team_chat_id on each)",
                )));
                whole = false;
            }
        }
    }
    (whole && !plugins.is_empty()).then_some(plugins)
}

/// One `[[plugin]]` table, or `None` with its problems noted.
fn one(
    entry: &toml::Table,
    var: Var<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    chat: Option<ChatId>,
    approvers: &Option<Vec<UserId>>,
    at: &dyn Fn(&str, String) -> ConfigError,
    p: &Problems,
) -> Option<PluginSettings> {
    let before = p.0.borrow().len();
    let known: Vec<&str> = KEYS.iter().map(|(key, _)| *key).collect();
    for key in entry.keys().filter(|k| !known.contains(&k.as_str())) {
        p.check::<()>(Err(at(
            key,
            format!("is not a plugin key (known: {})", known.join(", ")),
        )));
    }
    let text = |key: &str| -> Option<String> {
        match entry.get(key) {
            None => None,
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(other) => {
                p.check::<()>(Err(at(
                    key,
                    format!("must be a string, not {}", other.type_str()),
                )));
                None
            }
        }
    };
    let name = match text("name") {
        None => {
            p.check::<()>(Err(at("name", "is required".to_owned())));
            None
        }
        Some(name) => p.check(plugin_name(&name).map_err(|e| at("name", e))),
    };
    let team_chat_id = match entry.get("team_chat_id") {
        None => chat.or_else(|| {
            p.check::<()>(Err(at(
                "team_chat_id",
                "is not set here and TEAM_CHAT_ID is not set".to_owned(),
            )));
            None
        }),
        Some(toml::Value::Integer(id)) if *id != 0 => Some(ChatId(*id)),
        Some(other) => {
            let what = match other {
                toml::Value::Integer(id) => id.to_string(),
                other => format!("a {}", other.type_str()),
            };
            p.check::<()>(Err(at(
                "team_chat_id",
                format!("must be a Telegram chat id such as -1001234567890, not {what}"),
            )));
            None
        }
    };
    let approver_ids = match entry.get("approver_ids") {
        None => Some(approvers.clone()),
        Some(toml::Value::Array(ids)) if !ids.is_empty() => {
            let ids: Option<Vec<UserId>> = ids
                .iter()
                .map(|id| match id {
                    toml::Value::Integer(id) if *id > 0 => Some(UserId(*id as u64)),
                    _ => None,
                })
                .collect();
            if ids.is_none() {
                p.check::<()>(Err(at(
                    "approver_ids",
                    "must list Telegram user ids (positive numbers)".to_owned(),
                )));
            }
            ids.map(Some)
        }
        Some(_) => {
            p.check::<()>(Err(at(
                "approver_ids",
                "must be a non-empty list of Telegram user ids, such as [1001, 1002]".to_owned(),
            )));
            None
        }
    };
    // The WeChat side through the single plugin's rules: each key answers for its variable,
    // a `_env` key by the variable it names, and a missing `api_base` (and the timeouts) by
    // the global default.
    let mut values: Vec<(&'static str, Option<String>)> = Vec::new();
    let mut unset_env: Vec<(&'static str, String)> = Vec::new();
    for (key, variable) in KEYS {
        let Some(variable) = variable else { continue };
        let value = text(key);
        let value = if key.ends_with("_env") {
            value.and_then(|name| {
                let secret = env(&name)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty());
                if secret.is_none() {
                    unset_env.push((variable, name));
                }
                secret
            })
        } else {
            value
        };
        values.push((variable, value));
    }
    let plugin_var = |variable: &'static str| -> Option<String> {
        match values.iter().find(|(v, _)| *v == variable) {
            Some((_, Some(value))) => Some(value.clone()),
            Some((_, None)) if !GLOBAL.contains(&variable) => None,
            _ if GLOBAL.contains(&variable) => var(variable),
            _ => None,
        }
    };
    let inner = Problems::default();
    let wechat = wechat(&plugin_var, &inner);
    for e in inner.0.into_inner() {
        let key = KEYS
            .iter()
            .find(|(_, v)| *v == Some(e.var))
            .map_or(e.var, |(key, _)| *key);
        let what = match unset_env.iter().find(|(v, _)| *v == e.var) {
            Some((_, name)) => format!("names {name}, which is not set"),
            None => e.problem.replace("WECHAT_TOKEN_MODE=", "token_mode = "),
        };
        p.check::<()>(Err(at(key, what)));
    }
    if p.0.borrow().len() > before {
        return None;
    }
    let (name, mut wechat) = (name?, wechat?);
    wechat.name = name.clone();
    Some(PluginSettings {
        name,
        wechat,
        team_chat_id: team_chat_id?,
        approvers: approver_ids?,
    })
}

/// A plugin's name as commands take it: one word, not an appid's shape.
fn plugin_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("is empty".to_owned());
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(format!("is longer than {NAME_MAX_CHARS} characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "'{name}' has a space: commands take it as one word (use - or _)"
        ));
    }
    if AppId::parse(name).is_ok() && name.starts_with("wx") {
        return Err(format!(
            "'{name}' reads as an appid: /approve could not tell the two apart"
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::config::Settings;
    use crate::wechat::TokenMode;

    /// The settings of `file` with `vars` (the file's path filled in), or every problem.
    fn load(file: &str, vars: &[(&str, &str)]) -> Result<Settings, Vec<String>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("plugins.toml");
        std::fs::write(&path, file).expect("file written");
        let path = path.display().to_string();
        let mut all: HashMap<String, String> = HashMap::from([
            ("TELOXIDE_TOKEN".to_owned(), "123:abc".to_owned()),
            ("TEAM_CHAT_ID".to_owned(), "-1001234567890".to_owned()),
            ("PLUGINS_FILE".to_owned(), path.clone()),
        ]);
        for (k, v) in vars {
            all.insert((*k).to_owned(), (*v).to_owned());
        }
        Settings::from_vars(|k| all.get(k).cloned()).map_err(|e| {
            e.0.iter()
                .map(|e| e.to_string().replace(&path, "FILE"))
                .collect()
        })
    }

    const TWO: &str = r#"
[[plugin]]
name = "Maps"
appid = "wx1234567890abcdef"
secret_env = "MAPS_SECRET"

[[plugin]]
name = "Pay"
appid = "wxfedcba0987654321"
token_mode = "cloudrun"
api_base = "http://api.weixin.qq.com"
"#;

    #[test]
    fn a_file_of_two_plugins_makes_two_with_their_own_credentials_and_names() {
        let s = load(TWO, &[("MAPS_SECRET", "maps-secret")]).expect("valid");

        let names: Vec<&str> = s.plugins.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Maps", "Pay"]);
        assert_eq!(s.plugins[0].wechat.appid, "wx1234567890abcdef");
        assert_eq!(s.plugins[0].wechat.name, "Maps", "metrics label it by name");
        assert_eq!(s.plugins[0].wechat.token_mode, TokenMode::Stable);
        assert_eq!(
            s.plugins[0].wechat.base_url.as_str(),
            "https://api.weixin.qq.com/",
            "the default base"
        );
        assert_eq!(s.plugins[1].wechat.token_mode, TokenMode::CloudRun);
        assert_eq!(s.plugins[1].team_chat_id, s.team_chat_id);
        assert_eq!(s.plugin_name("wxfedcba0987654321"), Some("Pay"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("maps-secret"), "{shown}");
    }

    #[test]
    fn the_example_in_deploy_is_a_valid_file() {
        let s = load(
            include_str!("../../deploy/plugins.example.toml"),
            &[
                ("MAPS_SECRET", "m"),
                ("PLATFORM_SECRET", "p"),
                ("PAY_REFRESH_TOKEN", "r"),
            ],
        )
        .expect("the example is valid");
        let modes: Vec<&str> = s
            .plugins
            .iter()
            .map(|p| p.wechat.token_mode.name())
            .collect();
        assert_eq!(modes, ["stable", "authorizer"]);
    }

    #[test]
    fn every_problem_of_a_broken_file_is_named_with_the_file_the_plugin_and_the_key() {
        let file = r#"
[[plugin]]
name = "Maps"
appid = "wx1234567890abcdef"
secret_env = "MAPS_SECRET"
secert = "typo"

[[plugin]]
name = "maps"
appid = "wx1234567890abcdef"
token_mode = "magic"

[[plugin]]
appid = "not an appid"
token_mode = "cloudrun"
secret_env = "PAY_SECRET"
team_chat_id = "chat"
"#;
        let problems = load(file, &[("PAY_SECRET", "x")]).expect_err("refused");

        for expected in [
            "PLUGINS_FILE: FILE: plugin \"Maps\": secert: is not a plugin key",
            "PLUGINS_FILE: FILE: plugin \"Maps\": secret_env: names MAPS_SECRET, which is not set",
            "PLUGINS_FILE: FILE: plugin \"maps\": token_mode: 'magic' is not one of",
            "PLUGINS_FILE: FILE: plugin #3: name: is required",
            "PLUGINS_FILE: FILE: plugin #3: appid:",
            "PLUGINS_FILE: FILE: plugin #3: secret_env: is not used with token_mode = cloudrun",
            "PLUGINS_FILE: FILE: plugin #3: team_chat_id: must be a Telegram chat id",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected:?} not in {problems:#?}"
            );
        }
        assert!(
            problems
                .iter()
                .all(|p| !p.contains("typo") && !p.contains('\n')),
            "one line each, no value: {problems:#?}"
        );
    }

    #[test]
    fn names_and_appids_are_one_plugins_each_and_a_name_never_reads_as_an_appid() {
        let file = r#"
[[plugin]]
name = "Maps"
appid = "wx1234567890abcdef"
token_mode = "cloudrun"

[[plugin]]
name = "MAPS"
appid = "wx1234567890abcdef"
token_mode = "cloudrun"

[[plugin]]
name = "wxfedcba0987654321"
appid = "wxfedcba0987654321"
token_mode = "cloudrun"

[[plugin]]
name = "Two words"
appid = "wx0000000000000003"
token_mode = "cloudrun"
"#;
        let problems = load(file, &[]).expect_err("refused");

        for expected in [
            "plugin \"MAPS\": name: is used by another plugin",
            "plugin \"MAPS\": appid: is another plugin's too",
            "plugin \"wxfedcba0987654321\": name: 'wxfedcba0987654321' reads as an appid",
            "plugin \"Two words\": name: 'Two words' has a space",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected:?} not in {problems:#?}"
            );
        }
    }

    #[test]
    fn the_file_and_the_single_plugin_variables_are_one_or_the_other() {
        let problems = load(
            TWO,
            &[
                ("MAPS_SECRET", "maps-secret"),
                ("WECHAT_APPID", "wx1234567890abcdef"),
            ],
        )
        .expect_err("refused");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("PLUGINS_FILE: is set beside WECHAT_APPID: choose one")),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_file_that_is_not_there_or_not_toml_says_so_in_one_line() {
        let missing = Settings::from_vars(|k| match k {
            "TELOXIDE_TOKEN" => Some("123:abc".to_owned()),
            "TEAM_CHAT_ID" => Some("-1001234567890".to_owned()),
            "PLUGINS_FILE" => Some("/nonexistent/plugins.toml".to_owned()),
            _ => None,
        })
        .expect_err("refused");
        assert!(
            missing.0[0]
                .to_string()
                .starts_with("PLUGINS_FILE: /nonexistent/plugins.toml: cannot be read"),
            "{missing}"
        );

        let problems = load("[[plugin]\nname = ", &[]).expect_err("refused");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].starts_with("PLUGINS_FILE: FILE: is not TOML: line 1:"),
            "{problems:#?}"
        );
        let problems = load("title = \"x\"\n", &[]).expect_err("refused");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("unknown table or key 'title'"))
                && problems.iter().any(|p| p.contains("names no plugin")),
            "{problems:#?}"
        );
    }

    #[test]
    fn every_plugin_shares_the_team_chat_for_now_and_may_have_approvers_of_its_own() {
        let file = r#"
[[plugin]]
name = "Maps"
appid = "wx1234567890abcdef"
token_mode = "cloudrun"
approver_ids = [1001, 1002]

[[plugin]]
name = "Pay"
appid = "wxfedcba0987654321"
token_mode = "cloudrun"
team_chat_id = -1009999999999
approver_ids = [1001, 1002]
"#;
        let problems = load(file, &[]).expect_err("refused");
        assert!(
            problems.iter().any(
                |p| p.contains("plugin \"Pay\": team_chat_id: differs from the first plugin's")
            ),
            "{problems:#?}"
        );

        let same = file
            .replace("team_chat_id = -1009999999999\n", "")
            .replace("approver_ids = [1001, 1002]\n\n[[plugin]]", "\n[[plugin]]");
        let s = load(&same, &[("APPROVER_IDS", "7")]).expect("one chat");
        let ids = |ids: &[u64]| Some(ids.iter().map(|id| teloxide::types::UserId(*id)).collect());
        assert_eq!(s.plugins[0].approvers, ids(&[7]), "APPROVER_IDS by default");
        assert_eq!(s.plugins[1].approvers, ids(&[1001, 1002]), "its own");
        assert_eq!(s.approvers, ids(&[7]));
    }
}
