-- Which replica leads: polls WeChat, sends reminders, reads Telegram's updates in long-polling
-- mode. One row. A replica takes the lease only once it has expired (or was released), and each
-- taking raises the epoch. Times are the database's own clock in milliseconds, so replicas on
-- machines whose clocks differ agree on when a lease ends.
CREATE TABLE leader_lease (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    epoch       BIGINT NOT NULL,
    holder      TEXT,
    since_ms    BIGINT NOT NULL,
    renewed_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
INSERT INTO leader_lease (id, epoch, holder, since_ms, renewed_ms, expires_ms) VALUES (1, 0, NULL, 0, 0, 0);

-- The fence. While a replica leads, its connections carry the epoch it took (the session setting
-- wxbot.epoch). Every statement that writes the bot's state checks, in the statement itself, that
-- the lease still has that epoch, and waits for a takeover in progress (FOR SHARE against the
-- taker's update) so that none slips in between. A stale leader's write fails with SQLSTATE WXFEN;
-- writes from connections without the setting (a replica deciding a press, not leading) pass.
CREATE FUNCTION wxbot_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mine TEXT := current_setting('wxbot.epoch', true);
BEGIN
    IF mine IS NULL OR mine = '' THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM leader_lease WHERE id = 1 AND epoch = mine::BIGINT FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'fenced: the lease of epoch % was taken over by another replica', mine
            USING ERRCODE = 'WXFEN';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER applicants_fenced BEFORE INSERT OR UPDATE OR DELETE ON applicants
    FOR EACH STATEMENT EXECUTE FUNCTION wxbot_fence();
CREATE TRIGGER cards_fenced BEFORE INSERT OR UPDATE OR DELETE ON cards
    FOR EACH STATEMENT EXECUTE FUNCTION wxbot_fence();
CREATE TRIGGER audit_fenced BEFORE INSERT OR UPDATE OR DELETE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION wxbot_fence();
CREATE TRIGGER clock_fenced BEFORE INSERT OR UPDATE OR DELETE ON clock
    FOR EACH STATEMENT EXECUTE FUNCTION wxbot_fence();
