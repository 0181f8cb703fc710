#include "bridge/transcode.h"

#include "appflow/v1/appflow.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "transcode_test.pb-c.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVERYTHING (&appflow__test__v1__everything__descriptor)

typedef Appflow__Test__V1__Everything Everything;
typedef Appflow__Test__V1__Inner Inner;

static void *parse_len(af_arena *a, const ProtobufCMessageDescriptor *d, const char *json,
                       size_t len) {
  af_error err = {0};
  ProtobufCMessage *m = NULL;
  af_err rc = af_bridge_json_to_message(d, json, len, a, &m, &err);
  cr_assert_eq(rc, AF_OK, "parsing %s: %s", json, err.message);
  cr_assert_not_null(m);
  cr_assert_eq(m->descriptor, d);
  return m;
}

static void *parse(af_arena *a, const ProtobufCMessageDescriptor *d, const char *json) {
  return parse_len(a, d, json, strlen(json));
}

static const char *write_json(af_arena *a, const void *m) {
  af_error err = {0};
  char *out = NULL;
  size_t len = 0;
  af_err rc = af_bridge_message_to_json(m, a, &out, &len, &err);
  cr_assert_eq(rc, AF_OK, "writing: %s", err.message);
  cr_assert_not_null(out);
  cr_assert_eq(strlen(out), len);
  return out;
}

/* Writing m must fail with AF_ERR_INTERNAL_SERVER and a message holding want. */
static void write_fails(const void *m, const char *want) {
  af_arena a;
  af_arena_init(&a);
  af_error err = {0};
  char *out = (char *)"sentinel";
  size_t len = 99;
  cr_expect_eq(af_bridge_message_to_json(m, &a, &out, &len, &err), AF_ERR_INTERNAL_SERVER);
  cr_expect_eq(err.code, AF_ERR_INTERNAL_SERVER);
  cr_expect_null(out);
  cr_expect_eq(len, 0);
  cr_expect(strstr(err.message, want) != NULL, "message '%s' lacks '%s'", err.message, want);
  af_arena_destroy(&a);
}

/* Parsing json[0..len) must fail with code; exact: the message must equal want, else hold it. */
static void fails_len(const char *json, size_t len, af_err code, const char *want, int exact) {
  af_arena a;
  af_arena_init(&a);
  af_error err = {0};
  ProtobufCMessage sentinel, *m = &sentinel;
  af_err rc = af_bridge_json_to_message(EVERYTHING, json, len, &a, &m, &err);
  cr_expect_eq(rc, code, "%s: code %d, want %d (%s)", json, rc, code, err.message);
  cr_expect_eq(err.code, code, "%s", json);
  cr_expect_null(m, "%s", json);
  if (exact)
    cr_expect_str_eq(err.message, want, "%s", json);
  else
    cr_expect(strstr(err.message, want) != NULL, "%s: message '%s' lacks '%s'", json, err.message,
              want);
  af_arena_destroy(&a);
}

static void fails(const char *json, af_err code, const char *want) {
  fails_len(json, strlen(json), code, want, 1);
}

static void fails_like(const char *json, const char *want) {
  fails_len(json, strlen(json), AF_ERR_SERIALIZATION, want, 0);
}

static void invalid_like(const char *json, const char *want) {
  fails_len(json, strlen(json), AF_ERR_VALIDATION, want, 0);
}

/* ---- the real contract ---- */

static const char stop_flow_response_json[] =
    "{\"flowArn\":\"arn:aws:appflow:us-east-1:000000000000:flow/x\",\"flowStatus\":\"Suspended\"}";

Test(transcode, stop_flow_response_golden) {
  af_arena a;
  af_arena_init(&a);
  Appflow__V1__StopFlowResponse r = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  r.flow_arn = "arn:aws:appflow:us-east-1:000000000000:flow/x";
  r.flow_status = APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED;
  af_error err = {0};
  char *out = NULL;
  size_t len = 0;
  cr_assert_eq(af_bridge_message_to_json(&r.base, &a, &out, &len, &err), AF_OK);
  cr_assert_eq(len, sizeof stop_flow_response_json - 1);
  cr_expect_eq(memcmp(out, stop_flow_response_json, len), 0, "%s", out);
  cr_expect_eq(out[len], '\0');

  Appflow__V1__StopFlowResponse *back =
      parse(&a, &appflow__v1__stop_flow_response__descriptor, out);
  cr_expect_str_eq(back->flow_arn, r.flow_arn);
  cr_expect_eq(back->flow_status, APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED);
  af_arena_destroy(&a);
}

Test(transcode, stop_flow_response_defaults_left_out) {
  af_arena a;
  af_arena_init(&a);
  Appflow__V1__StopFlowResponse r = APPFLOW__V1__STOP_FLOW_RESPONSE__INIT;
  cr_expect_str_eq(write_json(&a, &r), "{}");
  r.flow_status = APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE;
  cr_expect_str_eq(write_json(&a, &r), "{\"flowStatus\":\"Active\"}");
  af_arena_destroy(&a);
}

Test(transcode, stop_flow_request) {
  af_arena a;
  af_arena_init(&a);
  const ProtobufCMessageDescriptor *d = &appflow__v1__stop_flow_request__descriptor;
  Appflow__V1__StopFlowRequest *r = parse(&a, d, "{\"flowName\":\"x\"}");
  cr_expect_str_eq(r->flow_name, "x");
  r = parse(&a, d, "{\"flowName\":\"x\",\"unknownMember\":{\"a\":[1,2]}}");
  cr_expect_str_eq(r->flow_name, "x");
  r = parse(&a, d, "{\"flow_name\":\"snake\"}"); /* only AWS member names are read */
  cr_expect_str_eq(r->flow_name, "");
  af_arena_destroy(&a);
}

