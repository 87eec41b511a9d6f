-- The service catalog: API keys (hashes only) and one row per flow run the service knows.
CREATE TABLE mpt_catalog.api_keys (
    id          text PRIMARY KEY,             -- short public id, shown in lists and logs
    key_hash    text NOT NULL UNIQUE,         -- sha256 of the whole key; the key is never stored
    owner       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('viewer', 'creator', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE mpt_catalog.videos (
    flow_run_id uuid PRIMARY KEY,
    owner       text,                         -- null for runs started outside the API
    kind        text NOT NULL DEFAULT 'video' CHECK (kind IN ('video', 'audio', 'subtitles')),
    spec        jsonb NOT NULL DEFAULT '{}'::jsonb,
    state       text NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    progress    real NOT NULL DEFAULT 0,
    stage       text,
    error       text,
    out_dir     text,
    paths       jsonb NOT NULL DEFAULT '{}'::jsonb,
    duration_s  real,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE INDEX videos_owner_created ON mpt_catalog.videos (owner, created_at DESC);
CREATE INDEX videos_state ON mpt_catalog.videos (state);
