/* Server reflection over the descriptor set appflowd really serves (gen/appflow.protoset):
 * requests built and responses read with the generated protobuf-c code, as a client would. */
#include "grpc/reflection.h"

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Grpc__Reflection__V1__ServerReflectionRequest Request;
typedef Grpc__Reflection__V1__ServerReflectionResponse Response;

#define PROTOSET AF_SOURCE_DIR "/gen/appflow.protoset"
#define APPFLOW "appflow/v1/appflow.proto"
#define ANNOTATIONS "google/api/annotations.proto"
#define HTTP "google/api/http.proto"
#define DESCRIPTOR "google/protobuf/descriptor.proto"
#define OPTIONS "appflow/v1/options.proto"
#define TIMESTAMP "google/protobuf/timestamp.proto"
#define HEALTH "grpc/health/v1/health.proto"
#define HTTP_RULE 72295728 /* (google.api.http), an extension of MethodOptions */

#define CASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

static const char *const services[] = {"appflow.v1.AppFlowService", "grpc.health.v1.Health",
                                       "grpc.reflection.v1.ServerReflection",
                                       "grpc.reflection.v1alpha.ServerReflection", NULL};

static af_reflection *refl;
static af_arena arena;

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s", path);
  cr_assert_eq(fseek(f, 0, SEEK_END), 0);
  long size = ftell(f);
  cr_assert_gt(size, 0);
  rewind(f);
  uint8_t *buf = malloc((size_t)size);
  cr_assert_not_null(buf);
  cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  *len = (size_t)size;
  return buf;
}

static void setup(void) {
  size_t len;
  uint8_t *set = read_file(PROTOSET, &len);
  af_error err;
  refl = af_reflection_new(set, len, services, &err);
  free(set); /* borrowed only for the call */
  cr_assert_not_null(refl, "af_reflection_new: %s", err.message);
  af_arena_init(&arena);
}

static void teardown(void) {
  af_reflection_free(refl);
  af_arena_destroy(&arena);
}

TestSuite(reflection, .init = setup, .fini = teardown);

/* Packs req, answers it, and returns the decoded response (arena memory). */
static Response *ask(const Request *req) {
  size_t len = grpc__reflection__v1__server_reflection_request__get_packed_size(req);
  uint8_t *bytes = af_arena_alloc(&arena, len);
  cr_assert_not_null(bytes);
  grpc__reflection__v1__server_reflection_request__pack(req, bytes);
  uint8_t *out;
  size_t out_len;
  af_error err;
  cr_assert_eq(af_reflection_answer(refl, bytes, len, &arena, &out, &out_len, &err), AF_OK, "%s",
               err.message);
  Response *resp =
      grpc__reflection__v1__server_reflection_response__unpack(&arena.allocator, out_len, out);
  cr_assert_not_null(resp);
  return resp;
}

static Response *ask_filename(const char *name) {
  Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  req.file_by_filename = (char *)name;
  return ask(&req);
}

static Response *ask_symbol(const char *symbol) {
  Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = (char *)symbol;
  return ask(&req);
}

static Response *ask_extension(const char *type, int32_t number) {
  Grpc__Reflection__V1__ExtensionRequest x = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
  x.containing_type = (char *)type;
  x.extension_number = number;
  Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
  req.file_containing_extension = &x;
  return ask(&req);
}

static Response *ask_numbers(const char *type) {
  Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  req.all_extension_numbers_of_type = (char *)type;
  return ask(&req);
}

/* The i-th served file, decoded (free with free_unpacked). */
static Google__Protobuf__FileDescriptorProto *served(const Response *resp, size_t i) {
  const ProtobufCBinaryData *b = &resp->file_descriptor_response->file_descriptor_proto[i];
  Google__Protobuf__FileDescriptorProto *f =
      google__protobuf__file_descriptor_proto__unpack(NULL, b->len, b->data);
  cr_assert_not_null(f, "file %zu does not decode as a FileDescriptorProto", i);
  return f;
}

