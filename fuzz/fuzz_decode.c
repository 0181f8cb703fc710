/* The gRPC payload decoder (src/grpc/decode.h) and, behind it, the service: every gRPC request's
 * bytes, unauthenticated. Input: byte 0 (mod the number of types) picks the message type from
 * `descs` (indices never change: new types are appended, so corpus files keep their type), the
 * rest is the payload: google.rpc.Status (repeated Any), ErrorInfo (a map) and BadRequest
 * (repeated nested messages), then the request of every operation of the model, in its order.
 *
 * Oracle for the decoder, on success: no string field anywhere in the payload held a NUL or
 * invalid UTF-8, checked twice and apart from decode.c's walker: on the wire (where a NUL is
 * still visible; protobuf-c would cut the string there) and in the decoded message; the
 * message packed again decodes again; and protobuf_c_message_unpack took the same bytes and
 * made the same message of them (both pack alike). On failure: an error with a message, no
 * message out, and protobuf-c refused the bytes too unless the error is one of the decoder's
 * own checks (a string, a field number, the nesting).
 *
 * Oracle for the service, when a request decodes: it runs through the RPC's handler on a
 * fresh service with the built-in catalogs, seeded with a few flows in each state, connector
 * profiles and a custom connector (FUZZ_SEED_FLOWS; as the gRPC door would run it), and
 * - an error is one of the AWS errors the AppFlow model lists for that operation (plus
 *   ValidationException, and NotImplementedException for an operation not served yet), with a
 *   message; InternalServerException never happens here;
 * - a response packs and decodes again (strings a client can read);
 * - neither a response nor an error shows a seeded profile's credentials (fuzz_leaks);
 * - af_flows_count moves by exactly one on a successful create or delete, else not at all;
 * - the same request again gives what the contract says: the same bytes for reads, updates,
 *   for a repeated client token and for stopping a suspended flow; ConflictException for a
 *   flow, profile or connector created without a token; ResourceNotFoundException for a
 *   deleted flow or profile or an unregistered connector;
 * - a created flow describes as it was given; ListFlows pages through exactly
 *   af_flows_count distinct flows afterwards. */
#include "fuzz.h"

#include "appflow/v1/appflow.pb-c.h"
#include "appflow_model.h"
#include "bridge/seed.h"
#include "flows/service.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "grpc/decode.h"

#include <string.h>

/* Messages with walks the requests alone do not have; then every operation's request. */
static const ProtobufCMessageDescriptor *const extra[] = {
    &google__rpc__status__descriptor,
    &google__rpc__error_info__descriptor,
    &google__rpc__bad_request__descriptor,
};
#define NEXTRA (sizeof extra / sizeof extra[0])
#define NDESCS (NEXTRA + af_model_operation_count)

static const ProtobufCMessageDescriptor *desc_at(size_t i) {
  return i < NEXTRA ? extra[i] : af_model_operations[i - NEXTRA].input->descriptor;
}

static const char seed[] = FUZZ_SEED_FLOWS;

static const af_rpc *rpc_for(af_flows *svc, const ProtobufCMessageDescriptor *input) {
  for (size_t i = 0; i < af_flows_rpc_count(svc); i++)
    if (af_flows_rpc_at(svc, i)->input == input)
      return af_flows_rpc_at(svc, i);
  return NULL;
}

/* Errors AWS answers that its model does not list for the operation, and appflowd answers as
 * AWS does: CreateConnectorProfile of a CustomConnector whose label is not registered is a 404
 * ResourceNotFoundException ("Connector:X is not registered. Please register it first before
 * creating ConnectorProfile."), as README.md documents. */
static const struct {
  const char *op, *type;
} unlisted[] = {
    {"CreateConnectorProfile", "ResourceNotFoundException"},
};

/* An error the model lists for rpc's operation (or one of `unlisted`); ValidationException is
 * allowed everywhere (AWS answers any bad member with it), NotImplementedException for an
 * operation not served yet, and InternalServerException never. */
static int allowed(const af_rpc *rpc, const char *type) {
  if (strcmp(type, "ValidationException") == 0)
    return 1;
  for (size_t i = 0; i < sizeof unlisted / sizeof unlisted[0]; i++)
    if (strcmp(rpc->name, unlisted[i].op) == 0 && strcmp(type, unlisted[i].type) == 0)
      return 1;
  if (strcmp(type, "NotImplementedException") == 0)
    return rpc->handler == NULL;
  for (size_t i = 0; i < rpc->op->n_errors; i++)
    if (strcmp(rpc->op->errors[i], type) == 0 && strcmp(type, "InternalServerException") != 0)
      return 1;
  return 0;
}

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int i = 0; i < 10; i++) {
    if (*p == end)
      return 0;
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80))
      return 1;
  }
  return 0;
}

