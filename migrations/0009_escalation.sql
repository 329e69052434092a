-- Escalation (ESCALATE_AFTER_HOURS): when a card's applicant was escalated to the approvers, by
-- name, so it is done once per application (a row reused for a re-application starts afresh).
ALTER TABLE cards ADD COLUMN escalated_at INTEGER;

-- Approvers who asked (/subscribe in a private chat with the bot) for a direct message on each
-- new card and each escalation. `blocked_at`: Telegram answered that the user blocked the bot;
-- recorded once, and nothing more is sent until they subscribe again.
CREATE TABLE subscribers (
    user_id       INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    subscribed_at INTEGER NOT NULL,
    blocked_at    INTEGER
);
