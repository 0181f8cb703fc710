#include "client/client.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERROR_INFO_TYPE_URL "type.googleapis.com/google.rpc.ErrorInfo"

struct af_client {
  grpc_channel *channel;
  grpc_completion_queue *cq;
};

static grpc_channel_credentials *credentials(const af_client_tls *tls) {
  if (tls == NULL)
    return grpc_insecure_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {tls->private_key, tls->cert_chain};
  return grpc_ssl_credentials_create(tls->root_certs, tls->cert_chain ? &pair : NULL, NULL, NULL);
}

af_client *af_client_new(const char *target, const af_client_tls *tls) {
  af_client *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  grpc_channel_credentials *creds = credentials(tls);
  c->channel = grpc_channel_create(target, creds, NULL);
  grpc_channel_credentials_release(creds);
  c->cq = grpc_completion_queue_create_for_pluck(NULL);
  return c;
}

void af_client_free(af_client *c) {
  if (c == NULL)
    return;
  grpc_completion_queue_shutdown(c->cq);
  while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(c->cq);
  grpc_channel_destroy(c->channel);
  free(c);
}

__attribute__((format(printf, 3, 4))) static void set_error(af_client_error *err, int code,
                                                            const char *fmt, ...) {
  va_list ap;
  err->grpc_code = code;
  err->type[0] = '\0';
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
}

/* Copies the AWS error type (google.rpc.ErrorInfo reason) out of grpc-status-details-bin,
 * a serialized google.rpc.Status, into err->type. Leaves it "" when there is none. */
static void read_error_type(grpc_slice details_bin, af_client_error *err) {
  google_rpc_Status st = google_rpc_Status_init_zero;
  pb_istream_t in =
      pb_istream_from_buffer(GRPC_SLICE_START_PTR(details_bin), GRPC_SLICE_LENGTH(details_bin));
  if (GRPC_SLICE_LENGTH(details_bin) == 0 || !pb_decode(&in, google_rpc_Status_fields, &st))
    return;
  for (pb_size_t d = 0; d < st.details_count; d++) {
    if (strcmp(st.details[d].type_url, ERROR_INFO_TYPE_URL) != 0)
      continue;
    google_rpc_ErrorInfo info = google_rpc_ErrorInfo_init_zero;
    pb_istream_t din = pb_istream_from_buffer(st.details[d].value.bytes, st.details[d].value.size);
    if (pb_decode(&din, google_rpc_ErrorInfo_fields, &info))
      snprintf(err->type, sizeof err->type, "%s", info.reason);
    return;
  }
}

/* Trailing metadata lives only as long as its call: copy out what we need before the unref. */
static grpc_slice copy_trailer(const grpc_metadata_array *md, const char *key) {
  for (size_t i = 0; i < md->count; i++) {
    if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0)
      return grpc_slice_dup(md->metadata[i].value);
  }
  return grpc_empty_slice();
}

/* One unary call: everything the batch needs, and what it receives. */
typedef struct unary {
  grpc_metadata_array initial_md, trailing_md;
  grpc_byte_buffer *reply;
  grpc_status_code status;
  grpc_slice details;
  grpc_slice details_bin; /* copy of grpc-status-details-bin, outlives the call */
} unary;

static int run_call(af_client *c, const char *method, grpc_byte_buffer *request,
                    double timeout_seconds, unary *u) {
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                   gpr_time_from_micros((int64_t)(timeout_seconds * 1e6), GPR_TIMESPAN));
  grpc_call *call =
      grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                               grpc_slice_from_static_string(method), NULL, deadline, NULL);
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = request;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &u->reply;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing_md;
  ops[5].data.recv_status_on_client.status = &u->status;
  ops[5].data.recv_status_on_client.status_details = &u->details;
  int rc = -1;
  if (grpc_call_start_batch(call, ops, 6, u, NULL) == GRPC_CALL_OK) {
    grpc_event ev = grpc_completion_queue_pluck(c->cq, u, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    rc = ev.type == GRPC_OP_COMPLETE && ev.success ? 0 : -1;
    u->details_bin = copy_trailer(&u->trailing_md, "grpc-status-details-bin");
  }
  grpc_call_unref(call);
  return rc;
}

