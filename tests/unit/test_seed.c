/* The seed reader: what it stores, and for each kind of bad input, the exact line, column and
 * message it reports. Every buffer is copied to a heap block of its exact length first, so
 * AddressSanitizer catches a read past the end (the reader gets no NUL terminator). */
#include "bridge/seed.h"

#include "appflowd/store/v1/records.pb-c.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One flow, as its store holds it. */
typedef struct stored {
  int trigger, status;
  bool has_description;
  char description[4200];
  size_t ntags;
  char keys[50][140];
  char values[50][280];
} stored;

static af_flows *new_service(void) {
  af_error e;
  af_flows *svc = af_flows_new(&(af_flows_config){0}, &e);
  cr_assert_not_null(svc, "af_flows_new: %s", e.message);
  return svc;
}

/* Loads json[0..len) from an exact-size heap copy; *count (may be NULL) gets the flows read. */
static int load_n(af_flows *svc, const char *json, size_t len, size_t *count, af_seed_error *err) {
  char *copy = malloc(len ? len : 1);
  cr_assert_not_null(copy);
  memcpy(copy, json, len);
  af_seed_result res;
  int rc = af_seed_load_buffer(svc, copy, len, &res, err);
  free(copy);
  if (count != NULL)
    *count = res.flows;
  return rc;
}

static int load(af_flows *svc, const char *json, size_t *count, af_seed_error *err) {
  return load_n(svc, json, strlen(json), count, err);
}

/* Loads json into a fresh service and expects success with `flows` flows. */
static af_flows *expect_ok(const char *json, size_t flows) {
  af_flows *svc = new_service();
  af_seed_error err;
  size_t count = 99;
  int rc = load(svc, json, &count, &err);
  cr_assert_eq(rc, 0, "%d:%d: %s", err.line, err.column, err.message);
  cr_assert_eq(count, flows);
  cr_assert_eq(af_flows_count(svc), flows);
  return svc;
}

/* Loads json[0..len) into a fresh service; expects failure at line:column with a message
 * containing `part`. */
static void expect_error_n(const char *json, size_t len, int line, int column, const char *part) {
  af_flows *svc = new_service();
  af_seed_error err;
  int rc = load_n(svc, json, len, NULL, &err);
  cr_assert_eq(rc, -1, "loaded, expected an error containing: %s", part);
  cr_assert(strstr(err.message, part) != NULL, "message \"%s\" lacks \"%s\"", err.message, part);
  cr_assert(err.line == line && err.column == column, "at %d:%d, expected %d:%d (%s)", err.line,
            err.column, line, column, err.message);
  af_flows_free(svc);
}

static void expect_error(const char *json, int line, int column, const char *part) {
  expect_error_n(json, strlen(json), line, column, part);
}

/* As expect_error, and the message must be exactly `message`. */
static void expect_message(const char *json, int line, int column, const char *message) {
  af_flows *svc = new_service();
  af_seed_error err;
  cr_assert_eq(load(svc, json, NULL, &err), -1);
  cr_assert_str_eq(err.message, message);
  cr_assert(err.line == line && err.column == column, "at %d:%d, expected %d:%d (%s)", err.line,
            err.column, line, column, err.message);
  af_flows_free(svc);
}

static af_store_verdict copy_flow(const af_flow_record *f, af_flow_record *next, void *ctx) {
  (void)next;
  stored *s = ctx;
  memset(s, 0, sizeof *s);
  s->trigger = f->trigger;
  s->status = f->status;
  s->has_description = f->description != NULL;
  if (f->description != NULL)
    snprintf(s->description, sizeof s->description, "%s", f->description);
  Appflowd__Store__V1__TagSet *ts =
      f->tags.len ? appflowd__store__v1__tag_set__unpack(NULL, f->tags.len, f->tags.data) : NULL;
  s->ntags = ts ? ts->n_tags : 0;
  for (size_t i = 0; i < s->ntags && i < 50; i++) {
    snprintf(s->keys[i], sizeof s->keys[i], "%s", ts->tags[i]->key);
    snprintf(s->values[i], sizeof s->values[i], "%s", ts->tags[i]->value);
  }
  appflowd__store__v1__tag_set__free_unpacked(ts, NULL);
  return AF_STORE_KEEP;
}

static void get_flow(af_flows *svc, const char *name, stored *out) {
  af_store_op op = {.key = name, .key_len = strlen(name), .rule = copy_flow, .ctx = out};
  af_store_rc rc = af_store_run(af_flows_store(svc), af_store_modify, &op);
  cr_assert_eq(rc, AF_STORE_OK, "%s: %d", name, rc);
}

/* The value of tag `key`, or NULL. */
static const char *tag(const stored *s, const char *key) {
  for (size_t i = 0; i < s->ntags; i++) {
    if (strcmp(s->keys[i], key) == 0)
      return s->values[i];
  }
  return NULL;
}

/* A string of n copies of c, NUL-terminated, in dst (at least n + 1 bytes). */
static char *repeat(char *dst, char c, size_t n) {
  memset(dst, c, n);
  dst[n] = '\0';
  return dst;
}

/* Every member before "description"/"tags": the next member's key is at column 69. */
#define P "[{\"flowName\": \"ab\", \"triggerType\": \"Event\", \"flowStatus\": \"Active\", "
#define DESC_COL 84 /* the value in P "\"description\": " */
#define TAGS_COL 77 /* the value in P "\"tags\": " */
#define FLOW(name, trigger, status)                                                                \
  "{\"flowName\": \"" name "\", \"triggerType\": \"" trigger "\", \"flowStatus\": \"" status "\"}"

