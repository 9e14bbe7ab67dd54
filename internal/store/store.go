// Package store defines Pillarbox's storage contract: domains, accounts,
// aliases, mailboxes, messages, flags, UID/MODSEQ bookkeeping, expunge
// tombstones, quotas, the outbound queue and the change feed.
//
// Invariants every backend keeps (checked by storetest.Run):
//   - A mailbox's UIDVALIDITY never changes while the mailbox exists; a
//     recreated mailbox (same name, new ID) gets a new, larger UIDVALIDITY.
//   - UIDs are assigned in increasing order and never reused in a mailbox.
//   - Every change to a mailbox (append, flag change, expunge) gets a MODSEQ
//     larger than every earlier one in that mailbox; HIGHESTMODSEQ is the
//     largest MODSEQ given out. Expunged UIDs leave tombstones carrying the
//     MODSEQ of the expunge, so QRESYNC can report VANISHED UIDs.
//   - A message's POP3 UID is fixed when it is first stored, survives
//     restarts, flag changes and moves, and is never given to another message.
//   - Message bytes are immutable: a message is Prefix (per-recipient header
//     lines such as Return-Path and Delivered-To) followed by a shared blob.
//     Flags, keywords and mailbox membership live in metadata only.
//   - Deliver is all-or-nothing and durable when it returns nil: the blob,
//     every mailbox entry and the queue item are on stable storage.
//
// Backends: sqlstore (embedded SQLite + blob files, the default). A later
// PostgreSQL + S3 backend implements the same interface and passes the same
// storetest suite.
package store

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Errors returned by every backend. Callers test with errors.Is.
var (
	ErrNotFound    = errors.New("store: not found")
	ErrExists      = errors.New("store: already exists")
	ErrOverQuota   = errors.New("store: over quota")
	ErrInvalidName = errors.New("store: invalid name")
	ErrModified    = errors.New("store: modified since")
	ErrClosed      = errors.New("store: closed")
	ErrNotEmpty    = errors.New("store: not empty")
)

// System flags (RFC 9051 2.3.2). Keywords are any other atom.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// Special-use attributes (RFC 6154).
const (
	SpecialSent    = `\Sent`
	SpecialDrafts  = `\Drafts`
	SpecialTrash   = `\Trash`
	SpecialJunk    = `\Junk`
	SpecialArchive = `\Archive`
	SpecialAll     = `\All`
	SpecialFlagged = `\Flagged`
)

// DefaultMailboxes are created with every account, in this order.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", ""},
	{"Sent", SpecialSent},
	{"Drafts", SpecialDrafts},
	{"Trash", SpecialTrash},
	{"Junk", SpecialJunk},
	{"Archive", SpecialArchive},
}

// Domain is a domain Pillarbox receives mail for.
type Domain struct {
	Name      string // lower-case ASCII (A-labels for IDN)
	CreatedAt time.Time
}

// Account is a mail user.
type Account struct {
	ID         int64
	Email      string // canonical: local part lower-cased, domain lower-case A-label
	QuotaBytes int64  // 0 = unlimited
	UsedBytes  int64  // sum of the sizes of all messages in all its mailboxes
	SaveSent   bool   // submission copies sent mail to Sent
	// POP3Maildrop names the mailboxes POP3 serves for this account, in
	// this order; nil means the server's default ([pop3] maildrop). The
	// mailboxes need not exist. See Store.SetPOP3Maildrop.
	POP3Maildrop []string
	CreatedAt    time.Time
}

// Credentials are the stored secrets of an account. Never a clear password.
type Credentials struct {
	PasswordHash string            // PHC string, argon2id
	SCRAMSHA256  *SCRAMCredentials // nil if unavailable
}

