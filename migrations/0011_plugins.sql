-- Several plugins in one bot: an applicant is known by the plugin it applied to and its appid
-- (the same mini-program applying to two plugins is two applicants, with two cards), and the
-- audit log says which plugin each decision concerned. A plugin is known by its own AppID, so
-- moving from the WECHAT_* variables to PLUGINS_FILE, or renaming a plugin, keeps every row.
--
-- Rows from before this migration have plugin '' until the bot's first start claims them for
-- its one plugin (`Store::claim_unnamed`); nothing is dropped. SQLite cannot change a primary
-- key in place, so `applicants` and `cards` are rebuilt with every row and id as they were.

CREATE TABLE applicants_new (
    plugin      TEXT NOT NULL DEFAULT '',
    appid       TEXT NOT NULL,
    status      INTEGER NOT NULL,
    nickname    TEXT,
    avatar_url  TEXT,
    reason      TEXT,
    apply_url   TEXT,
    applied_at  INTEGER,
    categories  TEXT NOT NULL DEFAULT '[]',
    first_seen  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    gone        INTEGER NOT NULL DEFAULT 0,
    touched     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (plugin, appid)
);
INSERT INTO applicants_new (plugin, appid, status, nickname, avatar_url, reason, apply_url,
        applied_at, categories, first_seen, updated_at, gone, touched)
    SELECT '', appid, status, nickname, avatar_url, reason, apply_url, applied_at, categories,
        first_seen, updated_at, gone, touched
    FROM applicants;

CREATE TABLE cards_new (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id             INTEGER NOT NULL,
    plugin              TEXT NOT NULL DEFAULT '',
    appid               TEXT NOT NULL,
    message_id          INTEGER,
    state               TEXT NOT NULL,
    actor_id            INTEGER,
    actor_name          TEXT,
    action              TEXT,
    reason              TEXT,
    note                TEXT,
    prompt_message_id   INTEGER,
    message_gone        INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    version             INTEGER NOT NULL DEFAULT 0,
    shown_version       INTEGER NOT NULL DEFAULT 0,
    reminded_at         INTEGER,
    previous_message_id INTEGER,
    moved               TEXT,
    votes               TEXT NOT NULL DEFAULT '[]',
    due_at              INTEGER,
    resumed             BOOLEAN NOT NULL DEFAULT FALSE,
    escalated_at        INTEGER,
    FOREIGN KEY (plugin, appid) REFERENCES applicants_new (plugin, appid) ON UPDATE CASCADE
);
INSERT INTO cards_new (id, chat_id, plugin, appid, message_id, state, actor_id, actor_name,
        action, reason, note, prompt_message_id, message_gone, created_at, updated_at, version,
        shown_version, reminded_at, previous_message_id, moved, votes, due_at, resumed,
        escalated_at)
    SELECT id, chat_id, '', appid, message_id, state, actor_id, actor_name, action, reason, note,
        prompt_message_id, message_gone, created_at, updated_at, version, shown_version,
        reminded_at, previous_message_id, moved, votes, due_at, resumed, escalated_at
    FROM cards;

-- The old cards first (they refer to the old applicants), then the old applicants; renaming
-- the new applicants carries the new cards' reference along.
DROP TABLE cards;
DROP TABLE applicants;
ALTER TABLE applicants_new RENAME TO applicants;
ALTER TABLE cards_new RENAME TO cards;
CREATE UNIQUE INDEX cards_one_per_applicant ON cards (chat_id, plugin, appid);
CREATE INDEX cards_by_message ON cards (chat_id, message_id);
CREATE INDEX cards_by_prompt ON cards (chat_id, prompt_message_id);

ALTER TABLE audit ADD COLUMN plugin TEXT NOT NULL DEFAULT '';
DROP INDEX audit_by_appid;
CREATE INDEX audit_by_applicant ON audit (plugin, appid, id);