/* resp serves want[0] first, then exactly the other want[] in any order, each once. */
static void expect_files(const Response *resp, const char *const *want, size_t n) {
  cr_assert_eq(resp->message_response_case, CASE(FILE_DESCRIPTOR_RESPONSE));
  cr_assert_eq(resp->file_descriptor_response->n_file_descriptor_proto, n);
  bool seen[8] = {false};
  cr_assert_leq(n, sizeof seen / sizeof seen[0]);
  for (size_t i = 0; i < n; i++) {
    Google__Protobuf__FileDescriptorProto *f = served(resp, i);
    size_t j = 0;
    while (j < n && strcmp(f->name, want[j]) != 0)
      j++;
    cr_expect_lt(j, n, "unexpected file %s", f->name);
    cr_expect(j == n || !seen[j], "%s served twice", f->name);
    if (j < n)
      seen[j] = true;
    if (i == 0)
      cr_expect_eq(j, 0, "first file is %s, want %s", f->name, want[0]);
    google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
  }
}

static void expect_first_file(const Response *resp, const char *name) {
  cr_assert_eq(resp->message_response_case, CASE(FILE_DESCRIPTOR_RESPONSE));
  cr_assert_geq(resp->file_descriptor_response->n_file_descriptor_proto, 1);
  Google__Protobuf__FileDescriptorProto *f = served(resp, 0);
  cr_expect_str_eq(f->name, name);
  google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
}

static void expect_error(const Response *resp, int32_t code, const char *message) {
  cr_assert_eq(resp->message_response_case, CASE(ERROR_RESPONSE));
  cr_expect_eq(resp->error_response->error_code, code);
  cr_expect_str_eq(resp->error_response->error_message, message);
}

Test(reflection, lists_the_services_in_the_given_order) {
  Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  req.list_services = (char *)"*";
  Response *resp = ask(&req);
  cr_assert_eq(resp->message_response_case, CASE(LIST_SERVICES_RESPONSE));
  cr_assert_eq(resp->list_services_response->n_service, 4);
  for (size_t i = 0; i < 4; i++)
    cr_expect_str_eq(resp->list_services_response->service[i]->name, services[i]);
}

Test(reflection, file_by_filename_serves_the_file_then_its_imports_once) {
  static const char *const want[] = {APPFLOW, OPTIONS, ANNOTATIONS, HTTP, DESCRIPTOR, TIMESTAMP};
  expect_files(ask_filename(APPFLOW), want, 6);
}

Test(reflection, file_by_filename_without_imports_serves_one_file) {
  static const char *const want[] = {HEALTH};
  expect_files(ask_filename(HEALTH), want, 1);
}

/* protoc --include_source_info: the comments clients show must survive. */
Test(reflection, served_files_keep_source_info) {
  Google__Protobuf__FileDescriptorProto *f = served(ask_filename(APPFLOW), 0);
  cr_expect_not_null(f->source_code_info);
  cr_expect_gt(f->source_code_info->n_location, 0);
  google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
}

/* protobuf-c does not know (google.api.http), so it must carry it through as an unknown field:
 * clients such as grpcurl read the HTTP rules from it. */
Test(reflection, served_files_keep_option_extensions) {
  Google__Protobuf__FileDescriptorProto *f = served(ask_filename(APPFLOW), 0);
  cr_assert_eq(f->n_service, 1);
  cr_assert_geq(f->service[0]->n_method, 1);
  const Google__Protobuf__MethodOptions *o = f->service[0]->method[0]->options;
  cr_assert_not_null(o);
  bool found = false;
  for (unsigned i = 0; i < o->base.n_unknown_fields; i++)
    found |= o->base.unknown_fields[i].tag == HTTP_RULE;
  cr_expect(found, "method options lost google.api.http");
  google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
}

