/**
 * The store's schema, as an ordered list of migrations both backends apply (each in its own transaction, recorded
 * in `schema_migrations`). A migration is never edited once released: a change is a new migration at the end.
 *
 * One text serves both dialects; the few words that must differ come from `TYPES`:
 * - text keys that lists are sorted by are `COLLATE "C"` on PostgreSQL, so both backends order them by code point
 *   (SQLite's BINARY) whatever the database's locale;
 * - booleans are BOOLEAN on PostgreSQL and 0/1 INTEGER on SQLite (the SQLite driver binds true/false as 1/0);
 * - generated ids are an identity column on PostgreSQL and SQLite's rowid (INTEGER PRIMARY KEY);
 * - SQLite tables are STRICT, so a value of the wrong type fails there as it does on PostgreSQL.
 *
 * JSON values (VM ports and resources, plan VMs, evidence failures, integrity state, audit details) are TEXT on
 * both: no query looks inside them, TEXT reads back byte for byte what was written (JSONB would reorder keys and
 * drop duplicates), and the two backends share every statement. Times are TEXT holding ISO 8601 strings as the
 * records carry them; comparisons (a nonce's expiry) are done in JavaScript, not in SQL.
 */

export type Dialect = 'sqlite' | 'postgres';

export interface Migration {
  /** 1, 2, 3…: applied in this order, each once */
  version: number;
  name: string;
  /** one text for both dialects, or one per dialect */
  sql: string | Record<Dialect, string>;
}

