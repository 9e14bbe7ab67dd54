package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"pillarbox/internal/addr"
	"pillarbox/internal/config"
	"pillarbox/internal/store"
)

// canonicalAlias parses an alias address: "local@domain" or "@domain"
// (the domain's catch-all).
func canonicalAlias(s string) (string, error) {
	if d, ok := strings.CutPrefix(s, "@"); ok {
		dom, err := addr.ParseDomain(d)
		if err != nil {
			return "", fmt.Errorf("bad catch-all %q: %w", s, err)
		}
		return "@" + dom, nil
	}
	return canonicalEmail(s)
}

func (c *cli) aliasCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alias",
		Short: "Manage aliases (forwarding addresses, catch-alls)",
		Long: `Manage aliases. An alias maps an address of a local domain to one or more
targets: local accounts, other aliases, or external addresses (queued for
outbound delivery). "@domain" is the domain's catch-all: it receives mail for
every address of the domain that is neither an account nor an alias.
Subaddresses need no alias: user+tag@domain reaches user@domain.`,
		Example: `  pillarbox alias add info@example.com alice@example.com bob@example.com
  pillarbox alias add @example.com alice@example.com      # catch-all
  pillarbox alias add fwd@example.com someone@elsewhere.net
  pillarbox alias list
  pillarbox alias remove info@example.com`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "add ADDRESS TARGET...",
		Short: "Create an alias (refused when the address is already an alias or an account)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := canonicalAlias(args[0])
			if err != nil {
				return err
			}
			var targets []string
			for _, t := range args[1:] {
				ct, err := canonicalEmail(t)
				if err != nil {
					return fmt.Errorf("target: %w", err)
				}
				targets = append(targets, ct)
			}
			return c.withStore(func(st store.Store, _ *config.Config) error {
				ctx := cmd.Context()
				if _, err := st.Domain(ctx, domainOf(a)); err != nil {
					return notFound(err, "local domain "+domainOf(a))
				}
				if err := st.AddAlias(ctx, a, targets); err != nil {
					return exists(err, "address "+a+" (as an alias or an account)")
				}
				c.out("added alias %s -> %s\n", a, strings.Join(targets, ", "))
				return nil
			})
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List aliases and their targets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(func(st store.Store, _ *config.Config) error {
				als, err := st.Aliases(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ADDRESS\tTARGETS")
				for _, a := range als {
					fmt.Fprintf(tw, "%s\t%s\n", a.Address, strings.Join(a.Targets, ", "))
				}
				return tw.Flush()
			})
		},
	}, &cobra.Command{
		Use:   "remove ADDRESS",
		Short: "Delete an alias",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := canonicalAlias(args[0])
			if err != nil {
				return err
			}
			return c.withStore(func(st store.Store, _ *config.Config) error {
				if err := st.RemoveAlias(cmd.Context(), a); err != nil {
					return notFound(err, "alias "+a)
				}
				c.out("removed alias %s\n", a)
				return nil
			})
		},
	})
	return cmd
}

func (c *cli) queueCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Inspect and manage the outbound queue",
		Long: `Inspect and manage the outbound queue: messages accepted for remote recipients
(submission, or aliases forwarding out). Outbound delivery itself comes in a
later release; until then queued messages wait here.`,
		Example: `  pillarbox queue list
  pillarbox queue show 01J...
  pillarbox queue hold 01J...      # keep it from being delivered
  pillarbox queue release 01J...
  pillarbox queue drop 01J...      # delete it without a bounce`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List queued messages: id, sender, recipients and their state, size, age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(func(st store.Store, _ *config.Config) error {
				items, err := st.QueueItems(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tFROM\tRECIPIENTS\tSIZE\tAGE")
				now := time.Now()
				for _, q := range items {
					var rs []string
					for _, r := range q.Recipients {
						rs = append(rs, r.Address+" ("+r.State+")")
					}
					id := q.ID
					if q.Held {
						id += " [held]"
					}
					fmt.Fprintf(tw, "%s\t<%s>\t%s\t%s\t%s\n", id, q.From, strings.Join(rs, ", "),
						formatSize(q.Size), now.Sub(q.CreatedAt).Round(time.Second))
				}
				return tw.Flush()
			})
		},
	}, &cobra.Command{
		Use:   "show ID",
		Short: "Show one queued message with per-recipient state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(func(st store.Store, _ *config.Config) error {
				q, err := st.QueueItem(cmd.Context(), args[0])
				if err != nil {
					return notFound(err, "queue item "+args[0])
				}
				c.printQueueItem(q)
				return nil
			})
		},
	}, c.queueOpCmd("hold", "Hold a queued message (no delivery attempts until released)",
		func(cmd *cobra.Command, st store.Store, id string) error {
			return st.SetQueueHeld(cmd.Context(), id, true)
		}),
		c.queueOpCmd("release", "Release a held message",
			func(cmd *cobra.Command, st store.Store, id string) error {
				return st.SetQueueHeld(cmd.Context(), id, false)
			}),
		c.queueOpCmd("drop", "Delete a queued message (no bounce is sent)",
			func(cmd *cobra.Command, st store.Store, id string) error {
				return st.DeleteQueueItem(cmd.Context(), id)
			}))
	return cmd
}

func (c *cli) queueOpCmd(name, short string, op func(*cobra.Command, store.Store, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   name + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(func(st store.Store, _ *config.Config) error {
				if err := op(cmd, st, args[0]); err != nil {
					return notFound(err, "queue item "+args[0])
				}
				c.out("%s: %s\n", name, args[0])
				return nil
			})
		},
	}
}

func (c *cli) printQueueItem(q store.QueueItem) {
	c.out("ID:       %s\n", q.ID)
	c.out("From:     <%s>\n", q.From)
	c.out("Created:  %s\n", q.CreatedAt.Format(time.RFC3339))
	c.out("Size:     %s (%d bytes)\n", formatSize(q.Size), q.Size)
	c.out("Held:     %v\n", q.Held)
	if q.AccountID != 0 {
		c.out("Account:  %d\n", q.AccountID)
	}
	c.out("Options:  ret=%s envid=%s body=%s smtputf8=%v requiretls=%v\n",
		orDash(q.Ret), orDash(q.EnvID), orDash(q.Body), q.SMTPUTF8, q.RequireTLS)
	c.out("Blob:     %s\n", q.BlobID)
	c.out("Recipients:\n")
	for _, r := range q.Recipients {
		c.out("  %s  state=%s attempts=%d", r.Address, r.State, r.Attempts)
		if r.Notify != "" {
			c.out(" notify=%s", r.Notify)
		}
		if r.ORcpt != "" {
			c.out(" orcpt=%s", r.ORcpt)
		}
		if !r.NextAttempt.IsZero() {
			c.out(" next=%s", r.NextAttempt.Format(time.RFC3339))
		}
		if r.LastError != "" {
			c.out(" last-error=%q", r.LastError)
		}
		c.out("\n")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
