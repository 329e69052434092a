-- Escalation and direct messages: as migrations/0009_escalation.sql on SQLite.
ALTER TABLE cards ADD COLUMN escalated_at BIGINT;

CREATE TABLE subscribers (
    user_id       BIGINT PRIMARY KEY,
    name          TEXT NOT NULL,
    subscribed_at BIGINT NOT NULL,
    blocked_at    BIGINT
);