static int decode_reply(grpc_byte_buffer *bb, const pb_msgdesc_t *fields, void *msg) {
  grpc_byte_buffer_reader reader;
  if (bb == NULL || !grpc_byte_buffer_reader_init(&reader, bb))
    return -1;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  pb_istream_t in = pb_istream_from_buffer(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
  int ok = pb_decode(&in, fields, msg);
  grpc_slice_unref(all);
  return ok ? 0 : -1;
}

/* The request as bytes, in a buffer of its size (callback fields are written twice: once to
 * size it). NULL with err filled when it cannot be encoded. */
static pb_byte_t *encode_request(const pb_msgdesc_t *fields, const void *req, size_t *len,
                                 af_client_error *err) {
  if (!pb_get_encoded_size(len, fields, req)) {
    set_error(err, GRPC_STATUS_INVALID_ARGUMENT, "%s", "cannot encode the request");
    return NULL;
  }
  pb_byte_t *buf = malloc(*len ? *len : 1);
  pb_ostream_t out = pb_ostream_from_buffer(buf, *len);
  if (buf == NULL || !pb_encode(&out, fields, req) || out.bytes_written != *len) {
    set_error(err, GRPC_STATUS_INTERNAL, "cannot encode the request: %s",
              buf ? PB_GET_ERROR(&out) : "out of memory");
    free(buf);
    return NULL;
  }
  return buf;
}

int af_client_call(af_client *c, const char *method, const pb_msgdesc_t *req_fields,
                   const void *req, const pb_msgdesc_t *resp_fields, void *resp,
                   double timeout_seconds, af_client_error *err) {
  size_t len;
  pb_byte_t *buf = encode_request(req_fields, req, &len, err);
  if (buf == NULL)
    return -1;
  grpc_slice slice = grpc_slice_from_copied_buffer((const char *)buf, len);
  free(buf);
  grpc_byte_buffer *request = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  unary u = {.status = GRPC_STATUS_UNKNOWN,
             .details = grpc_empty_slice(),
             .details_bin = grpc_empty_slice()};
  grpc_metadata_array_init(&u.initial_md);
  grpc_metadata_array_init(&u.trailing_md);
  int rc = run_call(c, method, request, timeout_seconds, &u);
  if (rc != 0) {
    set_error(err, GRPC_STATUS_INTERNAL, "%s", "the call could not be started");
  } else if (u.status != GRPC_STATUS_OK) {
    char *msg = grpc_slice_to_c_string(u.details);
    set_error(err, u.status, "%s", msg);
    gpr_free(msg);
    read_error_type(u.details_bin, err);
    rc = -1;
  } else if (decode_reply(u.reply, resp_fields, resp) != 0) {
    set_error(err, GRPC_STATUS_INTERNAL, "%s", "the server's reply could not be decoded");
    rc = -1;
  }
  grpc_byte_buffer_destroy(request);
  grpc_byte_buffer_destroy(u.reply);
  grpc_slice_unref(u.details);
  grpc_slice_unref(u.details_bin);
  grpc_metadata_array_destroy(&u.initial_md);
  grpc_metadata_array_destroy(&u.trailing_md);
  return rc;
}

int af_client_stop_flow(af_client *c, const char *flow_name, double timeout_seconds,
                        appflow_v1_StopFlowResponse *resp, af_client_error *err) {
  appflow_v1_StopFlowRequest req = appflow_v1_StopFlowRequest_init_zero;
  if (strlen(flow_name) >= sizeof req.flow_name) {
    set_error(err, GRPC_STATUS_INVALID_ARGUMENT,
              "flow name is longer than %zu characters, the AWS limit", sizeof req.flow_name - 1);
    return -1;
  }
  memcpy(req.flow_name, flow_name, strlen(flow_name) + 1);
  req.has_flow_name = true;
  *resp = (appflow_v1_StopFlowResponse)appflow_v1_StopFlowResponse_init_zero;
  return af_client_call(c, "/appflow.v1.AppFlowService/StopFlow", appflow_v1_StopFlowRequest_fields,
                        &req, appflow_v1_StopFlowResponse_fields, resp, timeout_seconds, err);
}
