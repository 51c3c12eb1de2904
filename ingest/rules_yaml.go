package ingest

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// What each schema type of a rules file is, in the words of the file
// (gopkg.in/yaml.v3 names the Go types, which mean nothing to its author).
var rulesYAMLTypes = map[string]string{
	"ingest.rulesFileYAML": "a map with a rules key",
	"[]ingest.ruleYAML":    "a list of rules",
	"ingest.ruleYAML":      "a rule (a map with job, labels and ttl)",
	"map[string]string":    "a map of label names to regexes",
	"string":               "a single value",
	"*string":              "a single value",
}

// Where an unknown field was found, by the type yaml.v3 names.
var rulesYAMLFields = map[string]string{
	"ingest.rulesFileYAML": "at the top level (the file has one key, rules)",
	"ingest.ruleYAML":      "in a rule (a rule has job, labels and ttl)",
}

// YAML's names of its node kinds, as yaml.v3 writes their tags.
var yamlKinds = map[string]string{
	"!!str": "a string", "!!int": "a number", "!!float": "a number", "!!bool": "a boolean",
	"!!seq": "a list", "!!map": "a map", "!!null": "nothing",
}

var (
	yamlUnknownField = regexp.MustCompile("^(line \\d+): field (.+) not found in type (\\S+)$")
	yamlWrongKind    = regexp.MustCompile("^(line \\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)$")
)

// rulesYAMLError rewrites a decoding error of a rules file in YAML terms,
// keeping yaml.v3's line numbers: "line 4: unknown field "extra" in a rule
// (a rule has job, labels and ttl)" instead of a Go type name. Errors it
// does not recognise (syntax errors, already in YAML terms) pass through.
func rulesYAMLError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = rulesYAMLMessage(m)
	}
	return errors.New(strings.Join(msgs, "; "))
}

func rulesYAMLMessage(m string) string {
	if p := yamlUnknownField.FindStringSubmatch(m); p != nil {
		if where, ok := rulesYAMLFields[p[3]]; ok {
			return fmt.Sprintf("%s: unknown field %q %s", p[1], p[2], where)
		}
	}
	if p := yamlWrongKind.FindStringSubmatch(m); p != nil {
		want, okWant := rulesYAMLTypes[p[4]]
		got, okGot := yamlKinds[p[2]]
		if okWant && okGot {
			if p[3] != "" {
				got += fmt.Sprintf(" (%s)", p[3])
			}
			return fmt.Sprintf("%s: want %s, got %s", p[1], want, got)
		}
	}
	return m
}
