-- A third-party platform calling for the plugin's owner (WECHAT_TOKEN_MODE=authorizer): the
-- authorizer's refresh token WeChat returned last, kept across restarts and shared by replicas.
-- `configured` is the WECHAT_AUTHORIZER_REFRESH_TOKEN it was first taken from: when an operator
-- sets a new one (the owner authorized again), the configured one wins and is kept instead.
CREATE TABLE authorizers (
    authorizer_appid TEXT PRIMARY KEY,
    configured       TEXT NOT NULL,
    refresh_token    TEXT NOT NULL,
    updated_at       INTEGER NOT NULL
);
