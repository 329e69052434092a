-- Quorum (APPROVALS_REQUIRED): as migrations/0007_votes.sql on SQLite. The approvers who have
-- pressed ✅ on a card and not withdrawn, a JSON array of {"id", "name", "at"}.
ALTER TABLE cards ADD COLUMN votes TEXT NOT NULL DEFAULT '[]';
