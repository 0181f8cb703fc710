#include "grpc/decode.h"

#include "appflow/v1/appflow.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#include <criterion/criterion.h>
#include <string.h>

static af_err decode(const ProtobufCMessageDescriptor *d, const void *wire, size_t len,
                     ProtobufCMessage **out, af_error *err, af_arena *a) {
  return af_grpc_decode(d, wire, len, a, out, err);
}

#define REQ &appflow__v1__stop_flow_request__descriptor

Test(decode, valid_request) {
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  cr_assert_eq(decode(REQ,
                      "\x0a\x04"
                      "demo",
                      6, &m, &err, &a),
               AF_OK);
  cr_expect_str_eq(((Appflow__V1__StopFlowRequest *)m)->flow_name, "demo");
  /* Empty payload: every field absent (proto2 keeps presence). */
  cr_assert_eq(decode(REQ, "", 0, &m, &err, &a), AF_OK);
  cr_expect_null(((Appflow__V1__StopFlowRequest *)m)->flow_name);
  /* An empty string is present. */
  cr_assert_eq(decode(REQ, "\x0a\x00", 2, &m, &err, &a), AF_OK);
  cr_expect_str_eq(((Appflow__V1__StopFlowRequest *)m)->flow_name, "");
  /* Unknown fields are skipped. */
  cr_assert_eq(decode(REQ,
                      "\x10\x01\x0a\x02"
                      "ab\x1d\x01\x02\x03\x04",
                      11, &m, &err, &a),
               AF_OK);
  cr_expect_str_eq(((Appflow__V1__StopFlowRequest *)m)->flow_name, "ab");
  af_arena_destroy(&a);
}

Test(decode, nul_in_string_is_refused_not_truncated) {
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  cr_expect_eq(decode(REQ,
                      "\x0a\x05"
                      "ab\0cd",
                      7, &m, &err, &a),
               AF_ERR_SERIALIZATION);
  cr_expect_null(m);
  cr_expect(strstr(err.message, "flow_name contains a NUL byte") != NULL, "%s", err.message);
  af_arena_destroy(&a);
}

Test(decode, invalid_utf8_is_refused) {
  static const char *bad[] = {
      "\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
      "\xc3", "\xe2\x82", "\x80"};
  af_arena a;
  af_arena_init(&a);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char wire[16] = {0x0a, (char)strlen(bad[i])};
    memcpy(wire + 2, bad[i], strlen(bad[i]));
    ProtobufCMessage *m;
    af_error err;
    cr_expect_eq(decode(REQ, wire, 2 + strlen(bad[i]), &m, &err, &a), AF_ERR_SERIALIZATION,
                 "case %zu", i);
    cr_expect(strstr(err.message, "not valid UTF-8") != NULL);
  }
  af_arena_destroy(&a);
}

Test(decode, malformed_wire_is_a_serialization_error) {
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  static const struct {
    const char *wire;
    size_t len;
  } cases[] = {
      {"\x0a\x05"
       "ab",
       4},                                                      /* string longer than the payload */
      {"\x0a", 1},                                              /* key without length */
      {"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12}, /* varint too long */
      {"\x0b", 1},                                              /* group start: not in proto3 */
      {"\x0f", 1},                                              /* wire type 7 */
      {"\x08\x80\x80", 3},                                      /* truncated varint */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_expect_eq(decode(REQ, cases[i].wire, cases[i].len, &m, &err, &a), AF_ERR_SERIALIZATION,
                 "case %zu", i);
    cr_expect(strstr(err.message, "appflow.v1.StopFlowRequest") != NULL, "%s", err.message);
  }
  af_arena_destroy(&a);
}

Test(decode, strings_in_nested_messages_are_checked) {
  /* google.rpc.Status{details: [Any{type_url: "a\0b"}]} */
  static const char wire[] = "\x1a\x05\x0a\x03"
                             "a\0b";
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  cr_expect_eq(decode(&google__rpc__status__descriptor, wire, sizeof wire - 1, &m, &err, &a),
               AF_ERR_SERIALIZATION);
  cr_expect(strstr(err.message, "type_url") != NULL, "%s", err.message);
  af_arena_destroy(&a);
}

/* Regressions found by fuzz_decode: field number 0 written with an overlong (two-byte) tag,
 * at the top and inside a nested message (a map entry of google.rpc.ErrorInfo). */
Test(decode, field_number_zero_is_refused_at_any_depth) {
  af_arena a;
  af_arena_init(&a);
  ProtobufCMessage *m;
  af_error err;
  cr_expect_eq(decode(REQ, "\x80\x00\x00", 3, &m, &err, &a), AF_ERR_SERIALIZATION);
  cr_expect(strstr(err.message, "field number 0") != NULL, "%s", err.message);
  static const char nested[] = "\x1a\x07\x80\x00\x6b\x30\x6b\x12\x00";
  cr_expect_eq(
      decode(&google__rpc__error_info__descriptor, nested, sizeof nested - 1, &m, &err, &a),
      AF_ERR_SERIALIZATION);
  /* The largest field number is fine (an unknown field, skipped). */
  cr_expect_eq(decode(REQ, "\xf8\xff\xff\xff\x0f\x01", 6, &m, &err, &a), AF_OK);
  cr_expect_eq(decode(REQ, "\x80\x80\x80\x80\x10\x01", 6, &m, &err, &a), AF_ERR_SERIALIZATION);
  af_arena_destroy(&a);
}