// SCRAMCredentials is what RFC 5802/7677 SCRAM-SHA-256 needs server side.
type SCRAMCredentials struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Alias maps an address ("user@domain", or "@domain" as the domain's
// catch-all) to one or more targets (local accounts or external addresses).
type Alias struct {
	Address   string
	Targets   []string
	CreatedAt time.Time
}

// Mailbox is a folder of one account. Names are UTF-8 with '/' as the
// hierarchy separator; "INBOX" is always spelled in upper case.
type Mailbox struct {
	ID            int64
	AccountID     int64
	Name          string
	SpecialUse    string // one of the Special* constants or ""
	Subscribed    bool
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64
	// Counts, kept exact by the backend.
	Messages int   // number of messages
	Unseen   int   // messages without \Seen
	Deleted  int   // messages with \Deleted
	Size     int64 // sum of message sizes (STATUS=SIZE)
}

// Message is one message in one mailbox.
type Message struct {
	MailboxID    int64
	UID          uint32
	ModSeq       uint64
	Flags        []string // system flags and keywords, sorted
	InternalDate time.Time
	Size         int64  // len(Prefix) + blob size: exactly the bytes Open returns
	POP3UID      string // stable, unique for the life of the message (printable ASCII 0x21-0x7E)
	// Structure is message.Part marshalled with MarshalBinary: the MIME tree
	// with byte offsets, ENVELOPE and BODYSTRUCTURE fields, computed once
	// when the message was stored. Filled by Message and by ListMessages
	// only when asked (it is the large part).
	Structure []byte
}

// FlagOp says how StoreFlags combines flags.
type FlagOp int

const (
	FlagAdd     FlagOp = iota // +FLAGS
	FlagRemove                // -FLAGS
	FlagReplace               // FLAGS
)

// FlagUpdate is the outcome of a flag change for one message.
type FlagUpdate struct {
	UID    uint32
	ModSeq uint64
	Flags  []string
}

// ExpungeSet names UIDs of one mailbox (Store.ExpungeMany).
type ExpungeSet struct {
	MailboxID int64
	UIDs      []uint32
}

// UIDPair maps a source UID to the destination UID of a COPY/MOVE.
type UIDPair struct{ Src, Dst uint32 }

// Recipient of a Deliver call that is stored locally.
type LocalRecipient struct {
	AccountID int64
	Mailbox   string   // mailbox name, e.g. "INBOX" ("" means INBOX); created if missing unless NoCreate
	Prefix    []byte   // header lines put before the shared blob (CRLF-terminated)
	Flags     []string // initial flags, e.g. \Seen for Sent copies
	// CheckQuota makes Deliver fail with ErrOverQuota when this message
	// would take the account over its quota (IMAP APPEND, import). SMTP
	// checks quota at RCPT time and leaves this false.
	CheckQuota bool
	// NoCreate makes Deliver fail with ErrNotFound (wrapped) when Mailbox
	// does not exist, instead of creating it: IMAP APPEND answers
	// NO [TRYCREATE] (RFC 9051 6.3.12). SMTP leaves it false.
	NoCreate bool
}

// Delivery is one accepted message: a blob shared by all recipients, the
// local mailbox entries and, for remote recipients, one queue item. It is
// committed atomically by Deliver.
type Delivery struct {
	// Blob holds the message bytes. Deliver reads it exactly once. If it
	// is an *os.File in the store's spool directory (see Spool), the
	// backend may rename it into place instead of copying.
	Blob         io.Reader
	InternalDate time.Time
	Local        []LocalRecipient
	Queue        *QueueItem // nil when there is no remote recipient
}

// DeliveryResult reports what Deliver stored.
type DeliveryResult struct {
	BlobID string
	Size   int64         // blob size
	Local  []LocalResult // one per Delivery.Local, in order
	Queue  *QueueItem    // the stored item, with ID
}

// LocalResult is the mailbox entry made for one local recipient.
type LocalResult struct {
	MailboxID   int64
	UIDValidity uint32
	UID         uint32
	ModSeq      uint64
}

// QueueItem is an outbound message waiting for delivery to remote recipients.
type QueueItem struct {
	ID         string // assigned by Deliver; stable, URL-safe
	From       string // envelope sender ("" for <>)
	Recipients []QueueRecipient
	BlobID     string // set by Deliver
	Size       int64
	CreatedAt  time.Time
	// DSN parameters (RFC 3461) and other envelope options.
	Ret        string // "FULL", "HDRS" or ""
	EnvID      string
	SMTPUTF8   bool
	Body       string // "7BIT", "8BITMIME", "BINARYMIME" or ""
	RequireTLS bool
	Held       bool
	// Account that submitted it (0 for relayed/forwarded mail).
	AccountID int64
}

// Recipient states in the queue.
const (
	RcptPending   = "pending"
	RcptDelivered = "delivered"
	RcptFailed    = "failed"
)

// QueueRecipient is one remote recipient of a queue item and its state.
type QueueRecipient struct {
	Address     string
	ORcpt       string // RFC 3461 ORCPT, e.g. "rfc822;user@example.com"
	Notify      string // RFC 3461 NOTIFY, e.g. "FAILURE,DELAY" or "NEVER"
	State       string // RcptPending, RcptDelivered, RcptFailed
	Attempts    int
	NextAttempt time.Time
	LastError   string // last reply or error text
	// RemoteMTA is the host that gave LastError ("" when no server
	// answered), for the Remote-MTA field of a DSN.
	RemoteMTA string
	// DelayNotified: a "delayed" DSN was sent for this recipient (it is
	// sent once).
	DelayNotified bool
}

// QueueWatcher is implemented by stores that can tell cheaply whether an
// administrator changed the queue (RetryQueue, SetQueueHeld), also from
// another process: the queue scheduler polls it and re-reads the queue
// when it moved. New items, recipient updates and deletions do not move
// it (the scheduler learns of those itself).
type QueueWatcher interface {
	QueueGeneration() (uint64, error)
}

// ChangeKind says what happened in a Change.
type ChangeKind int

const (
	ChangeAppend ChangeKind = iota + 1
	ChangeFlags
	ChangeExpunge
	ChangeMailbox // created, renamed, deleted or subscription changed
	// ChangeResync: something changed outside this process (the CLI
	// importing while the server runs). Re-read the state of every
	// selected mailbox of AccountID; AccountID 0 means any account (the
	// backend cannot tell which). MailboxID, UID, ModSeq and Flags are
	// zero. It is sent without closing the channel.
	ChangeResync
)

// TextField selects what SearchText looks in.
type TextField int

const (
	TextBody TextField = iota + 1 // the body: decoded text of the text/* parts (IMAP SEARCH BODY)
	TextAll                       // headers (decoded, RFC 2047) and body (IMAP SEARCH TEXT)
)

// Change is one event on the change feed.
type Change struct {
	Kind      ChangeKind
	AccountID int64
	MailboxID int64
	UID       uint32
	ModSeq    uint64
	Flags     []string // for ChangeAppend and ChangeFlags
}

// Store is the storage interface. All methods are safe for concurrent use,
// also by several processes on the same data directory (the CLI while the
// server runs).
type Store interface {
	// Domains.
	AddDomain(ctx context.Context, name string) error
	RemoveDomain(ctx context.Context, name string) error
	Domain(ctx context.Context, name string) (Domain, error)
	Domains(ctx context.Context) ([]Domain, error)

	// Accounts. CreateAccount also creates DefaultMailboxes; its domain
	// must exist. DeleteAccount removes its mailboxes and messages.
	CreateAccount(ctx context.Context, email string, cred Credentials, quotaBytes int64) (Account, error)
	DeleteAccount(ctx context.Context, email string) error
	Account(ctx context.Context, email string) (Account, error)
	AccountByID(ctx context.Context, id int64) (Account, error)
	Accounts(ctx context.Context) ([]Account, error)
	Credentials(ctx context.Context, email string) (Account, Credentials, error)
	SetCredentials(ctx context.Context, accountID int64, cred Credentials) error
	SetQuota(ctx context.Context, accountID int64, quotaBytes int64) error
	SetSaveSent(ctx context.Context, accountID int64, on bool) error
	// SetPOP3Maildrop sets Account.POP3Maildrop; nil or empty resets it to
	// nil (the server's default). Names are kept as given except that the
	// INBOX segment is spelled in upper case, as for mailboxes; an invalid
	// name gives ErrInvalidName; duplicates are dropped (the first stays).
	// The mailboxes need not exist. ErrNotFound for an unknown account.
	SetPOP3Maildrop(ctx context.Context, accountID int64, mailboxes []string) error

	// Aliases. Address is "local@domain" or "@domain"; its domain must exist.
	AddAlias(ctx context.Context, address string, targets []string) error
	RemoveAlias(ctx context.Context, address string) error
	Alias(ctx context.Context, address string) (Alias, error)
	Aliases(ctx context.Context) ([]Alias, error)

	// Mailboxes.
	Mailboxes(ctx context.Context, accountID int64) ([]Mailbox, error)
	Mailbox(ctx context.Context, accountID int64, name string) (Mailbox, error)
	MailboxByID(ctx context.Context, id int64) (Mailbox, error)
	CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (Mailbox, error)
	// DeleteMailbox removes the mailbox and its messages (tombstones are
	// dropped with it; a recreated mailbox gets a new UIDVALIDITY).
	// Children stay. INBOX cannot be deleted (ErrInvalidName).
	DeleteMailbox(ctx context.Context, id int64) error
	// RenameMailbox renames a mailbox and its children ("a" -> "b" also
	// renames "a/x" to "b/x"). Renaming INBOX moves its messages into a
	// new mailbox and leaves INBOX empty (RFC 9051 6.3.6).
	RenameMailbox(ctx context.Context, id int64, newName string) error
	SetSubscribed(ctx context.Context, id int64, on bool) error

	// Messages.
	Deliver(ctx context.Context, d *Delivery) (DeliveryResult, error)
	// DeliverBatch stores several deliveries atomically (all or none) and
	// in order: within a mailbox, UIDs follow the order of ds. Import and
	// IMAP MULTIAPPEND use it. Results are in the order of ds.
	DeliverBatch(ctx context.Context, ds []*Delivery) ([]DeliveryResult, error)
	// Messages lists a mailbox in UID order, UIDs >= fromUID.
	Messages(ctx context.Context, mailboxID int64, fromUID uint32, withStructure bool) ([]Message, error)
	Message(ctx context.Context, mailboxID int64, uid uint32) (Message, error)
	// OpenMessage returns the full message bytes (prefix + blob).
	OpenMessage(ctx context.Context, mailboxID int64, uid uint32) (MessageReader, error)
	// StoreFlags changes flags of the given UIDs. With unchangedSince > 0,
	// messages whose MODSEQ is greater are left alone and listed in failed
	// (RFC 7162 3.1.3). Messages whose flags do not change keep their MODSEQ
	// and are not in updated; UIDs that do not exist are ignored.
	StoreFlags(ctx context.Context, mailboxID int64, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (updated []FlagUpdate, failed []uint32, err error)
	// Expunge removes the given UIDs (those that exist) and returns them.
	Expunge(ctx context.Context, mailboxID int64, uids []uint32) (expunged []uint32, err error)
	// ExpungeMany removes the given UIDs (those that exist) of several
	// mailboxes in one atomic commit (all or none), with the same effects
	// as Expunge per mailbox (tombstones, MODSEQ, counts, used bytes,
	// change feed). It returns one ExpungeSet per input set, in order,
	// with the UIDs actually removed. A mailbox that does not exist makes
	// the whole call fail with ErrNotFound, removing nothing. POP3's
	// UPDATE state uses it (RFC 1939 6).
	ExpungeMany(ctx context.Context, sets []ExpungeSet) ([]ExpungeSet, error)
	// Copy copies messages to another mailbox of the same account,
	// keeping flags and internal date (new UIDs, new POP3 UIDs; ErrOverQuota
	// if the copies exceed the quota); Move also expunges the sources and
	// keeps their POP3 UIDs. Pairs are in source UID order.
	Copy(ctx context.Context, srcMailboxID int64, uids []uint32, dstMailboxID int64) ([]UIDPair, error)
	Move(ctx context.Context, srcMailboxID int64, uids []uint32, dstMailboxID int64) ([]UIDPair, error)
	// Vanished returns UIDs expunged with a MODSEQ > sinceModSeq (tombstones).
	Vanished(ctx context.Context, mailboxID int64, sinceModSeq uint64) ([]uint32, error)
	// ChangedSince returns messages whose MODSEQ > sinceModSeq.
	ChangedSince(ctx context.Context, mailboxID int64, sinceModSeq uint64) ([]Message, error)
	// SearchText returns, in increasing order, the UIDs of the mailbox's
	// messages whose decoded text (field) contains substr,
	// case-insensitively. Results are exact (no false positives);
	// messages not yet in the full-text index are read and checked
	// directly. The text is what message.ExtractText makes of the message
	// (headers unfolded and RFC 2047 decoded, text/* parts decoded to
	// UTF-8, HTML reduced to its text, attachments skipped, at most about
	// 1 MiB per message); for TextAll the per-recipient Prefix lines are
	// searched too. Case-insensitive means Unicode simple case folding
	// (strings.EqualFold's equivalence, message.Fold): no multi-rune
	// foldings such as "ß" = "ss". An empty substr matches every message.
	SearchText(ctx context.Context, mailboxID int64, field TextField, substr string) ([]uint32, error)

	// Outbound queue.
	QueueItems(ctx context.Context) ([]QueueItem, error)
	QueueItem(ctx context.Context, id string) (QueueItem, error)
	// UpdateQueueRecipients writes the state of the given recipients
	// (matched by Address) of item id.
	UpdateQueueRecipients(ctx context.Context, id string, rcpts []QueueRecipient) error
	SetQueueHeld(ctx context.Context, id string, held bool) error
	// RetryQueue makes the pending recipients of item id (of every item
	// when id is "") due now, and returns how many items it touched.
	// Held items stay held. ErrNotFound for an unknown id.
	RetryQueue(ctx context.Context, id string) (int, error)
	// DeleteQueueItem removes the item (and its blob once unreferenced).
	DeleteQueueItem(ctx context.Context, id string) error
	// OpenBlob opens a blob by ID (queue items refer to blobs).
	OpenBlob(ctx context.Context, blobID string) (MessageReader, error)

	// Subscribe returns the change feed of one account: every Change made
	// through this Store value after Subscribe returns, available from
	// Take by the time the call that made it has returned, in commit
	// order, except that a backend may publish a flag change (answered
	// before it is durable) ahead of earlier changes still being made
	// durable, even ahead of the append of the same message: keep flag
	// changes of unknown UIDs until their append comes. Publishing
	// never waits for subscribers; one that lets more than a few thousand
	// changes pile up gets them replaced by one Change with Kind 0 and
	// must resynchronise (re-read what it shows); so does every
	// subscriber when the Store closes.
	//
	// Changes committed by another process (or another Store value) on
	// the same data are not itemised: the backend notices them within
	// about a second while there are subscribers and sends every
	// subscriber one ChangeResync (AccountID 0 when it cannot tell the
	// account), after which the subscriber re-reads what it shows.
	// Several such commits in a row may give a single ChangeResync.
	Subscribe(accountID int64) Subscription

	// Close ends the Store; later calls return nil, other methods return
	// ErrClosed.
	Close() error
}

// Subscription is one subscriber's change feed (Store.Subscribe). An idle
// subscription costs little memory (no buffer until changes wait), so
// thousands of IMAP sessions in IDLE can each hold one.
type Subscription interface {
	// Ready receives a value (it has capacity 1) when changes wait for
	// Take. A value may be left over from changes already taken.
	Ready() <-chan struct{}
	// Take returns every change waiting, oldest first, or nil. A Change
	// with Kind 0 means changes were dropped: resynchronise. The
	// subscription goes on after it.
	Take() []Change
	// Close unsubscribes; Take returns nil afterwards. Calling it again
	// does nothing.
	Close()
}

// InMemory is implemented by a MessageReader whose bytes are all in
// memory (a small message kept inline by the backend): Bytes returns them
// as consecutive slices (the prefix, then the blob), to be read only and
// only until Close. Protocol code may use it to write the message without
// copying it through a buffer.
type InMemory interface {
	Bytes() [][]byte
}

// MessageReader gives random access to a message's bytes.
type MessageReader interface {
	io.ReaderAt
	io.Reader
	io.Closer
	Size() int64
}

// Spooler is implemented by backends that can adopt a spool file without
// copying it: the SMTP server writes DATA into a file from CreateSpool and
// passes that *os.File as Delivery.Blob. Deliver takes the whole file,
// from byte 0 to its size, whatever its offset. The caller closes and
// removes the file after Deliver returns (removing an adopted file is a
// no-op).
type Spooler interface {
	CreateSpool() (*os.File, error)
}
