// Command httpserver is a peer for the benchmarks: StopFlow and DescribeFlow on the AWS
// REST-JSON wire, written the ordinary Go way with net/http and encoding/json (no framework),
// the flows in a map guarded by a sync.RWMutex (package flows).
//
// POST /stop-flow {"flowName": ...} -> 200 {"flowArn":...,"flowStatus":"Suspended"};
// POST /describe-flow {"flowName": ...} -> 200 with the flow as its seed entry gave it.
// Errors carry the HTTP status of appflowd's error table, x-amzn-ErrorType and
// {"message": ...}; every reply has Content-Type application/json and x-amzn-RequestId (a
// random UUID). Same semantics as appflowd, including its door's refusals:
// SerializationException for a body that is not UTF-8 JSON, not an object, or whose flowName
// is not a string; 413 past 1 MiB; 404 UnknownOperationException; 405
// MethodNotAllowedException. Idle keep-alive connections are closed after 30 s.
//
//	httpserver --port 0 --flows FILE
//
// Prints "go-net-http listening: port=N flows=M" on stderr when ready; SIGTERM or SIGINT stops
// it (exit 0). A bad seed file exits 2, a port in use exits 1.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"appflowpeer/flows"
)

const (
	who     = "go-net-http"
	maxBody = 1 << 20 // appflowd's default --max-request-bytes
)

// seedFlow is what DescribeFlow answers of a flow's seed entry (a CreateFlow request).
type seedFlow struct {
	Description               string            `json:"description,omitempty"`
	KmsArn                    string            `json:"kmsArn,omitempty"`
	TriggerConfig             json.RawMessage   `json:"triggerConfig"`
	SourceFlowConfig          json.RawMessage   `json:"sourceFlowConfig"`
	DestinationFlowConfigList json.RawMessage   `json:"destinationFlowConfigList"`
	Tasks                     json.RawMessage   `json:"tasks"`
	Tags                      map[string]string `json:"tags"`
	MetadataCatalogConfig     json.RawMessage   `json:"metadataCatalogConfig,omitempty"`
}

type describeFlowResponse struct {
	FlowArn                   string            `json:"flowArn"`
	Description               string            `json:"description,omitempty"`
	FlowName                  string            `json:"flowName"`
	KmsArn                    string            `json:"kmsArn,omitempty"`
	FlowStatus                string            `json:"flowStatus"`
	TriggerConfig             json.RawMessage   `json:"triggerConfig"`
	CreatedAt                 float64           `json:"createdAt"`
	LastUpdatedAt             float64           `json:"lastUpdatedAt"`
	CreatedBy                 string            `json:"createdBy"`
	LastUpdatedBy             string            `json:"lastUpdatedBy"`
	Tags                      map[string]string `json:"tags"`
	SourceFlowConfig          json.RawMessage   `json:"sourceFlowConfig"`
	DestinationFlowConfigList json.RawMessage   `json:"destinationFlowConfigList"`
	Tasks                     json.RawMessage   `json:"tasks"`
	MetadataCatalogConfig     json.RawMessage   `json:"metadataCatalogConfig,omitempty"`
	SchemaVersion             int64             `json:"schemaVersion"`
}

type stopFlowResponse struct {
	FlowArn    string `json:"flowArn"`
	FlowStatus string `json:"flowStatus"`
}

// flowNameRequest is the body of both operations.
type flowNameRequest struct {
	FlowName *string `json:"flowName"`
}

type server struct {
	flows     *flows.Table
	createdBy string
}

func requestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func reply(w http.ResponseWriter, status int, v any) {
	// Messages quote what the caller sent: no HTML escaping of <, > and &, as appflowd.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h["x-amzn-RequestId"] = []string{requestID()} // as AWS spells it, not canonicalized
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func replyError(w http.ResponseWriter, e *flows.Error) {
	w.Header()["x-amzn-ErrorType"] = []string{e.Type}
	reply(w, e.HTTPStatus, struct {
		Message string `json:"message"`
	}{e.Message})
}

// kind names a JSON value's type as appflowd's messages do, from encoding/json's name of it.
func kind(v string) string {
	switch {
	case v == "object" || v == "array":
		return "an " + v
	case v == "bool":
		return "a boolean"
	case strings.HasPrefix(v, "number"):
		return "a number"
	}
	return "a " + v
}

// decode reads a request body: no body is an empty object; anything but a JSON object, or a
// flowName that is not a string or holds a NUL, is a SerializationException.
func decode(body []byte) (*flowNameRequest, *flows.Error) {
	req := &flowNameRequest{}
	body = bytes.Trim(body, " \t\r\n")
	if len(body) == 0 {
		return req, nil
	}
	if !utf8.Valid(body) {
		return nil, flows.Errorf("SerializationException",
			"the request body is not valid JSON: it is not UTF-8")
	}
	if err := json.Unmarshal(body, req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return nil, flows.Errorf("SerializationException",
				"the request body must be a JSON object, not %s", kind(te.Value))
		}
		if errors.As(err, &te) {
			return nil, flows.Errorf("SerializationException",
				"member %s must be a string, not %s", te.Field, kind(te.Value))
		}
		return nil, flows.Errorf("SerializationException",
			"the request body is not valid JSON: %v", err)
	}
	if string(body) == "null" {
		return nil, flows.Errorf("SerializationException",
			"the request body must be a JSON object, not null")
	}
	if req.FlowName != nil && strings.IndexByte(*req.FlowName, 0) >= 0 {
		return nil, flows.Errorf("SerializationException", "the request body is not valid "+
			`JSON: a string holds \u0000, which appflowd does not accept`)
	}
	return req, nil
}

// operation serves one POST route: the body read (up to maxBody) and decoded, then op.
func operation(path string, op func(*flowNameRequest) (any, *flows.Error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			replyError(w, flows.Errorf("MethodNotAllowedException", "%s takes POST only", path))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				replyError(w, flows.TooLarge(maxBody))
				return
			}
			return // the client went away
		}
		req, e := decode(body)
		if e == nil {
			var resp any
			if resp, e = op(req); e == nil {
				reply(w, http.StatusOK, resp)
				return
			}
		}
		replyError(w, e)
	}
}

func (s *server) stopFlow(req *flowNameRequest) (any, *flows.Error) {
	arn, e := s.flows.Stop(req.FlowName)
	if e != nil {
		return nil, e
	}
	return stopFlowResponse{FlowArn: arn, FlowStatus: flows.Suspended.String()}, nil
}

func (s *server) describeFlow(req *flowNameRequest) (any, *flows.Error) {
	f, st, e := s.flows.Describe(req.FlowName)
	if e != nil {
		return nil, e
	}
	d := f.Detail.(*seedFlow)
	at := float64(f.CreatedAt.UnixMilli()) / 1000
	return describeFlowResponse{
		FlowArn:                   s.flows.ARN(f.Name),
		Description:               d.Description,
		FlowName:                  f.Name,
		KmsArn:                    d.KmsArn,
		FlowStatus:                st.String(),
		TriggerConfig:             d.TriggerConfig,
		CreatedAt:                 at,
		LastUpdatedAt:             at,
		CreatedBy:                 s.createdBy,
		LastUpdatedBy:             s.createdBy,
		Tags:                      d.Tags,
		SourceFlowConfig:          d.SourceFlowConfig,
		DestinationFlowConfigList: d.DestinationFlowConfigList,
		Tasks:                     d.Tasks,
		MetadataCatalogConfig:     d.MetadataCatalogConfig,
		SchemaVersion:             1,
	}, nil
}

func seedDetail(f *flows.Flow) (any, error) {
	d := &seedFlow{}
	if err := json.Unmarshal(f.Seed, d); err != nil {
		return nil, err
	}
	if d.Tags == nil {
		d.Tags = map[string]string{}
	}
	return d, nil
}

func main() {
	cfg := flows.ParseFlags(who)
	table, err := flows.Load(cfg.Flows, flows.Options{Who: who, Region: cfg.Region,
		Account: cfg.Account, Detail: seedDetail})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(2)
	}
	s := &server{flows: table, createdBy: "arn:aws:iam::" + cfg.Account + ":root"}
	mux := http.NewServeMux()
	mux.Handle("/stop-flow", operation("/stop-flow", s.stopFlow))
	mux.Handle("/describe-flow", operation("/describe-flow", s.describeFlow))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		replyError(w, flows.Errorf("UnknownOperationException", "no operation at %s: this "+
			"server serves POST /stop-flow and POST /describe-flow", r.URL.Path))
	})

	lis, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot listen on %s:%d: %v\n", who, cfg.Host, cfg.Port, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, IdleTimeout: 30 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(os.Stderr, "%s listening: port=%d flows=%d\n", who,
		lis.Addr().(*net.TCPAddr).Port, table.Len())
	if err := srv.Serve(lis); err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(1)
	}
	<-stopped
}
