package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// migrations[i] brings the schema from version i to i+1. Append only; never
// edit a released step. Plain SQL: in PostgreSQL BLOB reads BYTEA.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE sequences (
	name  TEXT PRIMARY KEY,
	value BIGINT NOT NULL
);
CREATE TABLE domains (
	name       TEXT PRIMARY KEY,
	created_at BIGINT NOT NULL
);
CREATE TABLE accounts (
	id               BIGINT PRIMARY KEY,
	email            TEXT NOT NULL UNIQUE,
	domain           TEXT NOT NULL REFERENCES domains(name),
	quota_bytes      BIGINT NOT NULL,
	used_bytes       BIGINT NOT NULL,
	save_sent        SMALLINT NOT NULL,
	password_hash    TEXT NOT NULL,
	scram_salt       BLOB,
	scram_iterations BIGINT NOT NULL,
	scram_stored_key BLOB,
	scram_server_key BLOB,
	created_at       BIGINT NOT NULL
);
CREATE INDEX accounts_domain ON accounts(domain);
CREATE TABLE aliases (
	address    TEXT PRIMARY KEY,
	domain     TEXT NOT NULL REFERENCES domains(name),
	targets    TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX aliases_domain ON aliases(domain);
CREATE TABLE mailboxes (
	id             BIGINT PRIMARY KEY,
	account_id     BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	special_use    TEXT NOT NULL,
	subscribed     SMALLINT NOT NULL,
	uid_validity   BIGINT NOT NULL,
	uid_next       BIGINT NOT NULL,
	highest_modseq BIGINT NOT NULL,
	messages       BIGINT NOT NULL,
	unseen         BIGINT NOT NULL,
	deleted        BIGINT NOT NULL,
	size           BIGINT NOT NULL,
	UNIQUE (account_id, name)
);
CREATE TABLE blobs (
	id         TEXT PRIMARY KEY,
	size       BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE messages (
	mailbox_id    BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           BIGINT NOT NULL,
	modseq        BIGINT NOT NULL,
	msg_id        BIGINT NOT NULL UNIQUE,
	blob_id       TEXT NOT NULL REFERENCES blobs(id),
	prefix        BLOB NOT NULL,
	size          BIGINT NOT NULL,
	flags         TEXT NOT NULL,
	internal_date BIGINT NOT NULL,
	internal_tz   BIGINT NOT NULL,
	structure     BLOB,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_blob ON messages(blob_id);
CREATE TABLE tombstones (
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid        BIGINT NOT NULL,
	modseq     BIGINT NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX tombstones_modseq ON tombstones(mailbox_id, modseq);
CREATE TABLE queue (
	id          TEXT PRIMARY KEY,
	from_addr   TEXT NOT NULL,
	blob_id     TEXT NOT NULL REFERENCES blobs(id),
	size        BIGINT NOT NULL,
	created_at  BIGINT NOT NULL,
	ret         TEXT NOT NULL,
	env_id      TEXT NOT NULL,
	smtputf8    SMALLINT NOT NULL,
	body        TEXT NOT NULL,
	require_tls SMALLINT NOT NULL,
	held        SMALLINT NOT NULL,
	account_id  BIGINT NOT NULL
);
CREATE INDEX queue_blob ON queue(blob_id);
CREATE TABLE queue_recipients (
	queue_id     TEXT NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
	seq          BIGINT NOT NULL,
	address      TEXT NOT NULL,
	orcpt        TEXT NOT NULL,
	notify       TEXT NOT NULL,
	state        TEXT NOT NULL,
	attempts     BIGINT NOT NULL,
	next_attempt BIGINT NOT NULL,
	last_error   TEXT NOT NULL,
	PRIMARY KEY (queue_id, seq)
);
`,
	// 2: small blobs inline (NULL: the blob is a file in blobs/).
	`ALTER TABLE blobs ADD COLUMN data BLOB;`,
	// 3: full-text index (fts.go). blobs.text_doc: NULL = not indexed yet,
	// 0 = indexed without text (no message uses the blob), > 0 = rowid of
	// its row in text_fts. SQLite only (FTS5); PostgreSQL would use
	// pg_trgm over a plain table.
	`
ALTER TABLE blobs ADD COLUMN text_doc BIGINT;
CREATE INDEX blobs_text_pending ON blobs(id) WHERE text_doc IS NULL;
CREATE INDEX blobs_text_doc ON blobs(text_doc) WHERE text_doc IS NOT NULL;
CREATE VIRTUAL TABLE text_fts USING fts5(hdr, body, tokenize = 'trigram case_sensitive 1');
CREATE TRIGGER blobs_text_gone AFTER DELETE ON blobs WHEN old.text_doc > 0 BEGIN
	DELETE FROM text_fts WHERE rowid = old.text_doc;
END;
INSERT INTO sequences (name, value) VALUES ('textdoc', 0);
`,
	// 4: per-account POP3 maildrop: a JSON array of mailbox names, NULL =
	// the server's default.
	`ALTER TABLE accounts ADD COLUMN pop3_maildrop TEXT;`,
	// 5: outbound delivery: the host that gave a recipient's last reply,
	// and whether its "delayed" DSN went out.
	`
ALTER TABLE queue_recipients ADD COLUMN remote_mta TEXT NOT NULL DEFAULT '';
ALTER TABLE queue_recipients ADD COLUMN delay_notified SMALLINT NOT NULL DEFAULT 0;
`,
}

// Sequence names in the sequences table.
const (
	seqAccount     = "account"
	seqMailbox     = "mailbox"
	seqMessage     = "message"     // global message id (POP3 UID); seeded with the clock
	seqUIDValidity = "uidvalidity" // seeded with the clock, in seconds
	seqTextDoc     = "textdoc"     // rowids of text_fts (migration 3)
)

// migrate creates or upgrades the schema in one IMMEDIATE transaction, so
// that two processes opening a new directory at once do not race.
func (s *Store) migrate(ctx context.Context) (err error) {
	if _, err := s.wc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlstore: begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			s.wc.ExecContext(ctx, "ROLLBACK") //nolint:errcheck // already failing
			return
		}
		if _, err = s.wc.ExecContext(ctx, "COMMIT"); err != nil {
			err = fmt.Errorf("sqlstore: commit migration: %w", err)
		}
	}()
	if _, err := s.wc.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return err
	}
	var version int
	err = s.wc.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version)
	switch {
	case err == sql.ErrNoRows:
		version = 0
		if _, err := s.wc.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("sqlstore: database schema version %d is newer than this program (%d)", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if _, err := s.wc.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("sqlstore: migration %d: %w", v+1, err)
		}
		if v == 0 {
			if err := s.seedSequences(ctx); err != nil { // once, with the tables
				return err
			}
		}
		if _, err := s.wc.ExecContext(ctx, `UPDATE schema_version SET version = `+strconv.Itoa(v+1)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) seedSequences(ctx context.Context) error {
	now := s.now()
	seeds := map[string]int64{
		seqAccount:     0,
		seqMailbox:     0,
		seqMessage:     now.UnixMicro(),
		seqUIDValidity: now.Unix() & 0x7fffffff,
	}
	for name, v := range seeds {
		if _, err := s.wc.ExecContext(ctx, `INSERT INTO sequences (name, value) VALUES (?, ?)`, name, v); err != nil {
			return err
		}
	}
	return nil
}