Test(transcode, empty_body_is_an_empty_object) {
  af_arena a;
  af_arena_init(&a);
  const ProtobufCMessageDescriptor *d = &appflow__v1__stop_flow_request__descriptor;
  Appflow__V1__StopFlowRequest *r = parse_len(&a, d, "", 0);
  cr_expect_str_eq(r->flow_name, "");
  r = parse_len(&a, d, NULL, 0);
  cr_expect_str_eq(r->flow_name, "");
  r = parse(&a, d, " \t\r\n ");
  cr_expect_str_eq(r->flow_name, "");
  r = parse(&a, d, "{}");
  cr_expect_str_eq(r->flow_name, "");
  af_arena_destroy(&a);
}

Test(transcode, member_names) {
  char buf[16];
  cr_expect_eq(af_bridge_member_name("flow_name", buf, sizeof buf), 8);
  cr_expect_str_eq(buf, "flowName");
  cr_expect_eq(af_bridge_member_name("trigger_config_x_y", buf, sizeof buf), 15);
  cr_expect_str_eq(buf, "triggerConfigXY");
  cr_expect_eq(af_bridge_member_name("proto3_optional", buf, sizeof buf), 14);
  cr_expect_str_eq(buf, "proto3Optional");
  cr_expect_eq(af_bridge_member_name("flow_name", buf, 5), 8);
  cr_expect_str_eq(buf, "flow");
  cr_expect_eq(af_bridge_member_name("flow_name", buf, 0), 8);
}

/* ---- every kind, both ways ---- */

static const char everything_json[] =
    "{\"i32\":-2147483648,\"s32\":2147483647,\"sf32\":-7,\"i64\":-9223372036854775808,"
    "\"s64\":9223372036854775807,\"sf64\":-9,\"u32\":4294967295,\"f32\":7,"
    "\"u64\":9223372036854775807,\"f64\":8,\"flag\":true,\"ratio\":0.5,"
    "\"score\":0.10000000000000001,"
    "\"name\":\"q\\\"b\\\\n\\u000at\\u0009c\\u001f/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
    "\"blob\":\"aGVsbG8=\",\"triggerType\":\"OnDemand\","
    "\"inner\":{\"scheduleExpression\":\"rate(5 minutes)\",\"count\":3,\"child\":{\"count\":4}},"
    "\"numbers\":[1,-2,3],\"tags\":[\"a\",\"\"],\"items\":[{\"count\":1},{}],"
    "\"labels\":{\"k\":\"v\",\"empty\":\"\"},\"codes\":{\"7\":\"seven\",\"-1\":\"neg\"},"
    "\"limit\":5,\"text\":\"t\",\"createdAt\":1700000000.5,"
    "\"attributes\":{\"a\":1,\"b\":[true,null,\"x\",{\"c\":{}}],\"d\":-2.5},"
    "\"anything\":\"any\",\"list\":[\"s\",3,[]],\"kinds\":[\"Scheduled\",\"Event\"],"
    "\"blobs\":[\"/w==\",\"\",\"AAE=\"],\"scores\":[1.0000000000000001e+300,-0.25,0],"
    "\"innerByName\":{\"n\":{\"count\":2},\"e\":{}},\"countsByFlag\":{\"true\":5,\"false\":0},"
    "\"kindsById\":{\"18446744073709551615\":\"Event\"},\"times\":[0.000000001,-0.5,0]}";

