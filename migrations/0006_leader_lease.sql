-- Which replica leads: polls WeChat, sends reminders, reads Telegram's updates in long-polling
-- mode. One row. A replica takes the lease only once it has expired (or was released), and each
-- taking raises the epoch: a leader's writes are fenced by the epoch it took (on PostgreSQL, by
-- the trigger in migrations-postgres/0002), so a leader that was paused past its lease cannot
-- write after another took over. Times are the database's own clock in milliseconds, so replicas
-- on machines whose clocks differ agree on when a lease ends.
CREATE TABLE leader_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    epoch       INTEGER NOT NULL,
    holder      TEXT,
    since_ms    INTEGER NOT NULL,
    renewed_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);
INSERT INTO leader_lease (id, epoch, holder, since_ms, renewed_ms, expires_ms) VALUES (1, 0, NULL, 0, 0, 0);