Test(reflection, file_containing_symbol_finds_every_kind_of_symbol) {
  static const struct {
    const char *symbol, *file;
  } cases[] = {
      {"appflow.v1.AppFlowService", APPFLOW},
      {"appflow.v1.AppFlowService.StopFlow", APPFLOW},
      {"appflow.v1.StopFlowRequest", APPFLOW},
      {"appflow.v1.StopFlowRequest.flow_name", APPFLOW},
      {"appflow.v1.FlowStatus", APPFLOW},
      {"grpc.health.v1.Health", HEALTH},
      {"grpc.health.v1.HealthCheckResponse.ServingStatus", HEALTH},
      /* enum values are scoped beside their enum, not inside it */
      {"grpc.health.v1.HealthCheckResponse.SERVING", HEALTH},
      {"grpc.reflection.v1alpha.ServerReflection", "grpc/reflection/v1alpha/reflection.proto"},
      {"grpc.reflection.v1.ServerReflection.ServerReflectionInfo",
       "grpc/reflection/v1/reflection.proto"},
      {"google.protobuf.DescriptorProto.ExtensionRange", DESCRIPTOR},
      {"google.api.http", ANNOTATIONS},
      {"google.api.HttpRule", HTTP},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    af_arena_reset(&arena);
    expect_first_file(ask_symbol(cases[i].symbol), cases[i].file);
  }
}

Test(reflection, file_containing_symbol_serves_imports_too) {
  static const char *const want[] = {APPFLOW, OPTIONS, ANNOTATIONS, HTTP, DESCRIPTOR, TIMESTAMP};
  expect_files(ask_symbol("appflow.v1.AppFlowService"), want, 6);
}

Test(reflection, file_containing_symbol_tolerates_a_leading_dot) {
  expect_first_file(ask_symbol(".appflow.v1.StopFlowRequest"), APPFLOW);
}

Test(reflection, file_containing_extension_finds_google_api_http) {
  static const char *const want[] = {ANNOTATIONS, HTTP, DESCRIPTOR};
  expect_files(ask_extension("google.protobuf.MethodOptions", HTTP_RULE), want, 3);
  expect_files(ask_extension(".google.protobuf.MethodOptions", HTTP_RULE), want, 3);
}

Test(reflection, all_extension_numbers_of_type_lists_known_extensions) {
  Response *resp = ask_numbers("google.protobuf.MethodOptions");
  cr_assert_eq(resp->message_response_case, CASE(ALL_EXTENSION_NUMBERS_RESPONSE));
  const Grpc__Reflection__V1__ExtensionNumberResponse *en = resp->all_extension_numbers_response;
  cr_expect_str_eq(en->base_type_name, "google.protobuf.MethodOptions");
  bool found = false;
  for (size_t i = 0; i < en->n_extension_number; i++) {
    found |= en->extension_number[i] == HTTP_RULE;
    if (i > 0)
      cr_expect_lt(en->extension_number[i - 1], en->extension_number[i], "not sorted");
  }
  cr_expect(found);
}

Test(reflection, all_extension_numbers_of_a_message_without_extensions_is_empty) {
  Response *resp = ask_numbers(".appflow.v1.StopFlowRequest");
  cr_assert_eq(resp->message_response_case, CASE(ALL_EXTENSION_NUMBERS_RESPONSE));
  cr_expect_str_eq(resp->all_extension_numbers_response->base_type_name,
                   "appflow.v1.StopFlowRequest");
  cr_expect_eq(resp->all_extension_numbers_response->n_extension_number, 0);
}

Test(reflection, unknown_names_get_not_found) {
  expect_error(ask_filename("x.proto"), 5, "file not found: x.proto");
  expect_error(ask_symbol("a.b.C"), 5, "symbol not found: a.b.C");
  expect_error(ask_symbol("appflow.v1"), 5, "symbol not found: appflow.v1");
  expect_error(ask_extension("google.protobuf.MethodOptions", 1234), 5,
               "extension not found: google.protobuf.MethodOptions number 1234");
  expect_error(ask_extension("a.B", HTTP_RULE), 5, "extension not found: a.B number 72295728");
  expect_error(ask_numbers("a.B"), 5, "type not found: a.B");
  /* a service or an enum has no extensions to list */
  expect_error(ask_numbers("appflow.v1.AppFlowService"), 5,
               "type not found: appflow.v1.AppFlowService");
  expect_error(ask_numbers("appflow.v1.FlowStatus"), 5, "type not found: appflow.v1.FlowStatus");
}