static void check_scalars(const Everything *m) {
  cr_expect_eq(m->i32, INT32_MIN);
  cr_expect_eq(m->s32, INT32_MAX);
  cr_expect_eq(m->sf32, -7);
  cr_expect_eq(m->i64, INT64_MIN);
  cr_expect_eq(m->s64, INT64_MAX);
  cr_expect_eq(m->sf64, -9);
  cr_expect_eq(m->u32, UINT32_MAX);
  cr_expect_eq(m->f32, 7);
  cr_expect_eq(m->u64, (uint64_t)INT64_MAX);
  cr_expect_eq(m->f64, 8);
  cr_expect_eq(m->flag, 1);
  cr_expect_eq(m->ratio, 0.5f);
  cr_expect_eq(m->score, 0.1);
  cr_expect_str_eq(m->name, "q\"b\\n\nt\tc\x1f/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  cr_expect_eq(m->blob.len, 5);
  cr_expect_eq(memcmp(m->blob.data, "hello", 5), 0);
  cr_expect_eq(m->trigger_type, APPFLOW__TEST__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND);
  cr_expect_eq(m->limit, 5);
}

static void check_nested(const Everything *m) {
  cr_assert_not_null(m->inner);
  cr_expect_str_eq(m->inner->schedule_expression, "rate(5 minutes)");
  cr_expect_eq(m->inner->count, 3);
  cr_assert_not_null(m->inner->child);
  cr_expect_eq(m->inner->child->count, 4);
  cr_assert_eq(m->n_numbers, 3);
  cr_expect_eq(m->numbers[1], -2);
  cr_assert_eq(m->n_tags, 2);
  cr_expect_str_eq(m->tags[0], "a");
  cr_expect_str_eq(m->tags[1], "");
  cr_assert_eq(m->n_items, 2);
  cr_expect_eq(m->items[0]->count, 1);
  cr_expect_eq(m->items[1]->count, 0);
  cr_assert_eq(m->n_labels, 2);
  cr_expect_str_eq(m->labels[0]->key, "k");
  cr_expect_str_eq(m->labels[0]->value, "v");
  cr_assert_eq(m->n_codes, 2);
  cr_expect_eq(m->codes[1]->key, -1);
  cr_expect_str_eq(m->codes[1]->value, "neg");
  cr_expect_eq(m->choice_case, APPFLOW__TEST__V1__EVERYTHING__CHOICE_TEXT);
  cr_expect_str_eq(m->text, "t");
}

static void check_repeated(const Everything *m) {
  cr_assert_eq(m->n_kinds, 2);
  cr_expect_eq(m->kinds[1], APPFLOW__TEST__V1__TRIGGER_TYPE__TRIGGER_TYPE_EVENT);
  cr_assert_eq(m->n_blobs, 3);
  cr_expect_eq(m->blobs[0].len, 1);
  cr_expect_eq(m->blobs[0].data[0], 0xff);
  cr_expect_eq(m->blobs[1].len, 0);
  cr_expect_eq(m->blobs[2].len, 2);
  cr_assert_eq(m->n_scores, 3);
  cr_expect_eq(m->scores[0], 1e300);
  cr_assert_eq(m->n_inner_by_name, 2);
  cr_expect_eq(m->inner_by_name[0]->value->count, 2);
  cr_assert_eq(m->n_counts_by_flag, 2);
  cr_expect_eq(m->counts_by_flag[0]->key, 1);
  cr_expect_eq(m->counts_by_flag[0]->value, 5);
  cr_expect_eq(m->counts_by_flag[1]->key, 0);
  cr_assert_eq(m->n_kinds_by_id, 1);
  cr_expect_eq(m->kinds_by_id[0]->key, UINT64_MAX);
  cr_assert_eq(m->n_times, 3);
  cr_expect_eq(m->times[0]->seconds, 0);
  cr_expect_eq(m->times[0]->nanos, 1);
  cr_expect_eq(m->times[1]->seconds, -1);
  cr_expect_eq(m->times[1]->nanos, 500000000);
}

static void check_well_known(const Everything *m) {
  cr_assert_not_null(m->created_at);
  cr_expect_eq(m->created_at->seconds, 1700000000);
  cr_expect_eq(m->created_at->nanos, 500000000);
  cr_assert_not_null(m->attributes);
  cr_assert_eq(m->attributes->n_fields, 3);
  Google__Protobuf__Value *b = m->attributes->fields[1]->value;
  cr_expect_str_eq(m->attributes->fields[1]->key, "b");
  cr_assert_eq(b->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
  cr_assert_eq(b->list_value->n_values, 4);
  cr_expect_eq(b->list_value->values[0]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
  cr_expect_eq(b->list_value->values[1]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
  cr_expect_eq(b->list_value->values[3]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
  cr_assert_not_null(m->anything);
  cr_expect_eq(m->anything->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
  cr_expect_str_eq(m->anything->string_value, "any");
  cr_assert_not_null(m->list);
  cr_assert_eq(m->list->n_values, 3);
  cr_expect_eq(m->list->values[1]->number_value, 3);
}

Test(transcode, every_kind_golden_and_round_trip) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, everything_json);
  check_scalars(m);
  check_nested(m);
  check_repeated(m);
  check_well_known(m);
  const char *out = write_json(&a, m);
  cr_expect_str_eq(out, everything_json);
  /* and once more from the writer's own text */
  cr_expect_str_eq(write_json(&a, parse(&a, EVERYTHING, out)), everything_json);
  af_arena_destroy(&a);
}

Test(transcode, every_kind_from_c) {
  af_arena a;
  af_arena_init(&a);
  Everything m = APPFLOW__TEST__V1__EVERYTHING__INIT;
  Inner detail = APPFLOW__TEST__V1__INNER__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Google__Protobuf__Value v = GOOGLE__PROTOBUF__VALUE__INIT;
  Appflow__Test__V1__Everything__CodesEntry code = APPFLOW__TEST__V1__EVERYTHING__CODES_ENTRY__INIT;
  Appflow__Test__V1__Everything__CodesEntry *codes[] = {&code};
  static uint8_t bytes[] = {0xfb, 0xff, 0xbf};
  detail.count = -1;
  ts.seconds = -2;
  ts.nanos = 250000000;
  v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
  v.bool_value = 0;
  code.key = 2147483647;
  m.u64 = UINT64_MAX; /* written exactly, though jansson cannot read it back */
  m.ratio = 0.1f;
  m.blob.len = sizeof bytes;
  m.blob.data = bytes;
  m.choice_case = APPFLOW__TEST__V1__EVERYTHING__CHOICE_DETAIL;
  m.detail = &detail;
  m.created_at = &ts;
  m.anything = &v;
  m.n_codes = 1;
  m.codes = codes;
  cr_expect_str_eq(write_json(&a, &m),
                   "{\"u64\":18446744073709551615,\"ratio\":0.100000001,\"blob\":\"+/+/\","
                   "\"codes\":{\"2147483647\":\"\"},\"detail\":{\"count\":-1},"
                   "\"createdAt\":-1.75,\"anything\":false}");
  af_arena_destroy(&a);
}

Test(transcode, integer_edges) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, "{\"i32\":1e2,\"u32\":0,\"i64\":-1.0,\"u64\":0}");
  cr_expect_eq(m->i32, 100);
  cr_expect_eq(m->i64, -1);
  m = parse(&a, EVERYTHING, "{\"u32\":4294967295,\"i32\":-2147483648,\"u64\":9223372036854775807}");
  cr_expect_eq(m->u32, UINT32_MAX);
  cr_expect_eq(m->i32, INT32_MIN);
  cr_expect_eq(m->u64, (uint64_t)INT64_MAX);
  af_arena_destroy(&a);
}

Test(transcode, floats_take_integers_and_reals) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, "{\"ratio\":2,\"score\":-3,\"scores\":[1,2.5,-1e-300]}");
  cr_expect_eq(m->ratio, 2.0f);
  cr_expect_eq(m->score, -3.0);
  cr_assert_eq(m->n_scores, 3);
  cr_expect_eq(m->scores[2], -1e-300);
  cr_expect_str_eq(write_json(&a, m), "{\"ratio\":2,\"score\":-3,\"scores\":[1,2.5,-1e-300]}");
  af_arena_destroy(&a);
}

Test(transcode, enum_strings) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, "{\"triggerType\":\"Scheduled\",\"kinds\":[\"OnDemand\"]}");
  cr_expect_eq(m->trigger_type, APPFLOW__TEST__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED);
  cr_expect_eq(m->kinds[0], APPFLOW__TEST__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND);
  m->trigger_type = 99; /* a number this build does not know, as from a newer peer */
  m->n_kinds = 0;
  cr_expect_str_eq(write_json(&a, m), "{\"triggerType\":99}");
  af_arena_destroy(&a);
}