#define SCHEDULED APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED
#define EVENT APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_EVENT
#define ON_DEMAND APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND
#define ACTIVE APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE

/* ---- what is stored ---- */

Test(seed, empty_array) {
  af_flows_free(expect_ok("[]", 0));
  af_flows_free(expect_ok(" \r\n\t[ \n ]\n\n", 0));
  af_flows_free(expect_ok("\xEF\xBB\xBF[]", 0));
}

Test(seed, minimal_flow) {
  af_flows *svc = expect_ok("[" FLOW("daily_sync", "Scheduled", "Active") "]", 1);
  stored s;
  get_flow(svc, "daily_sync", &s);
  cr_assert_eq(s.trigger, SCHEDULED);
  cr_assert_eq(s.status, ACTIVE);
  cr_assert(!s.has_description);
  cr_assert_eq(s.ntags, 0);
  af_flows_free(svc);

  /* Any member order, no whitespace. */
  svc = expect_ok("[{\"flowStatus\":\"Draft\",\"triggerType\":\"Event\",\"flowName\":\"x1\"}]", 1);
  get_flow(svc, "x1", &s);
  cr_assert_eq(s.trigger, EVENT);
  cr_assert_eq(s.status, APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DRAFT);
  af_flows_free(svc);
}

Test(seed, every_trigger_and_status) {
  static const char *const triggers[] = {"Scheduled", "Event", "OnDemand"};
  static const int trigger_values[] = {SCHEDULED, EVENT, ON_DEMAND};
  static const char *const statuses[] = {"Active", "Deprecated", "Deleted",
                                         "Draft",  "Errored",    "Suspended"};
  static const int status_values[] = {APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE,
                                      APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DEPRECATED,
                                      APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DELETED,
                                      APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DRAFT,
                                      APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ERRORED,
                                      APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED};
  char json[4096];
  size_t n = (size_t)snprintf(json, sizeof json, "[");
  for (int t = 0; t < 3; t++) {
    for (int s = 0; s < 6; s++)
      n += (size_t)snprintf(json + n, sizeof json - n,
                            "%s\n{\"flowName\": \"f_%d_%d\", \"triggerType\": \"%s\", "
                            "\"flowStatus\": \"%s\"}",
                            n > 1 ? "," : "", t, s, triggers[t], statuses[s]);
  }
  snprintf(json + n, sizeof json - n, "\n]\n");
  af_flows *svc = expect_ok(json, 18);
  for (int t = 0; t < 3; t++) {
    for (int s = 0; s < 6; s++) {
      char name[16];
      stored got;
      snprintf(name, sizeof name, "f_%d_%d", t, s);
      get_flow(svc, name, &got);
      cr_assert_eq(got.trigger, trigger_values[t], "%s", name);
      cr_assert_eq(got.status, status_values[s], "%s", name);
    }
  }
  af_flows_free(svc);
}

Test(seed, description_and_tags) {
  af_flows *svc = expect_ok(
      "[{\"flowName\": \"tagged\", \"triggerType\": \"Event\", \"flowStatus\": \"Active\",\n"
      "  \"description\": \"Copies accounts, nightly! @team #1 - ok? yes.\",\n"
      "  \"tags\": {\"team\": \"data\", \"a,b-c./0:9;<=_Z\": \"v a_l+u-e=.:/@,;<\", \"empty\": "
      "\"\"}},\n"
      " {\"flowName\": \"bare\", \"triggerType\": \"Event\", \"flowStatus\": \"Active\",\n"
      "  \"description\": \"\", \"tags\": {}}]",
      2);
  stored s;
  get_flow(svc, "tagged", &s);
  cr_assert(s.has_description);
  cr_assert_str_eq(s.description, "Copies accounts, nightly! @team #1 - ok? yes.");
  cr_assert_eq(s.ntags, 3);
  cr_assert_str_eq(tag(&s, "team"), "data");
  cr_assert_str_eq(tag(&s, "a,b-c./0:9;<=_Z"), "v a_l+u-e=.:/@,;<");
  cr_assert_str_eq(tag(&s, "empty"), "");
  get_flow(svc, "bare", &s);
  cr_assert(s.has_description);
  cr_assert_str_eq(s.description, "");
  cr_assert_eq(s.ntags, 0);
  af_flows_free(svc);
}

Test(seed, escapes_decoded) {
  af_flows *svc =
      expect_ok("[{\"flow\\u004eame\": \"a\\u0062\\u0063\", \"triggerType\": \"Sch\\u0065duled\", "
                "\"flowStatus\": \"Active\", \"description\": "
                "\"tab\\there\\nnew\\r\\f\\u000b\\u0020line\\u002E\", "
                "\"tags\": {\"k\\u003a\\/x\": \"v\\/\\u0040\\u002B\"}}]",
                1);
  stored s;
  get_flow(svc, "abc", &s);
  cr_assert_eq(s.trigger, SCHEDULED);
  cr_assert_str_eq(s.description, "tab\there\nnew\r\f\v line.");
  cr_assert_str_eq(tag(&s, "k:/x"), "v/@+");
  af_flows_free(svc);
}

