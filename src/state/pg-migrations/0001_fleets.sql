-- spotfleet state in PostgreSQL, version 1: one row per fleet (keyed by fleet name, checked against
-- the lineage on every statement), the last observation, the named state lock, and the watch
-- leader's lease with its fencing epoch. {schema} is replaced by the backend's schema name.
CREATE TABLE {schema}.fleets (
  fleet       text PRIMARY KEY,
  -- A small number per fleet for the two-key advisory lock (pg_try_advisory_lock(class, id)).
  id          serial UNIQUE,
  lineage     text NOT NULL,
  serial      bigint NOT NULL,
  version     integer NOT NULL,
  state       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- pid@host "command" of the last writer, and the epoch it wrote under (watch leaders only).
  updated_by  text NOT NULL DEFAULT '',
  epoch       bigint
);

CREATE TABLE {schema}.observations (
  fleet       text PRIMARY KEY REFERENCES {schema}.fleets (fleet) ON DELETE CASCADE,
  lineage     text NOT NULL,
  observed    jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The holder of the state lock. The lock itself is a session advisory lock held by backend_pid:
-- it goes away with that session (a killed spotfleet), so a row whose backend no longer holds the
-- advisory lock is stale.
CREATE TABLE {schema}.locks (
  fleet       text PRIMARY KEY REFERENCES {schema}.fleets (fleet) ON DELETE CASCADE,
  lineage     text NOT NULL,
  lock_id     text NOT NULL,
  holder      jsonb NOT NULL,
  backend_pid integer NOT NULL,
  taken_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The watch leader's lease. Every takeover raises the epoch; a leader's writes carry its epoch and
-- are refused once another replica holds a higher one, or once its own lease has expired.
CREATE TABLE {schema}.leaders (
  fleet       text PRIMARY KEY REFERENCES {schema}.fleets (fleet) ON DELETE CASCADE,
  lineage     text NOT NULL,
  epoch       bigint NOT NULL,
  holder      text NOT NULL,
  info        jsonb NOT NULL,
  since       timestamptz NOT NULL,
  renewed_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  changes     bigint NOT NULL DEFAULT 0
);
