// Package flows holds the StopFlow and DescribeFlow rules shared by the Go peers (grpcserver,
// httpserver): the seed file, the name check, the state machine and the error model of
// appflowd (src/flows/service.c, src/flows/error.h), written the way a Go team would: a map
// guarded by a sync.RWMutex.
package flows

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// NameMax is the longest flowName, in bytes.
const NameMax = 256

// Domain is google.rpc.ErrorInfo's domain in gRPC errors.
const Domain = "appflow.amazonaws.com"

// [\w!@#.-] with \w ASCII letters, digits and _ (Go's \w is ASCII already).
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][\w!@#.-]+$`)

// Trigger is a flow's trigger type, numbered as the proto's TriggerType.
type Trigger int

// The proto's TriggerType numbers.
const (
	Scheduled Trigger = 1
	Event     Trigger = 2
	OnDemand  Trigger = 3
)

var triggers = map[string]Trigger{"Scheduled": Scheduled, "Event": Event, "OnDemand": OnDemand}

// Status is a flow's status, numbered as the proto's FlowStatus.
type Status int

// The proto's FlowStatus numbers.
const (
	Active     Status = 1
	Deprecated Status = 2
	Deleted    Status = 3
	Draft      Status = 4
	Errored    Status = 5
	Suspended  Status = 6
)

var statusNames = [...]string{Active: "Active", Deprecated: "Deprecated", Deleted: "Deleted",
	Draft: "Draft", Errored: "Errored", Suspended: "Suspended"}

// String is the status on the AWS wire ("Suspended").
func (s Status) String() string { return statusNames[s] }

// ProtoName is the status's proto enum name ("FLOW_STATUS_SUSPENDED").
func (s Status) ProtoName() string { return "FLOW_STATUS_" + strings.ToUpper(statusNames[s]) }

func parseStatus(s string) (Status, bool) {
	for i, n := range statusNames {
		if n != "" && n == s {
			return Status(i), true
		}
	}
	return 0, false
}

// Error is a failure a caller sees: its AWS type, HTTP status, gRPC code and message.
type Error struct {
	Type       string
	HTTPStatus int
	GRPCCode   uint32
	Message    string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// AWS error type -> HTTP status and gRPC code (src/flows/error.h).
var errorCodes = map[string]struct {
	http int
	grpc uint32
}{
	"ValidationException":           {400, 3},
	"SerializationException":        {400, 3},
	"UnsupportedOperationException": {400, 9},
	"ResourceNotFoundException":     {404, 5},
	"ConflictException":             {409, 10},
	"UnknownOperationException":     {404, 12},
	"MethodNotAllowedException":     {405, 12},
	"InternalServerException":       {500, 13},
}

// Errorf makes an Error of an AWS type from errorCodes.
func Errorf(awsType, format string, args ...any) *Error {
	c, ok := errorCodes[awsType]
	if !ok {
		panic("flows: unknown error type " + awsType)
	}
	return &Error{Type: awsType, HTTPStatus: c.http, GRPCCode: c.grpc,
		Message: fmt.Sprintf(format, args...)}
}

// TooLarge is the AWS door's refusal of a body over its limit: a ValidationException with
// HTTP 413, as appflowd's REQUEST_TOO_LARGE.
func TooLarge(limit int64) *Error {
	return &Error{Type: "ValidationException", HTTPStatus: 413, GRPCCode: 8,
		Message: fmt.Sprintf("The request body is over the limit of %d bytes", limit)}
}

// quoteMax is the most of a value a validation message quotes, escaped.
const quoteMax = 256

// quote is a value as validation messages quote it (af_escape): bytes outside printable
// ASCII, and the backslash, as \xNN; cut at quoteMax bytes, between escapes.
func quote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		plain := c >= 0x20 && c < 0x7f && c != '\\'
		need := 4
		if plain {
			need = 1
		}
		if b.Len()+need > quoteMax {
			break
		}
		if plain {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// CheckName is the flowName check of both operations; nil when the name is valid. A request
// without flowName (nil; a JSON null too) is "Value null"; a name is checked against the
// model's pattern and length, and each failure is reported, as AWS does ("2 validation errors
// detected: ...; ...").
func CheckName(flowName *string) *Error {
	if flowName == nil {
		return Errorf("ValidationException", "1 validation error detected: Value null at "+
			"'flowName' failed to satisfy constraint: Member must not be null")
	}
	name := *flowName
	var failed []string
	if !nameRE.MatchString(name) {
		failed = append(failed, fmt.Sprintf("Value '%s' at 'flowName' failed to satisfy "+
			"constraint: Member must satisfy regular expression pattern: "+
			`[a-zA-Z0-9][\w!@#.-]+`, quote(name)))
	}
	if len(name) > NameMax {
		failed = append(failed, fmt.Sprintf("Value '%s' at 'flowName' failed to satisfy "+
			"constraint: Member must have length less than or equal to %d", quote(name),
			NameMax))
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return Errorf("ValidationException", "1 validation error detected: %s", failed[0])
	}
	return Errorf("ValidationException", "%d validation errors detected: %s", len(failed),
		strings.Join(failed, "; "))
}

// Flow is one flow of the table. Name, Trigger, Seed and Detail never change after loading;
// status changes under the table's lock.
type Flow struct {
	Name    string
	Trigger Trigger
	// Seed is the flow's entry in the seed file: its CreateFlow request in AWS JSON plus
	// flowStatus.
	Seed json.RawMessage
	// Detail is what a server made of Seed at load time (Options.Detail), for DescribeFlow.
	Detail    any
	CreatedAt time.Time
	status    Status
}

// Options configure a Table.
type Options struct {
	Who     string // the server's name, in log lines
	Region  string
	Account string
	// Detail, if set, is called once per seeded flow; its result is the flow's Detail.
	Detail func(f *Flow) (any, error)
}

// Table is the flows by name, safe for concurrent use.
type Table struct {
	mu        sync.RWMutex
	flows     map[string]*Flow
	arnPrefix string
	log       *log.Logger
}

// seedEntry is what loading needs of a seed entry.
type seedEntry struct {
	FlowName      *string `json:"flowName"`
	FlowStatus    *string `json:"flowStatus"`
	TriggerConfig *struct {
		TriggerType *string `json:"triggerType"`
	} `json:"triggerConfig"`
}

// Load reads the seed file: a JSON array of CreateFlow requests in AWS JSON plus flowStatus
// (README "The seed file"), of which StopFlow needs flowName, triggerConfig.triggerType and
// flowStatus.
func Load(path string, opts Options) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("%s: expected a JSON array of flows: %v", path, err)
	}
	t := &Table{
		flows:     make(map[string]*Flow, len(entries)),
		arnPrefix: fmt.Sprintf("arn:aws:appflow:%s:%s:flow/", opts.Region, opts.Account),
		log:       log.New(os.Stderr, opts.Who+": ", 0),
	}
	now := time.Now().Truncate(time.Millisecond)
	for i, raw := range entries {
		var e seedEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("%s: flow %d: %v", path, i, err)
		}
		if e.FlowName == nil || CheckName(e.FlowName) != nil {
			return nil, fmt.Errorf("%s: flow %d: invalid flowName", path, i)
		}
		name := *e.FlowName
		var trigger Trigger
		if e.TriggerConfig != nil && e.TriggerConfig.TriggerType != nil {
			trigger = triggers[*e.TriggerConfig.TriggerType]
		}
		if trigger == 0 {
			return nil, fmt.Errorf("%s: flow %d: invalid triggerConfig.triggerType", path, i)
		}
		var status Status
		var ok bool
		if e.FlowStatus != nil {
			status, ok = parseStatus(*e.FlowStatus)
		}
		if !ok {
			return nil, fmt.Errorf("%s: flow %d: invalid flowStatus", path, i)
		}
		if _, dup := t.flows[name]; dup {
			return nil, fmt.Errorf("%s: flow %d: duplicate flowName %s", path, i, name)
		}
		f := &Flow{Name: name, Trigger: trigger, Seed: raw, CreatedAt: now, status: status}
		if opts.Detail != nil {
			if f.Detail, err = opts.Detail(f); err != nil {
				return nil, fmt.Errorf("%s: flow %d: %v", path, i, err)
			}
		}
		t.flows[name] = f
	}
	return t, nil
}