Test(seed, surrogate_pairs_decoded_to_utf8) {
  /* Every pattern is ASCII-only, so a decoded character shows in the error that rejects it. */
  expect_error(P "\"description\": \"ok \\ud83d\\ude00\"}]", 1, DESC_COL,
               "description contains '\\xf0\\x9f\\x98\\x80', which is not allowed");
  expect_error(P "\"description\": \"\\uD83D\\uDE00\"}]", 1, DESC_COL, "'\\xf0\\x9f\\x98\\x80'");
  expect_error(P "\"description\": \"\\u00e9\"}]", 1, DESC_COL, "'\\xc3\\xa9'");
  expect_error(P "\"description\": \"\\u20AC\"}]", 1, DESC_COL, "'\\xe2\\x82\\xac'");
  expect_error(P "\"description\": \"\\udbff\\udfff\"}]", 1, DESC_COL, "'\\xf4\\x8f\\xbf\\xbf'");
}

Test(seed, flows_before_an_error_stay_loaded) {
  af_flows *svc = new_service();
  af_seed_error err;
  size_t count = 99;
  int rc = load(svc,
                "[" FLOW("one", "Event", "Active") ",\n" FLOW(
                    "two", "Event", "Active") ",\n"
                                              "{\"flowName\": \"three\"}]",
                &count, &err);
  cr_assert_eq(rc, -1);
  cr_assert_eq(count, 2);
  cr_assert_eq(af_flows_count(svc), 2);
  af_flows_free(svc);
}

/* ---- errors, each at its line and column ---- */

Test(seed, syntax_error_mid_file) {
  expect_message(
      "[\n"
      "  " FLOW("ab", "Event", "Active") ",\n"
                                         "  {\"flowName\": \"cd\" \"triggerType\": \"Event\"}\n"
                                         "]\n",
      3, 21, "expected ',' or '}' after a member, found '\"'");
  expect_message("[" FLOW("ab", "Event", "Active") "\n  x]", 2, 3,
                 "expected ',' or ']' after a flow, found 'x'");
  expect_message("[" FLOW("ab", "Event", "Active") " " FLOW("cd", "Event", "Active") "]", 1, 69,
                 "expected ',' or ']' after a flow, found '{'");
  expect_message("[" FLOW("ab", "Event", "Active") ",]", 1, 69,
                 "expected another flow after ',', found ']' (trailing comma)");
  expect_message("[{\"flowName\" \"ab\"}]", 1, 14, "expected ':' after \"flowName\", found '\"'");
  expect_message("[{\"flowName\": \"ab\",}]", 1, 20,
                 "expected a member name in double quotes, found '}'");
  expect_message("[{flowName: \"ab\"}]", 1, 3,
                 "expected a member name in double quotes, found 'f'");
  expect_message("[{\"flowName\": 'ab'}]", 1, 15, "flowName must be a string, found '''");
  expect_message("", 1, 1, "expected '[' to start the array of flows, found end of file");
  expect_message("  \n  ", 2, 3, "expected '[' to start the array of flows, found end of file");
  expect_message("{}", 1, 1, "expected '[' to start the array of flows, found an object");
  expect_message("[\"ab\"]", 1, 2, "expected '{' to start a flow, found a string");
  expect_message("[[]]", 1, 2, "expected '{' to start a flow, found an array");
  expect_message(P "\"tags\": {\"k\" \"v\"}}]", 1, 82, "expected ':' after a tag key, found '\"'");
  expect_message(P "\"tags\": {\"k\": \"v\" \"j\": \"w\"}}]", 1, 87,
                 "expected ',' or '}' after a tag, found '\"'");
  expect_message(P "\"tags\": {k: \"v\"}}]", 1, 78,
                 "expected a tag key in double quotes, found 'k'");
  expect_message(P "\"tags\": {\"k\": \"v\",}}]", 1, 87,
                 "expected a tag key in double quotes, found '}'");
}

Test(seed, unknown_trigger) {
  expect_message(
      "[{\"flowName\": \"ab\", \"triggerType\": \"Hourly\", \"flowStatus\": \"Active\"}]", 1, 36,
      "unknown triggerType \"Hourly\": expected \"Scheduled\", \"Event\" or \"OnDemand\"");
  expect_error("[{\"flowName\": \"ab\", \"triggerType\": \"scheduled\"}]", 1, 36,
               "unknown triggerType \"scheduled\"");
  expect_error("[{\"flowName\": \"ab\", \"triggerType\": \"\"}]", 1, 36,
               "unknown triggerType \"\"");
  /* Long values stop decoding at 33 characters and show what was read. */
  expect_error("[{\"flowName\": \"ab\", \"triggerType\": "
               "\"ScheduledScheduledScheduledScheduledScheduled\"}]",
               1, 36, "unknown triggerType \"ScheduledScheduledScheduledSchedu...\"");
}

Test(seed, unknown_status) {
  expect_message(
      "[{\"flowName\": \"ab\", \"triggerType\": \"Event\", \"flowStatus\": \"Running\"}]", 1, 59,
      "unknown flowStatus \"Running\": expected \"Active\", \"Deprecated\", \"Deleted\", "
      "\"Draft\", \"Errored\" or \"Suspended\"");
  expect_error("[{\"flowName\": \"ab\", \"triggerType\": \"Event\", \"flowStatus\": \"ACTIVE\"}]",
               1, 59, "unknown flowStatus \"ACTIVE\"");
}

Test(seed, invalid_name) {
  expect_error(
      "[{\"flowName\": \"bad name\", \"triggerType\": \"Event\", \"flowStatus\": \"Active\"}]", 1,
      15, "Value 'bad name' at 'flowName' failed to satisfy constraint");
  expect_error("[{\"flowName\": \"_ab\"}]", 1, 15, "Value '_ab' at 'flowName'");
  expect_error("[\n {\"flowName\": \"a\\u00e9\"}]", 2, 15, "Value 'a\\xc3\\xa9' at 'flowName'");
  expect_error("[{\"flowName\": \"\"}]", 1, 15, "'flowName'");
}

