-- A third-party platform's refresh token: as migrations/0010_authorizers.sql on SQLite.
CREATE TABLE authorizers (
    authorizer_appid TEXT PRIMARY KEY,
    configured       TEXT NOT NULL,
    refresh_token    TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);