Test(transcode, null_members_leave_defaults) {
  af_arena a;
  af_arena_init(&a);
  Everything *m =
      parse(&a, EVERYTHING,
            "{\"i32\":null,\"flag\":null,\"name\":null,\"blob\":null,\"inner\":null,"
            "\"numbers\":null,\"labels\":null,\"triggerType\":null,\"createdAt\":null,"
            "\"attributes\":null,\"list\":null,\"text\":null,\"detail\":{\"count\":1}}");
  cr_expect_eq(m->i32, 0);
  cr_expect_eq(m->flag, 0);
  cr_expect_str_eq(m->name, "");
  cr_expect_eq(m->blob.len, 0);
  cr_expect_null(m->inner);
  cr_expect_eq(m->n_numbers, 0);
  cr_expect_eq(m->n_labels, 0);
  cr_expect_eq(m->trigger_type, 0);
  cr_expect_null(m->created_at);
  cr_expect_null(m->attributes);
  cr_expect_null(m->list);
  cr_expect_eq(m->choice_case, APPFLOW__TEST__V1__EVERYTHING__CHOICE_DETAIL);
  cr_expect_str_eq(write_json(&a, m), "{\"detail\":{\"count\":1}}");
  af_arena_destroy(&a);
}

Test(transcode, value_holds_any_json) {
  af_arena a;
  af_arena_init(&a);
  static const char *const docs[] = {"{\"anything\":null}",
                                     "{\"anything\":true}",
                                     "{\"anything\":-0.5}",
                                     "{\"anything\":\"\\u00e9\"}",
                                     "{\"anything\":{}}",
                                     "{\"anything\":[]}",
                                     "{\"anything\":{\"a\":[null]}}",
                                     "{\"attributes\":{\"n\":null,\"o\":{\"p\":[[1]]}}}",
                                     "{\"list\":[null,false,{}]}",
                                     "{\"list\":[]}",
                                     "{\"attributes\":{}}"};
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    const char *out = write_json(&a, parse(&a, EVERYTHING, docs[i]));
    if (i == 3) /* \u00e9 comes back as the UTF-8 bytes */
      cr_expect_str_eq(out, "{\"anything\":\"\xc3\xa9\"}");
    else
      cr_expect_str_eq(out, docs[i]);
  }
  Everything *m = parse(&a, EVERYTHING, "{\"anything\":null}");
  cr_assert_not_null(m->anything);
  cr_expect_eq(m->anything->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
  af_arena_destroy(&a);
}

Test(transcode, timestamps) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, "{\"createdAt\":1700000000}");
  cr_expect_eq(m->created_at->seconds, 1700000000);
  cr_expect_eq(m->created_at->nanos, 0);
  cr_expect_str_eq(write_json(&a, m), "{\"createdAt\":1700000000}");
  m = parse(&a, EVERYTHING, "{\"createdAt\":1700000000.25}");
  cr_expect_eq(m->created_at->nanos, 250000000);
  cr_expect_str_eq(write_json(&a, m), "{\"createdAt\":1700000000.25}");
  m = parse(&a, EVERYTHING, "{\"createdAt\":-1.5}");
  cr_expect_eq(m->created_at->seconds, -2);
  cr_expect_eq(m->created_at->nanos, 500000000);
  cr_expect_str_eq(write_json(&a, m), "{\"createdAt\":-1.5}");
  static const char *const exact[] = {"-0.5", "0.000000001", "-0.000000001", "-1", "10.1"};
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
    char in[64], out[64];
    snprintf(in, sizeof in, "{\"createdAt\":%s}", exact[i]);
    m = parse(&a, EVERYTHING, in);
    snprintf(out, sizeof out, "{\"createdAt\":%s}", exact[i]);
    cr_expect_str_eq(write_json(&a, m), out);
  }
  m = parse(&a, EVERYTHING, "{\"createdAt\":253402300799,\"times\":[-62135596800]}");
  cr_expect_eq(m->created_at->seconds, 253402300799LL);
  cr_expect_eq(m->times[0]->seconds, -62135596800LL);
  m->created_at->nanos = 123456789;
  m->n_times = 0;
  cr_expect_str_eq(write_json(&a, m), "{\"createdAt\":253402300799.123456789}");
  af_arena_destroy(&a);
}

Test(transcode, map_keys) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING,
                        "{\"codes\":{\"-2147483648\":\"min\",\"0\":\"\"},"
                        "\"kindsById\":{\"0\":\"Scheduled\",\"4294967296\":\"Event\"}}");
  cr_assert_eq(m->n_codes, 2);
  cr_expect_eq(m->codes[0]->key, INT32_MIN);
  cr_assert_eq(m->n_kinds_by_id, 2);
  cr_expect_eq(m->kinds_by_id[1]->key, 4294967296ULL);
  cr_expect_str_eq(write_json(&a, m),
                   "{\"codes\":{\"-2147483648\":\"min\",\"0\":\"\"},"
                   "\"kindsById\":{\"0\":\"Scheduled\",\"4294967296\":\"Event\"}}");
  af_arena_destroy(&a);
}

Test(transcode, oneof_members) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, "{\"detail\":{}}");
  cr_expect_eq(m->choice_case, APPFLOW__TEST__V1__EVERYTHING__CHOICE_DETAIL);
  cr_expect_str_eq(write_json(&a, m), "{\"detail\":{}}");
  m = parse(&a, EVERYTHING, "{\"text\":\"\"}");
  cr_expect_eq(m->choice_case, APPFLOW__TEST__V1__EVERYTHING__CHOICE_TEXT);
  cr_expect_str_eq(write_json(&a, m), "{\"text\":\"\"}"); /* set, so written at its default */
  m->detail = NULL;
  m->choice_case = APPFLOW__TEST__V1__EVERYTHING__CHOICE_DETAIL;
  cr_expect_str_eq(write_json(&a, m), "{\"detail\":{}}");
  af_arena_destroy(&a);
}

/* protoc-c cannot generate proto3 `optional` (it refuses such files), so has_ flags are
 * checked on proto2 code: google.protobuf.FieldDescriptorProto, from gen/. */