Test(seed, one_char_name) {
  expect_error("[{\"flowName\": \"a\", \"triggerType\": \"Event\", \"flowStatus\": \"Active\"}]", 1,
               15, "Value 'a' at 'flowName' failed to satisfy constraint");
}

Test(seed, name_lengths) {
  char name[320], json[640];
  snprintf(json, sizeof json,
           "[{\"flowName\": \"%s\", \"triggerType\": \"Event\", \"flowStatus\": \"Active\"}]",
           repeat(name, 'n', 256));
  af_flows *svc = expect_ok(json, 1);
  stored s;
  get_flow(svc, name, &s);
  af_flows_free(svc);
  snprintf(json, sizeof json,
           "[{\"flowName\": \"%s\", \"triggerType\": \"Event\", \"flowStatus\": \"Active\"}]",
           repeat(name, 'n', 257));
  expect_error(json, 1, 15, "Member must have length less than or equal to 256");
  /* Also when the rest of an overlong name would be malformed: it is never read. */
  snprintf(json, sizeof json, "[{\"flowName\": \"%s\\q", repeat(name, 'n', 300));
  expect_error(json, 1, 15, "less than or equal to 256");
}

Test(seed, duplicate_name) {
  const char *json = "[\n" FLOW("dup1", "Event", "Active") ",\n" FLOW(
      "other", "Event", "Active") ",\n"
                                  "  " FLOW("dup1", "Scheduled", "Draft") "\n]";
  expect_message(json, 4, 16, "duplicate flowName 'dup1' (first defined at line 2)");

  /* The same name spelled with an escape. */
  expect_message(
      "[" FLOW("dup1", "Event", "Active") ",\n\n " FLOW("dup\\u0031", "Event", "Active") "]", 3, 15,
      "duplicate flowName 'dup1' (first defined at line 1)");

  /* Pretty-printed: the line is the name's, not the brace's. */
  expect_message(
      "[\n  {\n    \"triggerType\": \"Event\",\n    \"flowName\": \"p1\",\n"
      "    \"flowStatus\": \"Active\"\n  },\n  {\n"
      "    \"flowName\": \"p1\", \"triggerType\": \"Event\", \"flowStatus\": \"Active\"\n  }\n]",
      8, 17, "duplicate flowName 'p1' (first defined at line 4)");
}

/* A name the store held before this load is kept as it is, not an error: a durable store
 * starts with what the last run left, and the seed adds only what is new. */
Test(seed, a_stored_flow_is_kept) {
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  const char *first = "[" FLOW("dup1", "Event", "Suspended") "]";
  cr_assert_eq(af_seed_load_buffer(svc, first, strlen(first), &res, &err), 0);
  const char *second =
      "[\n" FLOW("new1", "Event", "Active") ",\n" FLOW("dup1", "Event", "Active") "]";
  cr_assert_eq(af_seed_load_buffer(svc, second, strlen(second), &res, &err), 0, "%s", err.message);
  cr_expect_eq(res.flows, 2);
  cr_expect_eq(res.added, 1);
  cr_expect_eq(res.kept, 1);
  cr_expect_eq(af_flows_count(svc), 2);
  stored s;
  get_flow(svc, "dup1", &s);
  cr_expect_eq(s.status, APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED, "kept as it was");
  af_flows_free(svc);
}

Test(seed, unknown_member) {
  expect_message("[{\"flowName\": \"ab\", \"schedule\": \"x\"}]", 1, 21,
                 "unknown member \"schedule\": expected \"flowName\", \"triggerType\", "
                 "\"flowStatus\", \"description\" or \"tags\"");
  expect_error("[{\"FlowName\": \"ab\"}]", 1, 3, "unknown member \"FlowName\"");
  expect_error("[{\"\": \"ab\"}]", 1, 3, "unknown member \"\"");
  expect_error("[{\"flowName\\u0000\": \"ab\"}]", 1, 12, "\\u0000 is not allowed");
  expect_error("[{\"aVeryLongMemberNameThatGoesOnAndOnAndOn\": 1}]", 1, 3,
               "unknown member \"aVeryLongMemberNameThatGoesOnAndO...\"");
}

Test(seed, duplicate_member) {
  expect_message("[{\"flowName\": \"ab\", \"flowName\": \"cd\", \"triggerType\": \"Event\", "
                 "\"flowStatus\": \"Active\"}]",
                 1, 21, "duplicate member \"flowName\": a flow may give each member once");
  expect_error(P "\"tags\": {}, \"tags\": {}}]", 1, 81, "duplicate member \"tags\"");
  expect_error(P "\"flowStatus\": \"Active\"}]", 1, 69, "duplicate member \"flowStatus\"");
}