Test(reflection, error_messages_escape_the_client_name) {
  expect_error(ask_symbol("a\n\xff"), 5, "symbol not found: a\\x0a\\xff");
}

Test(reflection, empty_request_gets_invalid_argument) {
  Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.host = (char *)"localhost:50051";
  Response *resp = ask(&req);
  cr_assert_eq(resp->message_response_case, CASE(ERROR_RESPONSE));
  cr_expect_eq(resp->error_response->error_code, 3);
  cr_expect_neq(resp->error_response->error_message[0], '\0');
}

Test(reflection, echoes_host_and_request) {
  Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.host = (char *)"localhost:50051";
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  req.file_containing_symbol = (char *)"grpc.health.v1.Health";
  Response *resp = ask(&req);
  cr_expect_str_eq(resp->valid_host, "localhost:50051");
  cr_assert_not_null(resp->original_request);
  cr_expect_str_eq(resp->original_request->host, "localhost:50051");
  cr_assert_eq(resp->original_request->message_request_case, req.message_request_case);
  cr_expect_str_eq(resp->original_request->file_containing_symbol, "grpc.health.v1.Health");
}

Test(reflection, undecodable_request_is_a_serialization_error) {
  static const uint8_t garbage[][4] = {
      {0xff, 0xff, 0xff, 0xff}, /* a tag varint that never ends */
      {0x1a, 0x7f, 'a', 'b'},   /* file_by_filename longer than the message */
      {0x0f, 0, 0, 0},          /* wire type 7 */
  };
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
    uint8_t *out = NULL;
    size_t out_len = 0;
    af_error err = {0};
    cr_expect_eq(af_reflection_answer(refl, garbage[i], 4, &arena, &out, &out_len, &err),
                 AF_ERR_SERIALIZATION, "case %zu", i);
    cr_expect_eq(err.code, AF_ERR_SERIALIZATION);
    cr_expect_neq(err.message[0], '\0');
  }
}

Test(reflection, exhausted_arena_is_an_internal_error) {
  /* The limit (a chunk of its own), then what the current block has left: nothing remains. */
  cr_assert_not_null(af_arena_alloc(&arena, AF_ARENA_LIMIT));
  if (arena.end > arena.cur)
    cr_assert_not_null(af_arena_alloc(&arena, (size_t)(arena.end - arena.cur)));
  static const uint8_t list[] = {0x3a, 0x00}; /* list_services = "" */
  uint8_t *out;
  size_t out_len;
  af_error err;
  cr_expect_eq(af_reflection_answer(refl, list, sizeof list, &arena, &out, &out_len, &err),
               AF_ERR_INTERNAL_SERVER);
  cr_expect_eq(err.code, AF_ERR_INTERNAL_SERVER);
}

Test(reflection_new, refuses_an_undecodable_set) {
  static const uint8_t garbage[] = {0x0a, 0x7f, 0x0a};
  af_error err = {0};
  cr_expect_null(af_reflection_new(garbage, sizeof garbage, NULL, &err));
  cr_expect_eq(err.code, AF_ERR_SERIALIZATION);
  cr_expect_neq(err.message[0], '\0');
}

/* An empty set decodes (all fields absent): nothing to find, nothing to list. */
Test(reflection_new, empty_set_answers_not_found) {
  af_error err;
  refl = af_reflection_new((const uint8_t *)"", 0, NULL, &err);
  cr_assert_not_null(refl, "%s", err.message);
  af_arena_init(&arena);
  expect_error(ask_filename(APPFLOW), 5, "file not found: " APPFLOW);
  Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  req.message_request_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  req.list_services = (char *)"";
  Response *resp = ask(&req);
  cr_assert_eq(resp->message_response_case, CASE(LIST_SERVICES_RESPONSE));
  cr_expect_eq(resp->list_services_response->n_service, 0);
  teardown();
}

Test(reflection_new, free_accepts_null) { af_reflection_free(NULL); }