Test(transcode, optional_fields_follow_has_flags) {
  af_arena a;
  af_arena_init(&a);
  const ProtobufCMessageDescriptor *d = &google__protobuf__field_descriptor_proto__descriptor;
  Google__Protobuf__FieldDescriptorProto *f =
      parse(&a, d, "{\"name\":\"\",\"number\":0,\"label\":\"Optional\",\"proto3Optional\":false}");
  cr_expect_str_eq(f->name, "");
  cr_expect_eq(f->has_number, 1);
  cr_expect_eq(f->number, 0);
  cr_expect_eq(f->has_label, 1);
  cr_expect_eq(f->label, GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_OPTIONAL);
  cr_expect_eq(f->has_proto3_optional, 1);
  cr_expect_eq(f->has_type, 0);
  cr_expect_str_eq(write_json(&a, f), "{\"name\":\"\",\"number\":0,\"label\":\"Optional\","
                                      "\"proto3Optional\":false}");
  f = parse(&a, d, "{\"type\":\"Sfixed32\"}");
  cr_expect_eq(f->has_type, 1);
  cr_expect_eq(f->type, GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32);
  cr_expect_null(f->name);
  cr_expect_str_eq(write_json(&a, f), "{\"type\":\"Sfixed32\"}");
  cr_expect_str_eq(write_json(&a, parse(&a, d, "")), "{}");
  af_arena_destroy(&a);
}

/* ---- errors ---- */

Test(transcode, not_json) {
  fails_like("not json", "the request body is not valid JSON: ");
  fails_like("not json", " at line 1 column ");
  fails_like("{\"i32\":1", "the request body is not valid JSON: ");
  fails_like("{\"i32\":1} x", "the request body is not valid JSON: ");
  fails_like("{\"i32\":}", "the request body is not valid JSON: ");
  /* jansson cannot hold this integer, so it is a syntax error */
  fails_like("{\"i64\":9223372036854775808}", "the request body is not valid JSON: ");
  fails_like("{\"ratio\":1e400}", "the request body is not valid JSON: ");
}

Test(transcode, body_must_be_an_object) {
  fails("[]", AF_ERR_SERIALIZATION, "the request body must be a JSON object, not an array");
  fails("\"flow\"", AF_ERR_SERIALIZATION, "the request body must be a JSON object, not a string");
  fails("42", AF_ERR_SERIALIZATION, "the request body must be a JSON object, not a number");
  fails("null", AF_ERR_SERIALIZATION, "the request body must be a JSON object, not null");
  fails(" true ", AF_ERR_SERIALIZATION, "the request body must be a JSON object, not a boolean");
}

