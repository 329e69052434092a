-- A card row reused for a new message (the applicant is pending again) remembers the message it
-- replaced until that message has been edited to say a newer card stands for the applicant. The
-- old message is edited only after the new one is sent and recorded: if the new card is never
-- sent (the applicant was decided meanwhile), the row takes its old message back and the old
-- message never claims a successor that does not exist.
ALTER TABLE cards ADD COLUMN previous_message_id INTEGER;

-- A card left in a chat that is no longer the team chat (TEAM_CHAT_ID changed): closed, without
-- buttons, saying where the team moved (JSON: the new chat, its title, when). The cards of the
-- old chat are never edited again once this is shown.
ALTER TABLE cards ADD COLUMN moved TEXT;
