// Command loadtest drives a Pushgateway-compatible target (pushring, the
// real Pushgateway, anything at a URL) with a simulated fleet of
// client_golang pushers and checks that every pushed group is exposed
// exactly once with its last values. See loadtest/doc.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pushring/pushring/loadtest"
)

// errCheckFailed makes the exit status non-zero when -check found problems.
var errCheckFailed = errors.New("completeness check failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// run parses args, runs the harness and writes the report to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := loadtest.DefaultConfig()
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs)
	asJSON := fs.Bool("json", false, "write the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sum, err := loadtest.Run(ctx, cfg, logger, stderr)
	if len(sum.Runs) > 0 {
		if werr := write(stdout, sum, *asJSON); werr != nil {
			return errors.Join(err, werr)
		}
	}
	if err != nil {
		return err
	}
	return checkVerdict(sum)
}

func write(w io.Writer, sum loadtest.Summary, asJSON bool) error {
	if asJSON {
		return loadtest.WriteJSON(w, sum)
	}
	return loadtest.WriteTable(w, sum)
}

// checkVerdict fails the command when any run's check failed.
func checkVerdict(sum loadtest.Summary) error {
	for _, r := range sum.Runs {
		if r.Check != nil && !r.Check.OK {
			return fmt.Errorf("%s: %w", r.Target, errCheckFailed)
		}
	}
	return nil
}