Test(transcode, wrong_json_types) {
  static const char *const cases[][2] = {
      {"{\"i32\":\"1\"}", "member i32 must be an integer, not a string"},
      {"{\"s32\":true}", "member s32 must be an integer, not a boolean"},
      {"{\"sf32\":{}}", "member sf32 must be an integer, not an object"},
      {"{\"i64\":[1]}", "member i64 must be an integer, not an array"},
      {"{\"s64\":\"9\"}", "member s64 must be an integer, not a string"},
      {"{\"sf64\":false}", "member sf64 must be an integer, not a boolean"},
      {"{\"u32\":\"1\"}", "member u32 must be an integer, not a string"},
      {"{\"f32\":[]}", "member f32 must be an integer, not an array"},
      {"{\"u64\":\"1\"}", "member u64 must be an integer, not a string"},
      {"{\"f64\":{}}", "member f64 must be an integer, not an object"},
      {"{\"flag\":1}", "member flag must be a boolean, not a number"},
      {"{\"flag\":\"true\"}", "member flag must be a boolean, not a string"},
      {"{\"ratio\":\"0.5\"}", "member ratio must be a number, not a string"},
      {"{\"score\":{}}", "member score must be a number, not an object"},
      {"{\"name\":5}", "member name must be a string, not a number"},
      {"{\"blob\":5}", "member blob must be a base64 string, not a number"},
      {"{\"triggerType\":1}", "member triggerType must be a string, not a number"},
      {"{\"inner\":\"x\"}", "member inner must be an object, not a string"},
      {"{\"inner\":[]}", "member inner must be an object, not an array"},
      {"{\"numbers\":{}}", "member numbers must be an array, not an object"},
      {"{\"numbers\":[1,\"2\"]}", "member numbers[1] must be an integer, not a string"},
      {"{\"tags\":[null]}", "member tags[0] must be a string, not null"},
      {"{\"items\":[{},{\"scheduleExpression\":1}]}",
       "member items[1].scheduleExpression must be a string, not a number"},
      {"{\"labels\":[]}", "member labels must be an object, not an array"},
      {"{\"labels\":{\"k\":1}}", "member labels.k must be a string, not a number"},
      {"{\"innerByName\":{\"x\":null}}", "member innerByName.x must be an object, not null"},
      {"{\"inner\":{\"child\":{\"count\":\"x\"}}}",
       "member inner.child.count must be an integer, not a string"},
      {"{\"createdAt\":\"2020-01-01\"}",
       "member createdAt must be a number of epoch seconds, not a string"},
      {"{\"attributes\":[]}", "member attributes must be an object, not an array"},
      {"{\"list\":{}}", "member list must be an array, not an object"},
      {"{\"kinds\":[\"Event\",2]}", "member kinds[1] must be a string, not a number"},
      {"{\"blobs\":[true]}", "member blobs[0] must be a base64 string, not a boolean"},
      {"{\"times\":[{}]}", "member times[0] must be a number of epoch seconds, not an object"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    fails(cases[i][0], AF_ERR_SERIALIZATION, cases[i][1]);
}

Test(transcode, integers_out_of_range_or_fractional) {
  fails("{\"i32\":2147483648}", AF_ERR_SERIALIZATION,
        "member i32 must be an integer from -2147483648 to 2147483647, not 2147483648");
  fails("{\"sf32\":-2147483649}", AF_ERR_SERIALIZATION,
        "member sf32 must be an integer from -2147483648 to 2147483647, not -2147483649");
  fails("{\"u32\":4294967296}", AF_ERR_SERIALIZATION,
        "member u32 must be an integer from 0 to 4294967295, not 4294967296");
  fails("{\"u32\":-1}", AF_ERR_SERIALIZATION,
        "member u32 must be an integer from 0 to 4294967295, not -1");
  fails("{\"u64\":-1}", AF_ERR_SERIALIZATION,
        "member u64 must be an integer from 0 to 9223372036854775807, not -1");
  fails("{\"i64\":1e19}", AF_ERR_SERIALIZATION,
        "member i64 must be an integer from -9223372036854775808 to 9223372036854775807, not "
        "1e+19");
  fails("{\"i32\":1.5}", AF_ERR_SERIALIZATION, "member i32 must be an integer, not 1.5");
  fails("{\"numbers\":[1,-0.25]}", AF_ERR_SERIALIZATION,
        "member numbers[1] must be an integer, not -0.25");
  fails_like("{\"ratio\":1e39}", "member ratio must be a number within float range");
  fails("{\"createdAt\":253402300800}", AF_ERR_SERIALIZATION,
        "member createdAt must be epoch seconds from -62135596800 to 253402300799, not "
        "253402300800");
  fails_like("{\"createdAt\":-1e300}", "member createdAt must be epoch seconds from");
}

Test(transcode, bad_base64) {
  static const char *const cases[] = {"{\"blob\":\"abc\"}",      "{\"blob\":\"ab=c\"}",
                                      "{\"blob\":\"a===\"}",     "{\"blob\":\"@@@@\"}",
                                      "{\"blob\":\"aGVsbG8\"}",  "{\"blob\":\"aGVsbG9=\"}",
                                      "{\"blob\":\"aG==aGVs\"}", "{\"blob\":\"aGVs bG8=\"}",
                                      "{\"blob\":\"aGVsbG8-\"}", "{\"blobs\":[\"AA==\",\"A\"]}"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    fails_like(cases[i], "must be base64 (standard alphabet, padded with =)");
  fails("{\"blob\":\"abc\"}", AF_ERR_SERIALIZATION,
        "member blob must be base64 (standard alphabet, padded with =), but is not");
}

Test(transcode, unknown_enum_strings_in_aws_wording) {
  fails("{\"triggerType\":\"Hourly\"}", AF_ERR_VALIDATION,
        "1 validation error detected: Value 'Hourly' at 'triggerType' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Scheduled, Event, OnDemand]");
  fails("{\"triggerType\":\"Unspecified\"}", AF_ERR_VALIDATION,
        "1 validation error detected: Value 'Unspecified' at 'triggerType' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Scheduled, Event, OnDemand]");
  invalid_like("{\"triggerType\":\"TRIGGER_TYPE_ON_DEMAND\"}",
               "Value 'TRIGGER_TYPE_ON_DEMAND' at 'triggerType'");
  invalid_like("{\"triggerType\":\"onDemand\"}", "Value 'onDemand'");
  invalid_like("{\"triggerType\":\"\"}", "Value '' at 'triggerType'");
  invalid_like("{\"kinds\":[\"Event\",\"x\\u00e9\\n\"]}", "Value 'x\\xc3\\xa9\\x0a' at 'kinds[1]'");
  invalid_like("{\"kindsById\":{\"1\":\"Daily\"}}", "Value 'Daily' at 'kindsById.1'");
  fails("{\"triggerType\":3}", AF_ERR_SERIALIZATION,
        "member triggerType must be a string, not a number");
}

Test(transcode, proto2_enum_list) {
  af_arena a;
  af_arena_init(&a);
  af_error err = {0};
  ProtobufCMessage *m = NULL;
  const char *json = "{\"label\":\"Sometimes\"}";
  cr_expect_eq(af_bridge_json_to_message(&google__protobuf__field_descriptor_proto__descriptor,
                                         json, strlen(json), &a, &m, &err),
               AF_ERR_VALIDATION);
  cr_expect_str_eq(err.message,
                   "1 validation error detected: Value 'Sometimes' at 'label' failed to satisfy "
                   "constraint: Member must satisfy enum value set: [Optional, Required, "
                   "Repeated]");
  af_arena_destroy(&a);
}

Test(transcode, bad_map_keys) {
  fails("{\"codes\":{\"x\":\"y\"}}", AF_ERR_SERIALIZATION,
        "member codes has key 'x', but its keys must be an integer from -2147483648 to "
        "2147483647");
  fails_like("{\"codes\":{\"2147483648\":\"y\"}}", "member codes has key '2147483648'");
  fails_like("{\"codes\":{\" 1\":\"y\"}}", "member codes has key ' 1'");
  fails_like("{\"codes\":{\"1 \":\"y\"}}", "member codes has key '1 '");
  fails_like("{\"codes\":{\"\":\"y\"}}", "member codes has key ''");
  fails_like("{\"kindsById\":{\"-1\":\"Event\"}}",
             "its keys must be an integer from 0 to 18446744073709551615");
  fails_like("{\"kindsById\":{\"18446744073709551616\":\"Event\"}}", "has key '1844674407370955");
  fails("{\"countsByFlag\":{\"yes\":1}}", AF_ERR_SERIALIZATION,
        "member countsByFlag has key 'yes', but its keys must be true or false");
}

Test(transcode, duplicate_keys) {
  fails_like("{\"name\":\"a\",\"name\":\"b\"}", "the request body is not valid JSON: duplicate");
  fails_like("{\"inner\":{\"count\":1,\"count\":1}}", "not valid JSON: duplicate");
  fails_like("{\"unknown\":{\"a\":1,\"a\":2}}", "not valid JSON: duplicate");
}

Test(transcode, nul_and_invalid_utf8) {
  fails("{\"name\":\"a\\u0000b\"}", AF_ERR_SERIALIZATION,
        "the request body is not valid JSON: a string holds \\u0000, which appflowd does not "
        "accept, at line 1 column 18");
  fails_like("{\"name\":\"\xff\"}", "the request body is not valid JSON: ");
  fails_like("{\"name\":\"\xc0\xaf\"}", "the request body is not valid JSON: ");
  fails_like("{\"name\":\"\xed\xa0\x80\"}", "the request body is not valid JSON: ");
  fails_like("{\"name\":\"\\ud800\"}", "the request body is not valid JSON: ");
  static const char raw_nul[] = "{\"name\":\"a\0\"}";
  fails_len(raw_nul, sizeof raw_nul - 1, AF_ERR_SERIALIZATION, "not valid JSON", 0);
  /* untrusted bytes are quoted escaped */
  af_arena a;
  af_arena_init(&a);
  af_error err = {0};
  ProtobufCMessage *m = NULL;
  const char *json = "{\"name\":\"\xff\"}";
  af_bridge_json_to_message(EVERYTHING, json, strlen(json), &a, &m, &err);
  for (const char *p = err.message; *p != '\0'; p++)
    cr_expect((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "%s", err.message);
  af_arena_destroy(&a);
}

/* {"inner":{"child":{"child":...}}} with objects levels of '{' in all. */
static char *nested_inner(af_arena *a, int objects) {
  size_t cap = (size_t)objects * 12 + 16;
  char *s = af_arena_alloc(a, cap), *p = s;
  p += snprintf(p, cap, "{\"inner\":");
  for (int i = 2; i < objects; i++)
    p += snprintf(p, cap - (size_t)(p - s), "{\"child\":");
  *p++ = '{';
  for (int i = 0; i < objects; i++)
    *p++ = '}';
  *p = '\0';
  return s;
}

static char *nested_list(af_arena *a, int arrays) {
  char *s = af_arena_alloc(a, (size_t)arrays * 2 + 16), *p = s;
  p += snprintf(p, 16, "{\"anything\":");
  memset(p, '[', (size_t)arrays);
  memset(p + arrays, ']', (size_t)arrays);
  p[2 * arrays] = '}';
  p[2 * arrays + 1] = '\0';
  return s;
}

Test(transcode, nesting_depth) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, nested_inner(&a, 64));
  cr_expect_not_null(m->inner->child);
  fails_like(nested_inner(&a, 65), "nests JSON deeper than 64 levels");
  parse(&a, EVERYTHING, nested_list(&a, 63));
  fails_like(nested_list(&a, 64), "nests JSON deeper than 64 levels");
  fails_like(nested_list(&a, 2000), "nests JSON deeper than 64 levels");
  /* deeper than jansson's own limit: a syntax error */
  fails_like(nested_list(&a, 3000), "not valid JSON");
  af_arena_destroy(&a);
}

/* Regression: empty arrays and objects once left the depth count raised. */
Test(transcode, many_empty_containers_are_not_deep) {
  af_arena a;
  af_arena_init(&a);
  size_t cap = 100 * 6 + 64;
  char *json = af_arena_alloc(&a, cap), *p = json;
  p += snprintf(p, cap, "{\"list\":[");
  for (int i = 0; i < 100; i++)
    p += snprintf(p, cap - (size_t)(p - json), "%s[],{}", i ? "," : "");
  snprintf(p, cap - (size_t)(p - json), "]}");
  Everything *m = parse(&a, EVERYTHING, json);
  cr_expect_eq(m->list->n_values, 200);
  cr_expect_str_eq(write_json(&a, m), json);
  af_arena_destroy(&a);
}

Test(transcode, two_members_of_one_oneof) {
  fails("{\"text\":\"a\",\"detail\":{}}", AF_ERR_SERIALIZATION,
        "member detail cannot be set together with text: they are alternatives (one oneof), so "
        "set only one");
  fails_like("{\"detail\":{},\"text\":\"a\"}", "cannot be set together with");
}

/* ---- what the writer refuses ---- */

Test(transcode, writer_refuses_what_json_cannot_hold) {
  Everything m = APPFLOW__TEST__V1__EVERYTHING__INIT;
  m.score = NAN;
  write_fails(&m, "the response member score is NaN, which JSON cannot hold");
  m.score = 0;
  m.ratio = -INFINITY;
  write_fails(&m, "the response member ratio is infinite");
  m.ratio = 0;
  m.name = "ok\xff";
  write_fails(&m, "the response member name holds a string that is not UTF-8");
  m.name = "\xed\xa0\x80"; /* a surrogate */
  write_fails(&m, "not UTF-8");
  m.name = "";
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.nanos = 1000000000;
  m.created_at = &ts;
  write_fails(&m, "the response member createdAt is a Timestamp with nanos 1000000000");
}

Test(transcode, writer_refuses_deep_messages) {
  Inner chain[66];
  for (int i = 0; i < 66; i++) {
    Inner init = APPFLOW__TEST__V1__INNER__INIT;
    chain[i] = init;
    chain[i].child = i + 1 < 66 ? &chain[i + 1] : NULL;
  }
  write_fails(&chain[0], "nests deeper than 64 levels");
  af_arena a;
  af_arena_init(&a);
  chain[63].child = NULL; /* 64 levels */
  cr_expect(strlen(write_json(&a, &chain[0])) > 64 * 9);
  af_arena_destroy(&a);
}

Test(transcode, writer_escapes_strings) {
  af_arena a;
  af_arena_init(&a);
  Everything m = APPFLOW__TEST__V1__EVERYTHING__INIT;
  char *tags[] = {"\x01\x7f", "\"\\", "\xe2\x80\xa8", "</script>"};
  m.n_tags = 4;
  m.tags = tags;
  cr_expect_str_eq(write_json(&a, &m),
                   "{\"tags\":[\"\\u0001\x7f\",\"\\\"\\\\\",\"\xe2\x80\xa8\",\"</script>\"]}");
  af_arena_destroy(&a);
}

Test(transcode, writer_grows_past_the_inline_block) {
  af_arena a;
  af_arena_init(&a);
  Everything m = APPFLOW__TEST__V1__EVERYTHING__INIT;
  char *tags[2000];
  for (int i = 0; i < 2000; i++)
    tags[i] = "abcdefghijklmnopqrstuvwxyz";
  m.n_tags = 2000;
  m.tags = tags;
  const char *out = write_json(&a, &m);
  cr_expect_eq(strlen(out), strlen("{\"tags\":[]}") + 2000 * 28 + 1999);
  Everything *back = parse(&a, EVERYTHING, out);
  cr_expect_eq(back->n_tags, 2000);
  af_arena_destroy(&a);
}

Test(transcode, arena_exhaustion_is_internal) {
  af_arena a;
  af_arena_init(&a);
  cr_assert_not_null(af_arena_alloc(&a, AF_ARENA_LIMIT - 8192));
  size_t n = 20000;
  size_t cap = n * 4 + 32;
  char *json = malloc(cap), *p = json;
  cr_assert_not_null(json);
  p += snprintf(p, cap, "{\"tags\":[");
  for (size_t i = 0; i < n; i++)
    p += snprintf(p, cap - (size_t)(p - json), "%s\"x\"", i ? "," : "");
  snprintf(p, cap - (size_t)(p - json), "]}");
  af_error err = {0};
  ProtobufCMessage *m = NULL;
  cr_expect_eq(af_bridge_json_to_message(EVERYTHING, json, strlen(json), &a, &m, &err),
               AF_ERR_INTERNAL_SERVER);
  cr_expect_null(m);
  free(json);
  af_arena_destroy(&a);
}

/* ---- members bound to the path and query ---- */

static af_err bind(af_arena *a, void *m, const af_bridge_binding *b, size_t n, af_error *err) {
  return af_bridge_bind_members(m, b, n, a, err);
}

Test(transcode, bound_members_replace_the_body) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, "{\"name\":\"body\",\"tags\":[\"x\",\"y\",\"z\"]}");
  const char *name[] = {"path"}, *tags[] = {"a", "b"};
  af_bridge_binding b[] = {{"name", name, 1}, {"tags", tags, 2}};
  af_error err = {0};
  cr_assert_eq(bind(&a, m, b, 2, &err), AF_OK, "%s", err.message);
  cr_expect_str_eq(m->name, "path");
  cr_assert_eq(m->n_tags, 2);
  cr_expect_str_eq(m->tags[0], "a");
  cr_expect_str_eq(m->tags[1], "b");
  cr_expect_neq((void *)m->tags, (void *)tags); /* the message has an array of its own */
  cr_expect_str_eq(write_json(&a, m), "{\"name\":\"path\",\"tags\":[\"a\",\"b\"]}");
  af_arena_destroy(&a);
}