Test(seed, wrong_types) {
  expect_message("[{\"flowName\": 12}]", 1, 15, "flowName must be a string, found a number");
  expect_message("[{\"flowName\": -1}]", 1, 15, "flowName must be a string, found a number");
  expect_message("[{\"flowName\": [\"ab\"]}]", 1, 15, "flowName must be a string, found an array");
  expect_message("[{\"flowName\": \"ab\", \"triggerType\": null}]", 1, 36,
                 "triggerType must be a string (\"Scheduled\", \"Event\" or \"OnDemand\"), found "
                 "null");
  expect_message("[{\"flowName\": \"ab\", \"triggerType\": \"Event\", \"flowStatus\": true}]", 1,
                 59,
                 "flowStatus must be a string (\"Active\", \"Deprecated\", \"Deleted\", \"Draft\", "
                 "\"Errored\" or \"Suspended\"), found true");
  expect_error("[{\"flowName\": \"ab\", \"triggerType\": \"Event\", \"flowStatus\": false}]", 1, 59,
               "found false");
  expect_message(P "\"description\": {}}]", 1, DESC_COL,
                 "description must be a string, found an object");
  expect_message(P "\"description\": null}]", 1, DESC_COL,
                 "description must be a string, found null");
  expect_message(P "\"tags\": []}]", 1, TAGS_COL,
                 "tags must be an object of tag keys to string values, found an array");
  expect_message(P "\"tags\": null}]", 1, TAGS_COL,
                 "tags must be an object of tag keys to string values, found null");
  expect_message(P "\"tags\": {\"k\": 1}}]", 1, 83, "a tag value must be a string, found a number");
  expect_message(P "\"tags\": {\"k\": null}}]", 1, 83, "a tag value must be a string, found null");
  expect_message("[{\"flowName\": nul}]", 1, 15, "flowName must be a string, found 'n'");
}

Test(seed, missing_member) {
  expect_message("[{\"flowName\": \"ab\", \"triggerType\": \"Event\"}]", 1, 2,
                 "missing required member \"flowStatus\"");
  expect_message("[{}]", 1, 2, "missing required member \"flowName\"");
  expect_message("[ { } ]", 1, 3, "missing required member \"flowName\"");
  expect_message("[\n  {\"flowName\": \"ab\",\n   \"flowStatus\": \"Active\"}\n]", 2, 3,
                 "missing required member \"triggerType\"");
  expect_message("[{\"triggerType\": \"Event\", \"flowStatus\": \"Active\", \"tags\": {}}]", 1, 2,
                 "missing required member \"flowName\"");
}

Test(seed, trailing_garbage) {
  expect_message("[] x", 1, 4, "unexpected 'x' after the closing ']': expected end of file");
  expect_message("[]]", 1, 3, "unexpected ']' after the closing ']': expected end of file");
  expect_message("[],", 1, 3, "unexpected ',' after the closing ']': expected end of file");
  expect_error("[" FLOW("ab", "Event", "Active") "]\n{", 2, 1,
               "unexpected '{' after the closing ']'");
  expect_error("[]\n\n  0", 3, 3, "unexpected '0'");
  expect_error_n("[] \0", 4, 1, 4, "unexpected '\\x00'");
}

Test(seed, truncated_file) {
  expect_message("[", 1, 2, "expected '{' to start a flow, found end of file");
  expect_message("[{", 1, 3, "expected a member name in double quotes, found end of file");
  expect_message("[{\"flowName\"", 1, 13, "expected ':' after \"flowName\", found end of file");
  expect_message("[{\"flowName\": ", 1, 15, "flowName must be a string, found end of file");
  expect_message("[{\"flowName\": \"a", 1, 17, "unexpected end of file inside a string");
  expect_message("[{\"flowName\": \"ab\\", 1, 19, "unexpected end of file inside a string");
  expect_message("[{\"flowName\": \"ab\\u00", 1, 22, "unexpected end of file inside a string");
  expect_message("[{\"flowName\": \"ab\\ud83d", 1, 24, "unexpected end of file inside a string");
  expect_message("[{\"flowName\": \"ab\\ud83d\\", 1, 25, "unexpected end of file inside a string");
  expect_message("[{\"flowName\": \"a\xc3", 1, 18, "unexpected end of file inside a string");
  expect_message("[{\"flowName\": \"a\xf0\x9f\x98", 1, 18,
                 "unexpected end of file inside a string");
  expect_message("[{\"flowN", 1, 9, "unexpected end of file inside a string");
  expect_message("[{\"flowName\": \"ab\"", 1, 19,
                 "expected ',' or '}' after a member, found end of file");
  expect_message("[{\"flowName\": \"ab\",", 1, 20,
                 "expected a member name in double quotes, found end of file");
  expect_message(P "\"tags\": {", 1, 78, "expected a tag key in double quotes, found end of file");
  expect_message(P "\"tags\": {\"k\": \"v\"", 1, 86,
                 "expected ',' or '}' after a tag, found end of file");
  expect_message("[\n" FLOW("ab", "Event", "Active"), 2, 67,
                 "expected ',' or ']' after a flow, found end of file");
  expect_message("[\n" FLOW("ab", "Event", "Active") ",\n", 3, 1,
                 "expected '{' to start a flow, found end of file");

  /* Every proper prefix of a valid file fails, with a position inside it. */
  const char *full = P "\"description\": \"x\\u00e9\\ud83d\\ude00\", \"tags\": {\"k\": \"v\"}}]";
  size_t len = strlen(full);
  for (size_t n = 0; n < len; n++) {
    af_flows *svc = new_service();
    af_seed_error err;
    cr_assert_eq(load_n(svc, full, n, NULL, &err), -1, "prefix of %zu bytes loaded", n);
    cr_assert(err.line == 1 && err.column >= 1 && (size_t)err.column <= n + 1,
              "prefix %zu: at %d:%d", n, err.line, err.column);
    cr_assert(err.message[0] != '\0');
    af_flows_free(svc);
  }
}

