-- The undo window (UNDO_SECS): a decision whose deciding press has been made waits in state
-- 'scheduled' until `due_at` (unix milliseconds) before its WeChat write goes out; ↩ Undo puts
-- the card back as it was. `resumed`: the wait was taken up again after a restart (the card
-- says so). A restart finds every scheduled card here and resumes its wait from `due_at`.
ALTER TABLE cards ADD COLUMN due_at INTEGER;
ALTER TABLE cards ADD COLUMN resumed BOOLEAN NOT NULL DEFAULT FALSE;
