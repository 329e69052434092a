-- The undo window (UNDO_SECS): as migrations/0008_undo_window.sql on SQLite.
ALTER TABLE cards ADD COLUMN due_at BIGINT;
ALTER TABLE cards ADD COLUMN resumed BOOLEAN NOT NULL DEFAULT FALSE;