// Len is the number of flows.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.flows)
}

// ARN is a flow's ARN.
func (t *Table) ARN(name string) string { return t.arnPrefix + name }

// Stop is StopFlow: an Active or Errored scheduled or event-triggered flow becomes Suspended; a
// Suspended one stays so. Returns the flow's ARN.
func (t *Table) Stop(flowName *string) (string, *Error) {
	// Most stops find the flow already Suspended: Describe's read lock is enough for those.
	f, st, err := t.Describe(flowName)
	if err != nil {
		return "", err
	}
	name := *flowName
	if f.Trigger == OnDemand {
		return "", Errorf("UnsupportedOperationException", "Flow %s is an on-demand flow: "+
			"StopFlow applies only to scheduled and event-triggered flows", name)
	}
	if st == Suspended {
		return t.ARN(name), nil
	}
	t.mu.Lock()
	st = f.status
	if st == Active || st == Errored {
		f.status = Suspended
	}
	t.mu.Unlock()
	switch st {
	case Active, Errored:
		t.log.Printf("info: flow %s: %s -> %s", name, st.ProtoName(), Suspended.ProtoName())
	case Suspended:
	default:
		return "", Errorf("ConflictException", "Flow %s is in %s state and cannot be stopped: "+
			"only Active or Errored flows can be", name, st)
	}
	return t.ARN(name), nil
}

// Describe is DescribeFlow: the flow and its status now.
func (t *Table) Describe(flowName *string) (*Flow, Status, *Error) {
	if err := CheckName(flowName); err != nil {
		return nil, 0, err
	}
	name := *flowName
	t.mu.RLock()
	f, ok := t.flows[name]
	var st Status
	if ok {
		st = f.status
	}
	t.mu.RUnlock()
	if !ok {
		return nil, 0, Errorf("ResourceNotFoundException", "Flow %s does not exist", name)
	}
	return f, st, nil
}

// Config is the command line both peers take:
// --port N --flows FILE [--host H] [--region R] [--account A].
type Config struct {
	Host    string
	Port    int
	Flows   string
	Region  string
	Account string
}

// ParseFlags reads Config from the command line; a bad one exits 2.
func ParseFlags(who string) Config {
	var c Config
	fs := flag.NewFlagSet(who, flag.ExitOnError)
	fs.StringVar(&c.Host, "host", "127.0.0.1", "address to listen on")
	fs.IntVar(&c.Port, "port", 0, "port to listen on; 0 picks a free one")
	fs.StringVar(&c.Flows, "flows", "", "seed file: a JSON array of flows (required)")
	fs.StringVar(&c.Region, "region", "us-east-1", "region of the flows' ARNs")
	fs.StringVar(&c.Account, "account", "000000000000", "account of the flows' ARNs")
	fs.Parse(os.Args[1:]) // ExitOnError: exits 2
	if c.Flows == "" || fs.NArg() > 0 || c.Port < 0 || c.Port > 65535 {
		fmt.Fprintf(os.Stderr, "%s: --flows FILE is required and --port must be 0-65535\n", who)
		os.Exit(2)
	}
	return c
}