Test(seed, invalid_utf8) {
  expect_message(P "\"description\": \"\xff\"}]", 1, DESC_COL + 1,
                 "invalid UTF-8 in a string (byte \\xff): the file must be UTF-8");
  expect_error("[{\"flowName\": \"a\xc0\xaf\"}]", 1, 17, "invalid UTF-8 in a string (byte \\xc0)");
  expect_error(P "\"description\": \"\xed\xa0\x80\"}]", 1, DESC_COL + 1, "(byte \\xed)");
  expect_error(P "\"description\": \"\xe2\x82\"}]", 1, DESC_COL + 1, "(byte \\xe2)");
  expect_error(P "\"description\": \"\xf4\x90\x80\x80\"}]", 1, DESC_COL + 1, "(byte \\xf4)");
  expect_error(P "\"description\": \"\xe0\x80\x80\"}]", 1, DESC_COL + 1, "(byte \\xe0)");
  expect_error(P "\"description\": \"ab\x80\"}]", 1, DESC_COL + 3, "(byte \\x80)");
  expect_error(P "\"tags\": {\"\xfe\": \"v\"}}]", 1, TAGS_COL + 2, "(byte \\xfe)");
  /* Outside strings a non-ASCII byte is just an unexpected character. */
  expect_message("[\xff]", 1, 2, "expected '{' to start a flow, found '\\xff'");
  expect_message("[\xc3\xa9]", 1, 2, "expected '{' to start a flow, found '\\xc3\\xa9'");
}

Test(seed, lone_surrogate) {
  expect_error(P "\"description\": \"\\ud83d\"}]", 1, DESC_COL + 1,
               "lone surrogate \\ud83d: expected a low surrogate \\uDC00-\\uDFFF after it");
  expect_error(P "\"description\": \"\\ude00\"}]", 1, DESC_COL + 1,
               "lone surrogate \\ude00: a low surrogate must follow a high one");
  expect_error(P "\"description\": \"\\ud83dx\"}]", 1, DESC_COL + 1, "lone surrogate \\ud83d");
  expect_error(P "\"description\": \"\\ud83d\\u0041\"}]", 1, DESC_COL + 1,
               "lone surrogate \\ud83d");
  expect_error(P "\"description\": \"ab\\uD83D\\uD83D\"}]", 1, DESC_COL + 3,
               "lone surrogate \\uD83D");
  expect_error(P "\"description\": \"\\ud83d\\n\"}]", 1, DESC_COL + 1, "lone surrogate");
}

Test(seed, nul_escape) {
  expect_message(P "\"description\": \"a\\u0000\"}]", 1, DESC_COL + 2,
                 "\\u0000 is not allowed in a string: a NUL character cannot be stored");
  expect_error("[{\"flowName\": \"a\\u0000b\"}]", 1, 17, "\\u0000 is not allowed");
}

Test(seed, control_characters) {
  expect_message(P "\"description\": \"a\tb\"}]", 1, DESC_COL + 2,
                 "control character \\x09 in a string: write it as an escape such as \\n");
  expect_error(P "\"description\": \"a\nb\"}]", 1, DESC_COL + 2, "control character \\x0a");
  const char raw_nul[] = P "\"description\": \"a\0b\"}]";
  expect_error_n(raw_nul, sizeof raw_nul - 1, 1, DESC_COL + 2, "control character \\x00");
}

Test(seed, bad_escapes) {
  expect_message(P "\"description\": \"\\x41\"}]", 1, DESC_COL + 1,
                 "invalid escape '\\x' in a string: expected \\\" \\\\ \\/ \\b \\f \\n \\r \\t or "
                 "\\uXXXX");
  expect_error(P "\"description\": \"\\U0041\"}]", 1, DESC_COL + 1, "invalid escape '\\U'");
  expect_message(P "\"description\": \"\\u12G4\"}]", 1, DESC_COL + 1,
                 "invalid \\u escape: expected 4 hex digits after \\u");
  expect_error(P "\"description\": \"\\u12\"}]", 1, DESC_COL + 1, "expected 4 hex digits");
  expect_error(P "\"description\": \"\\ud83d\\u12\"}]", 1, DESC_COL + 7, "expected 4 hex digits");
}

/* P plus "tags" with n tags k0..k(n-1); returns the column of tag `at`'s key (0-based). */
static size_t tags_json(char *json, size_t size, int n, int at) {
  size_t len = (size_t)snprintf(json, size, P "\"tags\": {"), col = 0;
  for (int i = 0; i < n; i++) {
    if (i == at)
      col = len + (i > 0 ? 2 : 0) + 1;
    len += (size_t)snprintf(json + len, size - len, "%s\"k%d\": \"v\"", i > 0 ? ", " : "", i);
  }
  snprintf(json + len, size - len, "}}]");
  return col;
}

Test(seed, tag_count_limit) {
  char json[2048];
  tags_json(json, sizeof json, 50, 0);
  af_flows *svc = expect_ok(json, 1);
  stored s;
  get_flow(svc, "ab", &s);
  cr_assert_eq(s.ntags, 50);
  cr_assert_str_eq(tag(&s, "k49"), "v");
  af_flows_free(svc);
  size_t col = tags_json(json, sizeof json, 51, 50);
  expect_message(json, 1, (int)col, "too many tags: at most 50 per flow");
}