Test(transcode, bound_members_without_values_are_empty) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, "{\"name\":\"body\",\"tags\":[\"x\"],\"limit\":3}");
  af_bridge_binding b[] = {{"name", NULL, 0}, {"tags", NULL, 0}};
  af_error err = {0};
  cr_assert_eq(bind(&a, m, b, 2, &err), AF_OK, "%s", err.message);
  cr_expect_str_eq(m->name, "");
  cr_expect_eq(m->n_tags, 0);
  cr_expect_str_eq(write_json(&a, m), "{\"limit\":3}");
  af_arena_destroy(&a);
}

Test(transcode, a_string_member_takes_the_first_value) {
  af_arena a;
  af_arena_init(&a);
  Everything *m = parse(&a, EVERYTHING, "");
  const char *v[] = {"first", "second", ""};
  af_error err = {0};
  cr_assert_eq(bind(&a, m, &(af_bridge_binding){"name", v, 3}, 1, &err), AF_OK);
  cr_expect_str_eq(m->name, "first");
  const char *empty[] = {""}; /* an empty value is a value: the member is empty, not missing */
  cr_assert_eq(bind(&a, m, &(af_bridge_binding){"tags", empty, 1}, 1, &err), AF_OK);
  cr_assert_eq(m->n_tags, 1);
  cr_expect_str_eq(m->tags[0], "");
  cr_expect_eq(bind(&a, m, NULL, 0, &err), AF_OK);
  af_arena_destroy(&a);
}

