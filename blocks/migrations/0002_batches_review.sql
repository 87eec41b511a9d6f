-- Campaigns, batches and review before publish.
ALTER TABLE mpt_catalog.videos DROP CONSTRAINT IF EXISTS videos_state_check;
ALTER TABLE mpt_catalog.videos ADD CONSTRAINT videos_state_check CHECK (state IN (
    'queued', 'running', 'awaiting_review', 'completed', 'failed', 'cancelled', 'rejected',
    'expired'));
ALTER TABLE mpt_catalog.videos ADD COLUMN review_note text;
ALTER TABLE mpt_catalog.videos ADD COLUMN batch_id uuid;
CREATE INDEX videos_batch ON mpt_catalog.videos (batch_id) WHERE batch_id IS NOT NULL;

-- A batch: rows sent together (POST /batches), or one run of a campaign's batch flow.
CREATE TABLE mpt_catalog.batches (
    id          uuid PRIMARY KEY,
    owner       text,
    name        text NOT NULL,
    flow_run_id uuid,                         -- the batch flow's run, for a campaign's run
    total       integer NOT NULL,             -- rows, the refused ones included
    created_at  timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz
);
CREATE INDEX batches_owner_created ON mpt_catalog.batches (owner, created_at DESC);

-- One row of a batch: the task made for it, or why none was (an invalid row).
CREATE TABLE mpt_catalog.batch_items (
    batch_id    uuid NOT NULL REFERENCES mpt_catalog.batches (id) ON DELETE CASCADE,
    row         integer NOT NULL,
    task_id     uuid,
    topic       text,
    error       text,
    PRIMARY KEY (batch_id, row)
);

-- A scheduled campaign: a schedule on the batch deployment, whose parameters are it.
CREATE TABLE mpt_catalog.campaigns (
    name        text PRIMARY KEY,
    owner       text NOT NULL,
    schedule_id uuid NOT NULL,                -- the deployment schedule in Prefect
    campaign    jsonb NOT NULL,
    schedule    jsonb NOT NULL,
    active      boolean NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