Test(seed, tag_key_limits) {
  char key[200], json[1200];
  snprintf(json, sizeof json, P "\"tags\": {\"%s\": \"v\"}}]", repeat(key, 'k', 128));
  af_flows *svc = expect_ok(json, 1);
  stored s;
  get_flow(svc, "ab", &s);
  cr_assert_str_eq(tag(&s, key), "v");
  af_flows_free(svc);
  snprintf(json, sizeof json, P "\"tags\": {\"%s\": \"v\"}}]", repeat(key, 'k', 129));
  expect_error(json, 1, TAGS_COL + 1, "\" is too long: at most 128 characters");
  expect_message(P "\"tags\": {\"\": \"v\"}}]", 1, TAGS_COL + 1,
                 "tag key is empty: expected 1 to 128 characters");
  expect_message(P "\"tags\": {\"aws:team\": \"v\"}}]", 1, TAGS_COL + 1,
                 "tag key \"aws:team\" must not start with \"aws:\", which AWS reserves");
  expect_message(P "\"tags\": {\"a b\": \"v\"}}]", 1, TAGS_COL + 1,
                 "tag key \"a b\" contains ' ', which is not allowed: expected letters, digits "
                 "and _ . : / + , - ; < =");
  expect_error(P "\"tags\": {\"k@\": \"v\"}}]", 1, TAGS_COL + 1, "contains '@'");
  expect_error(P "\"tags\": {\"k>\": \"v\"}}]", 1, TAGS_COL + 1, "contains '>'");
  expect_error(P "\"tags\": {\"k*\": \"v\"}}]", 1, TAGS_COL + 1, "contains '*'");
  expect_error(P "\"tags\": {\"k\\u00e9\": \"v\"}}]", 1, TAGS_COL + 1, "contains '\\xc3\\xa9'");
  expect_message(P "\"tags\": {\"k\": \"v\", \"k\": \"w\"}}]", 1, 88, "duplicate tag key \"k\"");
  expect_error(P "\"tags\": {\"k\": \"v\", \"\\u006b\": \"w\"}}]", 1, 88,
               "duplicate tag key \"k\"");
  /* Only the exact lower-case prefix is reserved, as in the AWS pattern. */
  af_flows_free(
      expect_ok(P "\"tags\": {\"aws\": \"v\", \"AWS:x\": \"v\", \"x:aws:\": \"v\"}}]", 1));
}

Test(seed, tag_value_limits) {
  char value[300], json[1200];
  snprintf(json, sizeof json, P "\"tags\": {\"k\": \"%s\"}}]", repeat(value, 'v', 256));
  af_flows *svc = expect_ok(json, 1);
  stored s;
  get_flow(svc, "ab", &s);
  cr_assert_str_eq(tag(&s, "k"), value);
  af_flows_free(svc);
  snprintf(json, sizeof json, P "\"tags\": {\"k\": \"%s\"}}]", repeat(value, 'v', 257));
  expect_message(json, 1, 83, "value of tag \"k\" is too long: at most 256 characters");
  expect_message(P "\"tags\": {\"k\": \"v!\"}}]", 1, 83,
                 "value of tag \"k\" contains '!', which is not allowed: expected letters, digits, "
                 "whitespace and _ . : / @ + , - ; < =");
  expect_error(P "\"tags\": {\"k\": \"a>b\"}}]", 1, 83, "contains '>'");
  expect_error(P "\"tags\": {\"k\": \"\\\"\"}}]", 1, 83, "contains '\"'");
}

Test(seed, description_limits) {
  char text[2100], json[2300];
  snprintf(json, sizeof json, P "\"description\": \"%s\"}]", repeat(text, 'd', 2048));
  af_flows *svc = expect_ok(json, 1);
  stored s;
  get_flow(svc, "ab", &s);
  cr_assert_str_eq(s.description, text);
  af_flows_free(svc);
  snprintf(json, sizeof json, P "\"description\": \"%s\"}]", repeat(text, 'd', 2049));
  expect_message(json, 1, DESC_COL, "description is too long: at most 2048 characters");
  expect_message(P "\"description\": \"a;b\"}]", 1, DESC_COL,
                 "description contains ';', which is not allowed: expected letters, digits, "
                 "whitespace and _ ! @ # - . ? ,");
  expect_error(P "\"description\": \"(x)\"}]", 1, DESC_COL, "contains '('");
  expect_error(P "\"description\": \"it's\"}]", 1, DESC_COL, "contains '''");
  expect_error(P "\"description\": \"caf\xc3\xa9\"}]", 1, DESC_COL, "contains '\\xc3\\xa9'");
  expect_error(P "\"description\": \"a\\\\b\"}]", 1, DESC_COL, "contains '\\x5c'");
}

Test(seed, column_counts_code_points) {
  /* é is 2 bytes, € 3, 😀 4: the bad escape is the 23rd character of line 3, its 29th byte. */
  expect_message(
      "[\n"
      "  {\"flowName\": \"ab\", \"triggerType\": \"Event\", \"flowStatus\": \"Active\",\n"
      "   \"description\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\q\"}\n"
      "]",
      3, 23,
      "invalid escape '\\q' in a string: expected \\\" \\\\ \\/ \\b \\f \\n \\r \\t or "
      "\\uXXXX");
  expect_error("[\n  {\"flowName\": \"\xc3\xa9\xc3\xa9\xff\"}]", 2, 19, "invalid UTF-8");
  /* A CR before the LF belongs to the line it ends. */
  expect_error("[\r\n  x]", 2, 3, "found 'x'");
  /* A byte order mark is not a column. */
  expect_error("\xEF\xBB\xBF[x]", 1, 2, "found 'x'");
}

/* ---- files ---- */

