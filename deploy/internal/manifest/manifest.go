// Package manifest holds what the tests of the Kubernetes manifests and of
// the Helm chart share: strict decoding of YAML documents as the API
// server decodes them, and the flags the pushring binary knows.
package manifest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

var separator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// SplitDocuments splits a multi-document YAML file on its "---" lines and
// drops documents that hold nothing but comments and blank lines.
func SplitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, doc := range separator.Split(string(data), -1) {
		if hasContent(doc) {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

func hasContent(doc string) bool {
	for line := range strings.Lines(doc) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return true
		}
	}
	return false
}

// DecodeStrict decodes YAML into v as the API server would: duplicate keys,
// unknown fields and field names in the wrong case are errors.
func DecodeStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("strict decoding: %w", errors.Join(strictErrs...))
	}
	return nil
}

// ModuleRoot walks up from dir to pushring's module, past deploy/'s own
// go.mod.
func ModuleRoot(dir string) (string, error) {
	for {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(mod), "module github.com/pushring/pushring\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no pushring go.mod above " + dir)
		}
		dir = parent
	}
}

// HelpFlags builds pushring from the module at root into dir and returns
// the flag names its --help lists.
func HelpFlags(ctx context.Context, root, dir string) (map[string]bool, error) {
	bin := filepath.Join(dir, "pushring")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/pushring")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/pushring: %w\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	help := exec.CommandContext(ctx, bin, "--help")
	help.Stdout, help.Stderr = &stdout, &stderr
	if err := help.Run(); err != nil {
		return nil, fmt.Errorf("pushring --help: %w\n%s", err, stderr.String())
	}
	flags := ParseHelp(stdout.String())
	if len(flags) == 0 {
		return nil, fmt.Errorf("found no flags in the output of pushring --help:\n%s", stdout.String())
	}
	return flags, nil
}

// ParseHelp returns the flag names of a usage text, from the lines that
// start (after indentation) with a dash: Go's "  -name type", and
// kingpin-style "  -h, --[no-]help" and "  --name=VALUE". Descriptions that
// merely mention a flag do not count.
func ParseHelp(text string) map[string]bool {
	flags := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "-") {
			continue
		}
		for tok := range strings.SplitSeq(line, ", ") {
			if !strings.HasPrefix(tok, "-") {
				break
			}
			name := strings.TrimPrefix(strings.TrimLeft(tok, "-"), "[no-]")
			if i := strings.IndexAny(name, " =\t"); i >= 0 {
				name = name[:i]
			}
			if name != "" {
				flags[name] = true
			}
		}
	}
	return flags
}
