-- Applicants as last seen in WeChat's list.
CREATE TABLE applicants (
    appid       TEXT PRIMARY KEY NOT NULL,
    status      INTEGER NOT NULL,
    nickname    TEXT,
    avatar_url  TEXT,
    reason      TEXT,
    apply_url   TEXT,
    applied_at  INTEGER,
    categories  TEXT NOT NULL DEFAULT '[]',
    first_seen  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    -- 1 once the applicant vanished from WeChat's list (deleted).
    gone        INTEGER NOT NULL DEFAULT 0
);

-- The card posted for an applicant in a chat: one per (chat, applicant); a re-application reuses
-- the row with a new message.
CREATE TABLE cards (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id           INTEGER NOT NULL,
    appid             TEXT NOT NULL REFERENCES applicants(appid),
    -- NULL while the card is being sent: the row is written before sendMessage so an applicant
    -- is never lost; a crash before the id is stored means it is sent again.
    message_id        INTEGER,
    state             TEXT NOT NULL,
    -- Who holds or last held the card, and the decision in progress or last made.
    actor_id          INTEGER,
    actor_name        TEXT,
    action            TEXT,
    reason            TEXT,
    -- JSON: the last outcome the card shows.
    note              TEXT,
    -- The ForceReply prompt asking for a typed reason.
    prompt_message_id INTEGER,
    -- 1 once a person deleted the card's message.
    message_gone      INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX cards_one_per_applicant ON cards (chat_id, appid);
CREATE INDEX cards_by_message ON cards (chat_id, message_id);
CREATE INDEX cards_by_prompt ON cards (chat_id, prompt_message_id);

-- Append-only: every decision attempt gets a row before WeChat is called, and its result gets a
-- row of its own pointing back to it (attempt_id). Nothing is updated or deleted.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    appid       TEXT NOT NULL,
    action      TEXT NOT NULL,
    actor_id    INTEGER,
    actor_name  TEXT,
    via         TEXT NOT NULL,
    reason      TEXT,
    result      TEXT NOT NULL,
    errcode     INTEGER,
    detail      TEXT,
    attempt_id  INTEGER REFERENCES audit(id)
);
CREATE INDEX audit_by_appid ON audit (appid, id);
CREATE INDEX audit_by_attempt ON audit (attempt_id);
