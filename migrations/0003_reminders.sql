-- When the team chat was last reminded that this card's applicant is still waiting (unix
-- seconds); reminders come at most once a day per applicant.
ALTER TABLE cards ADD COLUMN reminded_at INTEGER;
