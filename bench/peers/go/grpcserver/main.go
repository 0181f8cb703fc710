// Command grpcserver is a peer for the benchmarks: StopFlow and DescribeFlow of
// appflow.v1.AppFlowService, written the ordinary Go way with grpc-go: code generated from
// proto/appflow/v1/*.proto by protoc-gen-go and protoc-gen-go-grpc (bench/peers/go/build.sh),
// grpc.NewServer() with its default options, and the flows in a map guarded by a
// sync.RWMutex (package flows).
//
// Same semantics as appflowd: the same validation, state machine, gRPC codes and messages,
// and grpc-status-details-bin carrying a google.rpc.Status whose ErrorInfo.reason is the AWS
// error type. DescribeFlow answers from each flow's seed entry, read once at start-up into a
// DescribeFlowResponse (AWS JSON to protobuf: the proto's json_names are AWS's member names,
// so only enum spellings and epoch-second times need converting).
//
//	grpcserver --port 0 --flows FILE
//
// Prints "grpc-go listening: port=N flows=M" on stderr when ready; SIGTERM or SIGINT stops it
// (exit 0). A bad seed file exits 2, a port in use exits 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "appflowpeer/appflowpb"
	"appflowpeer/flows"
)

const who = "grpc-go"

type server struct {
	pb.UnimplementedAppFlowServiceServer
	flows *flows.Table
}

// grpcError is e as a gRPC status with google.rpc.ErrorInfo{reason: AWS type} in its details.
func grpcError(e *flows.Error) error {
	st, err := status.New(codes.Code(e.GRPCCode), e.Message).WithDetails(
		&errdetails.ErrorInfo{Reason: e.Type, Domain: flows.Domain})
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return st.Err()
}

// checkString is what appflowd's gRPC decoder refuses before the service sees a request: a
// string that is not UTF-8 (proto2 strings are not checked by protobuf-go), or holds a NUL.
func checkString(field string, s *string) *flows.Error {
	switch {
	case s == nil:
		return nil
	case !utf8.ValidString(*s):
		return flows.Errorf("SerializationException", "field %s is not valid UTF-8", field)
	case strings.IndexByte(*s, 0) >= 0:
		return flows.Errorf("SerializationException",
			"field %s contains a NUL byte, which no AppFlow string may hold", field)
	}
	return nil
}

func (s *server) StopFlow(ctx context.Context, req *pb.StopFlowRequest) (*pb.StopFlowResponse, error) {
	if e := checkString("flow_name", req.FlowName); e != nil {
		return nil, grpcError(e)
	}
	arn, e := s.flows.Stop(req.FlowName)
	if e != nil {
		return nil, grpcError(e)
	}
	return &pb.StopFlowResponse{FlowArn: &arn, FlowStatus: pb.FlowStatus_FLOW_STATUS_SUSPENDED.Enum()}, nil
}

func (s *server) DescribeFlow(ctx context.Context, req *pb.DescribeFlowRequest) (*pb.DescribeFlowResponse, error) {
	if e := checkString("flow_name", req.FlowName); e != nil {
		return nil, grpcError(e)
	}
	f, st, e := s.flows.Describe(req.FlowName)
	if e != nil {
		return nil, grpcError(e)
	}
	d := f.Detail.(*pb.DescribeFlowResponse) // never changed after loading: shared, not copied
	return &pb.DescribeFlowResponse{
		FlowArn:                   d.FlowArn,
		Description:               d.Description,
		FlowName:                  d.FlowName,
		KmsArn:                    d.KmsArn,
		FlowStatus:                pb.FlowStatus(st).Enum(),
		TriggerConfig:             d.TriggerConfig,
		CreatedAt:                 d.CreatedAt,
		LastUpdatedAt:             d.LastUpdatedAt,
		CreatedBy:                 d.CreatedBy,
		LastUpdatedBy:             d.LastUpdatedBy,
		Tags:                      d.Tags,
		SourceFlowConfig:          d.SourceFlowConfig,
		DestinationFlowConfigList: d.DestinationFlowConfigList,
		Tasks:                     d.Tasks,
		MetadataCatalogConfig:     d.MetadataCatalogConfig,
		SchemaVersion:             d.SchemaVersion,
	}, nil
}