Test(seed, load_file_errors) {
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res = {99, 99, 99};
  cr_assert_eq(af_seed_load_file(svc, "/nonexistent/appflowd/seed.json", &res, &err), -1);
  cr_assert_eq(err.line, 0);
  cr_assert_eq(err.column, 0);
  cr_assert_str_eq(err.message, "cannot open the seed file: No such file or directory");
  cr_assert_eq(res.flows, 0);
  cr_assert_eq(af_seed_load_file(svc, "/", &res, &err), -1);
  cr_assert_eq(err.line, 0);
  cr_assert_str_eq(err.message, "cannot read the seed file: Is a directory");
  af_flows_free(svc);
}

Test(seed, load_file) {
  char path[] = "/tmp/test_seed_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  const char *json =
      "[\n" FLOW("f1", "Event", "Active") ",\n" FLOW("f2", "OnDemand", "Draft") "\n]\n";
  cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
  close(fd);
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  int rc = af_seed_load_file(svc, path, &res, &err);
  unlink(path);
  cr_assert_eq(rc, 0, "%d:%d: %s", err.line, err.column, err.message);
  cr_assert_eq(res.flows, 2);
  cr_assert_eq(res.added, 2);
  stored s;
  get_flow(svc, "f2", &s);
  cr_assert_eq(s.trigger, ON_DEMAND);
  af_flows_free(svc);
}

/* A file larger than what the loader drops from memory at a time (8 MiB): every flow loads,
 * and an error after the dropped part still gets its line and column, and names the first
 * definition of a repeated name, which lies in the dropped part. */
Test(seed, large_file_loads_and_reports_positions_after_dropped_text) {
  char path[] = "/tmp/test_seed_XXXXXX";
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "w");
  cr_assert_not_null(f);
  enum { N = 150000 }; /* ~75 bytes each: ~11 MB */
  fputs("[\n", f);
  for (int i = 0; i < N; i++)
    fprintf(f,
            "{\"flowName\": \"flow_%06d\", \"triggerType\": \"Scheduled\", "
            "\"flowStatus\": \"Active\"},\n",
            i);
  fputs("  {\"flowName\": \"flow_000001\", \"triggerType\": \"Event\", \"flowStatus\": "
        "\"Active\"}\n]\n",
        f);
  fclose(f);
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  int rc = af_seed_load_file(svc, path, &res, &err);
  unlink(path);
  cr_assert_eq(rc, -1);
  cr_expect_eq(res.flows, N);
  cr_expect_eq(err.line, N + 2, "line %d", err.line);
  cr_expect(strstr(err.message, "flow_000001") != NULL, "%s", err.message);
  cr_expect(strstr(err.message, "line 3") != NULL, "names the first definition: %s", err.message);
  af_flows_free(svc);
}

#ifndef AF_SOURCE_DIR
#error "tests/CMakeLists.txt must define AF_SOURCE_DIR as the repository root for test_seed"
#endif

Test(seed, examples_file) {
  static const struct {
    const char *name;
    int trigger, status;
  } demo[] = {
      {"demo_scheduled", SCHEDULED, ACTIVE},
      {"demo_event", EVENT, ACTIVE},
      {"demo_errored", SCHEDULED, APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ERRORED},
      {"demo_suspended", EVENT, APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED},
      {"demo_draft", SCHEDULED, APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DRAFT},
      {"demo_deprecated", EVENT, APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DEPRECATED},
      {"demo_ondemand", ON_DEMAND, ACTIVE},
  };
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  int rc = af_seed_load_file(svc, AF_SOURCE_DIR "/examples/flows.json", &res, &err);
  cr_assert_eq(rc, 0, "examples/flows.json:%d:%d: %s", err.line, err.column, err.message);
  cr_assert_eq(res.flows, 7);
  for (size_t i = 0; i < sizeof demo / sizeof demo[0]; i++) {
    stored s;
    get_flow(svc, demo[i].name, &s);
    cr_assert_eq(s.trigger, demo[i].trigger, "%s", demo[i].name);
    cr_assert_eq(s.status, demo[i].status, "%s", demo[i].name);
  }
  af_flows_free(svc);
}

/* ---- robustness ---- */

/* Every byte of a valid file replaced by each of a few troublesome bytes: the reader must
 * neither crash nor read out of bounds (ASan), and every failure must say where. */
Test(seed, mutations_never_crash) {
  static const char bytes[] = {'\0', '"', '\\', '{', '}', '[',        ']',        ',',       ':',
                               'x',  ' ', '\n', 'u', '0', (char)0xff, (char)0xc3, (char)0xed};
  const char *full = "[" FLOW(
      "m1", "Event", "Active") ",\n{\"flowName\": \"m\\u00322\", "
                               "\"triggerType\": \"Scheduled\", \"flowStatus\": \"Draft\", "
                               "\"description\": \"d\\n\", \"tags\": {\"k\": \"v\"}}]";
  size_t len = strlen(full);
  char *copy = malloc(len);
  cr_assert_not_null(copy);
  for (size_t i = 0; i < len; i++) {
    for (size_t b = 0; b < sizeof bytes; b++) {
      memcpy(copy, full, len);
      copy[i] = bytes[b];
      af_flows *svc = new_service();
      af_seed_error err;
      af_seed_result res;
      if (af_seed_load_buffer(svc, copy, len, &res, &err) != 0) {
        cr_assert(err.line >= 1 && err.line <= 3 && err.column >= 1 && err.message[0] != '\0',
                  "byte %zu = 0x%02x: %d:%d: %s", i, (unsigned char)bytes[b], err.line, err.column,
                  err.message);
        cr_assert(res.flows <= 2);
      }
      af_flows_free(svc);
    }
  }
  free(copy);
}