const TYPES = {
  sqlite: { key: 'TEXT', bool: 'INTEGER', bigint: 'INTEGER', id: 'INTEGER PRIMARY KEY', strict: ' STRICT' },
  postgres: { key: 'TEXT COLLATE "C"', bool: 'BOOLEAN', bigint: 'BIGINT', id: 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY', strict: '' },
} as const;

type Types = (typeof TYPES)[Dialect];

/** The same migration text with each dialect's words. */
function perDialect(template: (t: Types) => string): Record<Dialect, string> {
  return { sqlite: template(TYPES.sqlite), postgres: template(TYPES.postgres) };
}

const TRUST_STATES = `('unverified', 'trusted', 'untrusted', 'unreachable')`;
const ROLES = `('viewer', 'operator', 'admin', 'agent')`;

const initial = perDialect(
  (t) => `
-- Numbers handed out in order (policy versions): a row lock on PostgreSQL keeps two controllers from taking one twice.
CREATE TABLE counters (
  name ${t.key} PRIMARY KEY,
  value ${t.bigint} NOT NULL
)${t.strict};
INSERT INTO counters (name, value) VALUES ('policy', 0);

CREATE TABLE policy_versions (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  policy_version TEXT NOT NULL,
  yaml TEXT NOT NULL,
  note TEXT NOT NULL,
  actor TEXT NOT NULL,
  at TEXT NOT NULL
)${t.strict};

CREATE TABLE drafts (
  id ${t.key} PRIMARY KEY,
  yaml TEXT NOT NULL,
  base INTEGER REFERENCES policy_versions (version),
  actor TEXT NOT NULL,
  updated_at TEXT NOT NULL
)${t.strict};

CREATE TABLE hosts (
  name ${t.key} PRIMARY KEY,
  label TEXT,
  last_seen TEXT
)${t.strict};

-- No foreign key to hosts: an operator may describe a VM on a host whose agent has not reported yet.
CREATE TABLE vms (
  name ${t.key} PRIMARY KEY,
  host TEXT,
  label TEXT,
  running ${t.bool} NOT NULL,
  ports TEXT NOT NULL,
  resources TEXT NOT NULL,
  started_seq ${t.bigint}
)${t.strict};
CREATE INDEX vms_host ON vms (host);

CREATE TABLE resource_labels (
  kind ${t.key} NOT NULL CHECK (kind IN ('disk', 'network')),
  id ${t.key} NOT NULL,
  label TEXT NOT NULL,
  PRIMARY KEY (kind, id)
)${t.strict};

CREATE TABLE nonces (
  vm TEXT NOT NULL,
  nonce TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  used_at TEXT,
  PRIMARY KEY (vm, nonce)
)${t.strict};

CREATE TABLE integrity (
  vm ${t.key} PRIMARY KEY,
  state TEXT NOT NULL
)${t.strict};

CREATE TABLE evidence (
  id ${t.id},
  vm TEXT NOT NULL,
  at TEXT NOT NULL,
  entries ${t.bigint} NOT NULL,
  ok ${t.bool} NOT NULL,
  failures TEXT NOT NULL
)${t.strict};
CREATE INDEX evidence_vm ON evidence (vm, id);

CREATE TABLE trust (
  vm ${t.key} PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ${TRUST_STATES}),
  since TEXT NOT NULL,
  reason TEXT NOT NULL,
  last_evidence TEXT
)${t.strict};

CREATE TABLE trust_history (
  id ${t.id},
  vm TEXT NOT NULL REFERENCES trust (vm),
  from_state TEXT NOT NULL CHECK (from_state IN ${TRUST_STATES}),
  to_state TEXT NOT NULL CHECK (to_state IN ${TRUST_STATES}),
  at TEXT NOT NULL,
  reason TEXT NOT NULL,
  actor TEXT NOT NULL
)${t.strict};
CREATE INDEX trust_history_vm ON trust_history (vm, id);

-- Only each host's current plan: the audit log says when and why plans changed.
CREATE TABLE plans (
  host ${t.key} PRIMARY KEY,
  version INTEGER NOT NULL CHECK (version >= 1),
  policy_version INTEGER NOT NULL,
  vms TEXT NOT NULL
)${t.strict};

CREATE TABLE audit (
  seq ${t.bigint} PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  details TEXT NOT NULL,
  hash TEXT NOT NULL,
  prev_hash TEXT NOT NULL
)${t.strict};
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE INDEX audit_action ON audit (action, seq);
CREATE INDEX audit_subject ON audit (subject, seq);

-- The chain's head (last seq and hash), one row: appending locks it, so two controllers never fork the chain, and
-- a record deleted from the end shows as a gap at the next append.
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq ${t.bigint} NOT NULL,
  hash TEXT NOT NULL
)${t.strict};
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}');

CREATE TABLE tokens (
  id ${t.key} PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ${ROLES}),
  host TEXT,
  hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  revoked_at TEXT
)${t.strict};

CREATE TABLE users (
  name ${t.key} PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ${ROLES}),
  password_hash TEXT NOT NULL
)${t.strict};

-- No foreign key to users: sessions may belong to users the controller knows from elsewhere (its configuration).
CREATE TABLE sessions (
  hash ${t.key} PRIMARY KEY,
  user_name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ${ROLES}),
  csrf TEXT NOT NULL,
  expires_at TEXT NOT NULL
)${t.strict};
`,
);

/** Attestation keys of VMs with a (v)TPM, registered by their host's agent (trust on first use) or an operator. */
const attestationKeys = perDialect(
  (t) => `
CREATE TABLE attestation_keys (
  vm ${t.key} PRIMARY KEY,
  ak TEXT NOT NULL,
  name TEXT NOT NULL,
  registered_at TEXT NOT NULL,
  registered_by TEXT NOT NULL
)${t.strict};
`,
);

/**
 * Until now a good verdict on a trusted VM was kept only in the evidence table (the store could not move a trust
 * record's `last_evidence` without a transition); now it is written to the record (`touchTrust`). Carry the time of
 * each trusted VM's last evidence, when it was good and later, over to its record, as the controller read it before.
 */
const lastEvidenceBackfill = `
UPDATE trust SET last_evidence = (SELECT e.at FROM evidence e WHERE e.vm = trust.vm ORDER BY e.id DESC LIMIT 1)
WHERE state = 'trusted' AND EXISTS (
  SELECT 1 FROM evidence e
  WHERE e.vm = trust.vm AND e.id = (SELECT MAX(x.id) FROM evidence x WHERE x.vm = trust.vm) AND e.ok
    AND (trust.last_evidence IS NULL OR e.at > trust.last_evidence)
);
`;

/**
 * For evidence at the rate of a large fleet (issue 4, group commit):
 * - the fleet generation, a counter every transaction that writes fleet state moves on (store.ts), so a controller
 *   can keep the fleet in memory and know when it must read it again;
 * - the golden fingerprint apart from the small state rewritten at every increment (a state written before keeps
 *   it inside; the controller reads both forms);
 * - each VM's last evidence kept with its state (written with it, no row of its own): the evidence log keeps the
 *   failures, which retention prunes;
 * - indexes for pruning expired nonces and sessions;
 * - the VMs a `revoke` policy update isolated (until they stop, are relabeled or no longer violate).
 */
const fleetGeneration = `
INSERT INTO counters (name, value) VALUES ('fleet', 0);
ALTER TABLE integrity ADD COLUMN fingerprint TEXT;
ALTER TABLE integrity ADD COLUMN last_evidence TEXT;
ALTER TABLE vms ADD COLUMN revoked TEXT;
CREATE INDEX nonces_expires ON nonces (expires_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
`;

/**
 * The golden fingerprints in a table of their own: kept in the integrity row (one per VM, rewritten at every
 * increment), a fingerprint of a few hundred paths made that row three times larger, and every increment wrote it
 * again (a row is rewritten whole), so the WAL carried it at each commit (bench:controller: 5–10% of the server
 * thread's time per increment).
 */
const fingerprintsApart = perDialect(
  (t) => `
CREATE TABLE fingerprints (
  vm ${t.key} PRIMARY KEY,
  fingerprint TEXT NOT NULL
)${t.strict};
INSERT INTO fingerprints (vm, fingerprint) SELECT vm, fingerprint FROM integrity WHERE fingerprint IS NOT NULL;
ALTER TABLE integrity DROP COLUMN fingerprint;
`,
);

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial', sql: initial },
  { version: 2, name: 'attestation keys', sql: attestationKeys },
  { version: 3, name: 'trust last evidence from the evidence table', sql: lastEvidenceBackfill },
  { version: 4, name: 'fleet generation, fingerprints apart, last evidence with the state, pruning indexes, revoked VMs', sql: fleetGeneration },
  { version: 5, name: 'fingerprints in a table of their own', sql: fingerprintsApart },
];

/** The newest schema this code knows: a database with a higher version is refused. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Where applied migrations are recorded; created before any migration runs. */
export const SCHEMA_MIGRATIONS_SQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`;

export function migrationSql(m: Migration, dialect: Dialect): string {
  return typeof m.sql === 'string' ? m.sql : m.sql[dialect];
}