/* The wire, read after protobuf-c accepted it, so it is well formed as far as protobuf-c
 * reads: each length-delimited field the descriptor calls a string must be clean UTF-8. */
static void check_wire(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end) {
  uint64_t key, n;
  while (p < end && varint(&p, end, &key)) {
    unsigned wt = key & 7;
    if (wt == 0) {
      if (!varint(&p, end, &n))
        return;
      continue;
    }
    if (wt == 1 || wt == 5)
      n = wt == 1 ? 8 : 4;
    else if (wt != 2 || !varint(&p, end, &n))
      return;
    if (n > (uint64_t)(end - p))
      return;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(d, (unsigned)(uint32_t)(key >> 3));
    if (f != NULL && wt == 2 && f->type == PROTOBUF_C_TYPE_STRING)
      CHECK(memchr(p, 0, n) == NULL && fuzz_utf8_ok(p, n));
    if (f != NULL && wt == 2 && f->type == PROTOBUF_C_TYPE_MESSAGE)
      check_wire(f->descriptor, p, p + n);
    p += n;
  }
}

/* The decoded message: every string (singular, repeated, in nested messages) valid UTF-8. */
static void check_msg(const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
      continue;
    const char *member = (const char *)m + f->offset;
    size_t count = 1;
    const void *const *items = (const void *const *)member;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      count = *(const size_t *)((const char *)m + f->quantifier_offset);
      items = *(const void *const *const *)member;
    } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
        continue;
    }
    for (size_t k = 0; k < count; k++) {
      if (items[k] == NULL)
        continue;
      if (f->type == PROTOBUF_C_TYPE_STRING)
        CHECK(fuzz_utf8_ok(items[k], strlen(items[k])));
      else
        check_msg(items[k]);
    }
  }
}

/* ---- the service ---- */

/* The packed form, malloc'd, for comparing two responses byte for byte. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*len ? *len : 1);
  CHECK(buf != NULL && protobuf_c_message_pack(m, buf) == *len);
  return buf;
}

static int same_bytes(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  size_t na, nb;
  uint8_t *pa = pack(a, &na), *pb = pack(b, &nb);
  int same = na == nb && memcmp(pa, pb, na) == 0;
  free(pa);
  free(pb);
  return same;
}

/* One handler call as a door makes it, checking what every call must give. */
/* The input, for the credentials oracle (fuzz_leaks): the request's own bytes. */
static const uint8_t *input;
static size_t input_len;

static af_err call(af_flows *svc, const af_rpc *rpc, const ProtobufCMessage *req, af_arena *a,
                   ProtobufCMessage **resp) {
  *resp = af_arena_alloc(a, rpc->output->sizeof_message);
  CHECK(*resp != NULL);
  protobuf_c_message_init(rpc->output, *resp);
  af_error err;
  memset(&err, 0xAA, sizeof err);
  af_err rc = af_flows_call_sync(svc, rpc, req, *resp, a, &err);
  if (rc == AF_OK) {
    size_t n;
    uint8_t *buf = pack(*resp, &n);
    ProtobufCMessage *back;
    CHECK(af_grpc_decode(rpc->output, buf, n, a, &back, &err) == AF_OK);
    CHECK(!fuzz_leaks(input, input_len, buf, n));
    free(buf);
    return rc;
  }
  CHECK(err.code == rc && memchr(err.message, 0, sizeof err.message) && err.message[0]);
  CHECK(!fuzz_leaks(input, input_len, err.message, strlen(err.message)));
  const char *type = af_err_type(rc);
  int ok = allowed(rpc, type);
  if (!ok)
    fprintf(stderr, "fuzz_decode: %s answered %s: %s\n", rpc->name, type, err.message);
  CHECK(ok);
  return rc;
}

/* What the decoder refuses and protobuf-c takes: strings with a NUL or bad UTF-8, field numbers
 * out of range, nesting past the limit. */
static int refused_beyond_protobuf_c(const char *message) {
  return strstr(message, "NUL byte") || strstr(message, "not valid UTF-8") ||
         strstr(message, "field number") || strstr(message, "nested deeper");
}

/* The decoder made protobuf_c_message_unpack's message (want) of the same bytes: both were
 * taken, and both pack to the same bytes. */
