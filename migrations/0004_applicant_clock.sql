-- A logical clock for what the bot believes about applicants. A poll reads the clock before it
-- lists WeChat and may only write over records no newer than that reading; everything that learns
-- WeChat's truth after a poll began (a decision, a re-read) takes the next tick. So a poll that was
-- still paging when someone decided can never put its older view back.
CREATE TABLE clock (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    tick INTEGER NOT NULL
);
INSERT INTO clock (id, tick) VALUES (1, 0);
ALTER TABLE applicants ADD COLUMN touched INTEGER NOT NULL DEFAULT 0;
