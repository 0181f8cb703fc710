/* The AWS JSON transcoder (src/bridge/transcode.h): every REST-JSON body reaches it before any
 * rule runs. Input: byte 0 (mod af_model_struct_count) picks the structure from the AWS
 * model's af_model_structs (every request, response, nested structure and list wrapper of the
 * contract), the rest is the JSON body. Indices follow the generated table (alphabetical, list
 * wrappers last): a corpus file's first byte names a structure only for one generation of
 * gen/model/.
 *
 * Oracle: failures carry a message; a success writes back as JSON that jansson accepts, and
 * that JSON transcodes again to the same message and the same text (a lossy or asymmetric
 * mapping shows up as a mismatch). A structure that is an operation's input also runs through
 * its RPC's handler, when the service has one, on a fresh service with the built-in catalogs,
 * seeded with a few flows, connector profiles and a custom connector (FUZZ_SEED_FLOWS), as the
 * AWS door runs it: an error must be one of error.h's rows with a message, and a response must
 * write as JSON with the operation's output structure (what the door sends); neither may show
 * a seeded profile's credentials (fuzz_leaks). */
#include "fuzz.h"

#include "appflow/v1/appflow.pb-c.h"
#include "appflow_model.h"
#include "bridge/seed.h"
#include "bridge/transcode.h"
#include "flows/service.h"

#include <jansson.h>
#include <string.h>

static const char seed[] = FUZZ_SEED_FLOWS;

static int listed(const af_model_struct *s) {
  for (size_t k = 0; k < af_model_struct_count; k++)
    if (af_model_structs[k] == s)
      return 1;
  return 0;
}

/* A table that misses an operation's structures would pass while fuzzing nothing of them; one
 * out of step with its descriptors would crash on every input: refuse to start. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  for (size_t i = 0; i < af_model_operation_count; i++) {
    const af_model_operation *op = &af_model_operations[i];
    if (!listed(op->input) || !listed(op->output)) {
      fprintf(stderr, "fuzz_transcode: af_model_structs lacks %s's structures\n", op->name);
      abort();
    }
  }
  for (size_t k = 0; k < af_model_struct_count; k++) {
    if (af_model_structs[k]->n_members != af_model_structs[k]->descriptor->n_fields) {
      fprintf(stderr, "fuzz_transcode: %s disagrees with its descriptor\n",
              af_model_structs[k]->name);
      abort();
    }
  }
  return 0;
}

/* The packed form, for comparing two messages field by field. malloc'd. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*len ? *len : 1);
  CHECK(buf != NULL && protobuf_c_message_pack(m, buf) == *len);
  return buf;
}

/* JSON text -> message, checking what every call must give. */
static af_err parse(const af_model_struct *s, const char *text, size_t n, af_arena *a,
                    ProtobufCMessage **m) {
  af_error err;
  memset(&err, 0xAA, sizeof err); /* an unset message then fails the memchr below */
  af_err rc = af_bridge_json_to_message(s, text, n, a, m, &err);
  if (rc == AF_OK)
    CHECK(*m != NULL && (*m)->descriptor == s->descriptor);
  else
    CHECK(err.code == rc && memchr(err.message, 0, sizeof err.message) && err.message[0] &&
          (rc == AF_ERR_SERIALIZATION || rc == AF_ERR_VALIDATION));
  return rc;
}

static void write_json(const af_model_struct *s, const ProtobufCMessage *m, af_arena *a, char **out,
                       size_t *len) {
  af_error err;
  /* What a parse accepted must be writable: every string came through jansson, so it is UTF-8,
   * and inputs are far below the arena's limit. */
  CHECK(af_bridge_message_to_json(s, m, a, out, len, &err) == AF_OK);
  CHECK(*out != NULL && strlen(*out) == *len);
  json_t *j = json_loadb(*out, *len, JSON_REJECT_DUPLICATES, NULL);
  CHECK(j != NULL && json_is_object(j));
  json_decref(j);
}

/* Whether the service may answer rc: one of error.h's rows, but never the doors' own refusals,
 * nor InternalServer (no allocation fails here). A switch without default, so a new row is a
 * compile error until it is placed. */
