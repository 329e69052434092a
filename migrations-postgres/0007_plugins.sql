-- Several plugins in one bot (SQLite's 0011): an applicant is known by its plugin's AppID and
-- its own appid, cards follow that key, and the audit log names the plugin. Rows from before
-- have plugin '' until the bot's first start claims them for its one plugin.
ALTER TABLE cards DROP CONSTRAINT cards_appid_fkey;
ALTER TABLE applicants ADD COLUMN plugin TEXT NOT NULL DEFAULT '';
ALTER TABLE applicants DROP CONSTRAINT applicants_pkey;
ALTER TABLE applicants ADD PRIMARY KEY (plugin, appid);

ALTER TABLE cards ADD COLUMN plugin TEXT NOT NULL DEFAULT '';
DROP INDEX cards_one_per_applicant;
CREATE UNIQUE INDEX cards_one_per_applicant ON cards (chat_id, plugin, appid);
ALTER TABLE cards ADD CONSTRAINT cards_applicant_fkey FOREIGN KEY (plugin, appid)
    REFERENCES applicants (plugin, appid) ON UPDATE CASCADE;

ALTER TABLE audit ADD COLUMN plugin TEXT NOT NULL DEFAULT '';
DROP INDEX audit_by_appid;
CREATE INDEX audit_by_applicant ON audit (plugin, appid, id);