Test(transcode, real_request_members_bind) {
  af_arena a;
  af_arena_init(&a);
  Appflow__V1__UntagResourceRequest *m =
      parse(&a, &appflow__v1__untag_resource_request__descriptor, "{\"resourceArn\":\"body\"}");
  const char *arn[] = {"arn:aws:appflow:us-east-1:000000000000:flow/f"}, *keys[] = {"k1", "k2"};
  af_bridge_binding b[] = {{"resourceArn", arn, 1}, {"tagKeys", keys, 2}};
  af_error err = {0};
  cr_assert_eq(bind(&a, m, b, 2, &err), AF_OK, "%s", err.message);
  cr_expect_str_eq(m->resource_arn, arn[0]);
  cr_assert_eq(m->n_tag_keys, 2);
  cr_expect_str_eq(m->tag_keys[1], "k2");
  af_arena_destroy(&a);
}

/* A route naming a member the message lacks, or one no string can fill, is a build mistake. */
Test(transcode, only_string_members_bind) {
  const char *cases[][2] = {
      {"nope", "appflow.test.v1.Everything has no string member nope to take from the "
               "request's path or query"},
      {"limit", "appflow.test.v1.Everything has no string member limit to take from the "
                "request's path or query"},
      {"labels", "appflow.test.v1.Everything has no string member labels to take from the "
                 "request's path or query"},
      {"text", "appflow.test.v1.Everything has no string member text to take from the "
               "request's path or query"},
      {"inner", "appflow.test.v1.Everything has no string member inner to take from the "
                "request's path or query"},
      {"blob", "appflow.test.v1.Everything has no string member blob to take from the "
               "request's path or query"},
      {"schedule_expression", "appflow.test.v1.Everything has no string member "
                              "schedule_expression to take from the request's path or query"},
      {"", "appflow.test.v1.Everything has no string member  to take from the request's path "
           "or query"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    af_arena a;
    af_arena_init(&a);
    Everything *m = parse(&a, EVERYTHING, "{\"limit\":1}");
    const char *v[] = {"1"};
    af_error err = {0};
    cr_expect_eq(bind(&a, m, &(af_bridge_binding){cases[i][0], v, 1}, 1, &err),
                 AF_ERR_INTERNAL_SERVER, "%s", cases[i][0]);
    cr_expect_str_eq(err.message, cases[i][1]);
    cr_expect_eq(m->limit, 1);
    af_arena_destroy(&a);
  }
}