static void check_as_protobuf_c(const ProtobufCMessage *want, const ProtobufCMessage *got) {
  CHECK(want != NULL);
  size_t n = protobuf_c_message_get_packed_size(want);
  CHECK(protobuf_c_message_get_packed_size(got) == n);
  uint8_t *x = malloc(n ? n : 1), *y = malloc(n ? n : 1);
  CHECK(x != NULL && y != NULL);
  protobuf_c_message_pack(want, x);
  protobuf_c_message_pack(got, y);
  CHECK(memcmp(x, y, n) == 0);
  free(x);
  free(y);
}

static int str_eq(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

/* A flow CreateFlow accepted describes as it was given. */
static void check_created(af_flows *svc, const Appflow__V1__CreateFlowRequest *req,
                          const Appflow__V1__CreateFlowResponse *created, af_arena *a) {
  Appflow__V1__DescribeFlowRequest dreq = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  dreq.flow_name = req->flow_name;
  ProtobufCMessage *out;
  CHECK(call(svc, af_flows_rpc_named(svc, "DescribeFlow"), &dreq.base, a, &out) == AF_OK);
  const Appflow__V1__DescribeFlowResponse *d = (const Appflow__V1__DescribeFlowResponse *)out;
  CHECK(str_eq(d->flow_name, req->flow_name) && str_eq(d->flow_arn, created->flow_arn));
  CHECK(str_eq(d->description, req->description) && str_eq(d->kms_arn, req->kms_arn));
  CHECK(d->has_flow_status && d->flow_status == created->flow_status);
  CHECK(d->trigger_config != NULL && req->trigger_config != NULL &&
        d->trigger_config->trigger_type == req->trigger_config->trigger_type);
  CHECK(d->n_tasks == req->n_tasks);
  CHECK(d->n_destination_flow_config_list == req->n_destination_flow_config_list);
  CHECK(d->n_tags == req->n_tags);
  for (size_t i = 0; i < req->n_tags; i++) {
    size_t k = 0;
    while (k < d->n_tags && !str_eq(d->tags[k]->key, req->tags[i]->key))
      k++;
    CHECK(k < d->n_tags && str_eq(d->tags[k]->value, req->tags[i]->value));
  }
}

/* ListFlows, page by page with a page size the input chose, yields every flow exactly once. */
static void check_listing(af_flows *svc, int page) {
  const af_rpc *list = af_flows_rpc_named(svc, "ListFlows");
  size_t total = af_flows_count(svc), seen = 0;
  char **names = calloc(total + 1, sizeof *names);
  char token[4096] = "";
  static af_arena a;
  af_arena_init(&a);
  do {
    Appflow__V1__ListFlowsRequest req = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
    req.max_results = page;
    req.has_max_results = true;
    req.next_token = token[0] != '\0' ? token : NULL;
    ProtobufCMessage *out;
    CHECK(call(svc, list, &req.base, &a, &out) == AF_OK);
    const Appflow__V1__ListFlowsResponse *r = (const Appflow__V1__ListFlowsResponse *)out;
    CHECK(r->n_flows <= (size_t)page && seen + r->n_flows <= total);
    for (size_t i = 0; i < r->n_flows; i++)
      CHECK((names[seen++] = strdup(r->flows[i]->flow_name)) != NULL);
    const char *next = r->next_token != NULL ? r->next_token : "";
    CHECK(strlen(next) < sizeof token);
    /* A token with nothing after it would loop: each page must bring a flow. */
    CHECK(next[0] == '\0' || r->n_flows > 0);
    strcpy(token, next);
    af_arena_reset(&a);
  } while (token[0] != '\0');
  af_arena_destroy(&a);
  fuzz_check_each_once(names, seen, total);
}

/* The same request a second time, as a client's retry would send it. */
static void check_repeat(af_flows *svc, const af_rpc *rpc, const ProtobufCMessage *req,
                         af_err first, const ProtobufCMessage *resp, af_arena *a) {
  ProtobufCMessage *again;
  size_t before = af_flows_count(svc);
  af_err rc = call(svc, rpc, req, a, &again);
  const char *name = rpc->name;
  if (strcmp(name, "CreateFlow") == 0 || strcmp(name, "CreateConnectorProfile") == 0 ||
      strcmp(name, "RegisterConnector") == 0) {
    /* a create: a retry with its token gets the first answer, else the name is taken */
    const char *token =
        strcmp(name, "CreateFlow") == 0
            ? ((const Appflow__V1__CreateFlowRequest *)req)->client_token
        : strcmp(name, "RegisterConnector") == 0
            ? ((const Appflow__V1__RegisterConnectorRequest *)req)->client_token
            : ((const Appflow__V1__CreateConnectorProfileRequest *)req)->client_token;
    if (first == AF_OK && token != NULL && token[0] != '\0')
      CHECK(rc == AF_OK && same_bytes(resp, again));
    else if (first == AF_OK)
      CHECK(rc == AF_ERR_NAME_TAKEN);
    else
      CHECK(rc == first);
  } else if (strcmp(name, "StartFlow") == 0) {
    const char *token = ((const Appflow__V1__StartFlowRequest *)req)->client_token;
    CHECK((rc == AF_OK) == (first == AF_OK));
    if (first == AF_OK && token != NULL && token[0] != '\0')
      CHECK(same_bytes(resp, again));
  } else if (strcmp(name, "DeleteFlow") == 0 || strcmp(name, "DeleteConnectorProfile") == 0 ||
             strcmp(name, "UnregisterConnector") == 0) {
    if (first == AF_OK)
      CHECK(rc == AF_ERR_RESOURCE_NOT_FOUND);
    else
      CHECK(rc == first);
  } else {
    /* Reads, tagging, stopping, updating profiles and registrations and resetting the metadata
     * cache are idempotent; all but tagging answer the same bytes. */
    CHECK(rc == first);
    if (rc == AF_OK && strcmp(name, "TagResource") != 0 && strcmp(name, "UntagResource") != 0)
      CHECK(same_bytes(resp, again));
  }
  CHECK(af_flows_count(svc) == before);
}

static void run_service(const ProtobufCMessage *req, uint8_t page, af_arena *a) {
  af_error e;
  af_flows *svc = af_flows_new(&(af_flows_config){.catalog = fuzz_catalog()}, &e);
  CHECK(svc != NULL);
  const af_rpc *rpc = rpc_for(svc, req->descriptor);
  if (rpc == NULL) {
    af_flows_free(svc);
    return;
  }
  af_seed_error serr;
  CHECK(af_seed_load_buffer(svc, seed, sizeof seed - 1, NULL, &serr) == 0);
  size_t before = af_flows_count(svc);
  ProtobufCMessage *resp;
  af_err rc = call(svc, rpc, req, a, &resp);
  long delta = 0;
  if (rc == AF_OK && strcmp(rpc->name, "CreateFlow") == 0)
    delta = 1;
  if (rc == AF_OK && strcmp(rpc->name, "DeleteFlow") == 0)
    delta = -1;
  CHECK((long)af_flows_count(svc) == (long)before + delta);
  if (delta == 1)
    check_created(svc, (const Appflow__V1__CreateFlowRequest *)req,
                  (const Appflow__V1__CreateFlowResponse *)resp, a);
  check_repeat(svc, rpc, req, rc, resp, a);
  check_listing(svc, 1 + page % 100);
  af_flows_free(svc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const ProtobufCMessageDescriptor *d = desc_at(data[0] % NDESCS);
  static af_arena arena;
  af_arena_init(&arena);
  af_error err;
  memset(&err, 0xAA, sizeof err);
  ProtobufCMessage *m = (ProtobufCMessage *)&err; /* must be overwritten with NULL on failure */
  af_err rc = af_grpc_decode(d, data + 1, size - 1, &arena, &m, &err);
  /* protobuf-c has no nesting limit: it is asked only about bytes the decoder took or refused
   * on protobuf-c's own grounds, which it walks in the same order to the same depth. */
  ProtobufCMessage *want = NULL;
  if (rc == AF_OK || !refused_beyond_protobuf_c(err.message))
    want = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
  if (rc != AF_OK) {
    CHECK(m == NULL && err.code == rc);
    CHECK(memchr(err.message, 0, sizeof err.message) != NULL && err.message[0] != '\0');
    CHECK(want == NULL);
  } else {
    CHECK(m != NULL && m->descriptor == d);
    check_wire(d, data + 1, data + size);
    check_msg(m);
    check_as_protobuf_c(want, m);
    size_t n;
    uint8_t *buf = pack(m, &n);
    ProtobufCMessage *again;
    CHECK(af_grpc_decode(d, buf, n, &arena, &again, &err) == AF_OK);
    free(buf);
    /* The page size for the listing check comes from the input too, so small pages (many
     * tokens) and whole-table pages both occur. */
    input = data;
    input_len = size;
    run_service(m, data[size - 1], &arena);
  }
  protobuf_c_message_free_unpacked(want, NULL);
  af_arena_destroy(&arena);
  return 0;
}