// describe makes a flow's DescribeFlowResponse from its seed entry (its status aside, which
// DescribeFlow reads from the table).
func describe(cfg flows.Config) func(f *flows.Flow) (any, error) {
	conv := newConverter()
	return func(f *flows.Flow) (any, error) {
		resp := &pb.DescribeFlowResponse{}
		data, err := conv.protoJSON(resp.ProtoReflect().Descriptor(), f.Seed)
		if err != nil {
			return nil, err
		}
		// The seed entry is a CreateFlowRequest: members DescribeFlow has no field for
		// (clientToken) are dropped.
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, resp); err != nil {
			return nil, err
		}
		arn := "arn:aws:appflow:" + cfg.Region + ":" + cfg.Account + ":flow/" + f.Name
		by := "arn:aws:iam::" + cfg.Account + ":root"
		resp.FlowArn = &arn
		resp.FlowStatus = nil
		resp.CreatedAt = timestamppb.New(f.CreatedAt)
		resp.LastUpdatedAt = resp.CreatedAt
		resp.CreatedBy, resp.LastUpdatedBy = &by, &by
		resp.SchemaVersion = proto.Int64(1)
		return resp, nil
	}
}

// converter rewrites AWS JSON into protobuf's JSON mapping of the same message: an enum's AWS
// string becomes the value whose (appflow.v1.aws_value) it is, epoch seconds an RFC 3339 time.
type converter struct {
	enums map[protoreflect.FullName]map[string]string // enum -> AWS string -> value name
}

func newConverter() *converter {
	return &converter{enums: map[protoreflect.FullName]map[string]string{}}
}

func (c *converter) protoJSON(md protoreflect.MessageDescriptor, raw []byte) ([]byte, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(c.message(md, v))
}

func (c *converter) message(md protoreflect.MessageDescriptor, v any) any {
	obj, ok := v.(map[string]any)
	if !ok || md.FullName().Parent() == "google.protobuf" { // Struct, Value: as they are
		return v
	}
	for k, val := range obj {
		fd := md.Fields().ByJSONName(k)
		switch {
		case fd == nil:
		case fd.IsMap():
			if m, ok := val.(map[string]any); ok {
				for mk, mv := range m {
					m[mk] = c.value(fd.MapValue(), mv)
				}
			}
		case fd.IsList():
			if list, ok := val.([]any); ok {
				for i := range list {
					list[i] = c.value(fd, list[i])
				}
			}
		default:
			obj[k] = c.value(fd, val)
		}
	}
	return obj
}

func (c *converter) value(fd protoreflect.FieldDescriptor, v any) any {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		if s, ok := v.(string); ok {
			if name, ok := c.enum(fd.Enum())[s]; ok {
				return name
			}
		}
	case protoreflect.MessageKind:
		if fd.Message().FullName() == "google.protobuf.Timestamp" {
			if n, ok := v.(json.Number); ok {
				secs, err := strconv.ParseFloat(string(n), 64)
				if err == nil {
					return time.UnixMilli(int64(secs * 1000)).UTC().Format(time.RFC3339Nano)
				}
			}
			return v
		}
		return c.message(fd.Message(), v)
	}
	return v
}

func (c *converter) enum(ed protoreflect.EnumDescriptor) map[string]string {
	if m, ok := c.enums[ed.FullName()]; ok {
		return m
	}
	m := map[string]string{}
	values := ed.Values()
	for i := 0; i < values.Len(); i++ {
		ev := values.Get(i)
		if aws, _ := proto.GetExtension(ev.Options(), pb.E_AwsValue).(string); aws != "" {
			m[aws] = string(ev.Name())
		}
	}
	c.enums[ed.FullName()] = m
	return m
}

func main() {
	cfg := flows.ParseFlags(who)
	table, err := flows.Load(cfg.Flows, flows.Options{Who: who, Region: cfg.Region,
		Account: cfg.Account, Detail: describe(cfg)})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(2)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot listen on %s:%d: %v\n", who, cfg.Host, cfg.Port, err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	pb.RegisterAppFlowServiceServer(s, &server{flows: table})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		t := time.AfterFunc(2*time.Second, s.Stop) // calls still running after 2 s are cut
		s.GracefulStop()
		t.Stop()
	}()
	fmt.Fprintf(os.Stderr, "%s listening: port=%d flows=%d\n", who,
		lis.Addr().(*net.TCPAddr).Port, table.Len())
	if err := s.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(1)
	}
	<-stopped
}