static int service_error(af_err rc) {
  switch (rc) {
  case AF_ERR_VALIDATION:
  case AF_ERR_UNSUPPORTED_OPERATION:
  case AF_ERR_RESOURCE_NOT_FOUND:
  case AF_ERR_CONFLICT:
  case AF_ERR_NAME_TAKEN:
  case AF_ERR_SERVICE_QUOTA_EXCEEDED:
  case AF_ERR_ACCESS_DENIED:
    return 1;
  case AF_OK:
  case AF_ERR_SERIALIZATION:
  case AF_ERR_THROTTLING:
  case AF_ERR_UNAVAILABLE:
  case AF_ERR_UNKNOWN_OPERATION:
  case AF_ERR_NOT_IMPLEMENTED:
  case AF_ERR_METHOD_NOT_ALLOWED:
  case AF_ERR_REQUEST_TOO_LARGE:
  case AF_ERR_MISSING_AUTHENTICATION_TOKEN:
  case AF_ERR_INCOMPLETE_SIGNATURE:
  case AF_ERR_UNRECOGNIZED_CLIENT:
  case AF_ERR_INVALID_SIGNATURE:
  case AF_ERR_INTERNAL_SERVER:
  case AF_ERR_REQUEST_TIMEOUT: /* no deadline is set here */
    return 0;
  }
  return 0;
}

/* The request through its handler, as the AWS door runs it, on a fresh seeded service: for the
 * operation whose input s is, when the service serves it. */
static void run_service(const af_model_struct *s, const ProtobufCMessage *req, const uint8_t *in,
                        size_t in_len, af_arena *a) {
  const af_model_operation *op = NULL;
  for (size_t i = 0; i < af_model_operation_count && op == NULL; i++)
    if (af_model_operations[i].input == s)
      op = &af_model_operations[i];
  if (op == NULL)
    return;
  af_error err;
  af_flows *svc = af_flows_new(&(af_flows_config){.catalog = fuzz_catalog()}, &err);
  CHECK(svc != NULL);
  const af_rpc *rpc = af_flows_rpc_named(svc, op->name);
  CHECK(rpc != NULL && rpc->input == s->descriptor && rpc->output == op->output->descriptor);
  af_seed_error serr;
  CHECK(af_seed_load_buffer(svc, seed, sizeof seed - 1, NULL, &serr) == 0);
  ProtobufCMessage *resp = af_arena_alloc(a, rpc->output->sizeof_message);
  CHECK(resp != NULL);
  protobuf_c_message_init(rpc->output, resp);
  memset(&err, 0xAA, sizeof err);
  af_err rc = af_flows_call_sync(svc, rpc, req, resp, a, &err);
  if (rc == AF_OK) {
    char *out;
    size_t n;
    write_json(op->output, resp, a, &out, &n);
    CHECK(!fuzz_leaks(in, in_len, out, n));
  } else {
    /* an operation not served yet answers NotImplementedException once the request is valid */
    CHECK(err.code == rc &&
          (service_error(rc) || (rc == AF_ERR_NOT_IMPLEMENTED && rpc->handler == NULL)));
    CHECK(memchr(err.message, 0, sizeof err.message) && err.message[0]);
    CHECK(!fuzz_leaks(in, in_len, err.message, strlen(err.message)));
  }
  af_flows_free(svc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const af_model_struct *s = af_model_structs[data[0] % af_model_struct_count];
  static af_arena arena;
  af_arena_init(&arena);
  ProtobufCMessage *m1, *m2;
  if (parse(s, (const char *)data + 1, size - 1, &arena, &m1) == AF_OK) {
    char *j1, *j2;
    size_t n1, n2, p1, p2;
    write_json(s, m1, &arena, &j1, &n1);
    CHECK(parse(s, j1, n1, &arena, &m2) == AF_OK);
    write_json(s, m2, &arena, &j2, &n2);
    CHECK(n1 == n2 && memcmp(j1, j2, n1) == 0);
    uint8_t *b1 = pack(m1, &p1), *b2 = pack(m2, &p2);
    CHECK(p1 == p2 && memcmp(b1, b2, p1) == 0);
    free(b1);
    free(b2);
    run_service(s, m1, data, size, &arena);
  }
  af_arena_destroy(&arena);
  return 0;
}
