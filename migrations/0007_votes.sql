-- Quorum (APPROVALS_REQUIRED): the approvers who have pressed ✅ on a card and not withdrawn, as
-- a JSON array of {"id", "name", "at"} in the order they voted. A decision to approve is claimed
-- only while this holds as many distinct approvers as the quorum asks; each vote and withdrawal
-- is also an audit row. A card row reused for a re-application starts with no votes.
ALTER TABLE cards ADD COLUMN votes TEXT NOT NULL DEFAULT '[]';
