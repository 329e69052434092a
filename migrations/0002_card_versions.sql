-- Every change to a card bumps `version`; a successful edit records the version it showed. A card
-- whose shown_version lags (a crash between recording a decision and editing the message) is
-- re-rendered at the next start.
ALTER TABLE cards ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cards ADD COLUMN shown_version INTEGER NOT NULL DEFAULT 0;
