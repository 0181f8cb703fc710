/* The seed reader (src/bridge/seed.c): what it stores, and for each kind of bad input, the line,
 * column and message it reports. Each flow is CreateFlow's request in AWS JSON plus an optional
 * flowStatus. Every buffer is copied to a heap block of its exact length first, so
 * AddressSanitizer catches a read past the end (the reader gets no NUL terminator). */
#include "bridge/seed.h"

#include "appflowd/store/v1/records.pb-c.h"

#include "request_json.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCHEDULED APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED
#define EVENT APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_EVENT
#define ON_DEMAND APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND
#define ST(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x
#define FLOW_NAME_PATTERN "Member must satisfy regular expression pattern: [a-zA-Z0-9][\\w!@#.-]+"

/* A whole flow from S3 to S3: FLOW("name", Scheduled, Active); the trigger is Scheduled (with
 * a schedule), Event or OnDemand. FLOW_AS_CREATED leaves flowStatus out. */
#define TRIGGER_Scheduled                                                                          \
  "{\"triggerType\": \"Scheduled\", \"triggerProperties\": {\"Scheduled\": "                       \
  "{\"scheduleExpression\": \"rate(1days)\"}}}"
#define TRIGGER_Event "{\"triggerType\": \"Event\"}"
#define TRIGGER_OnDemand "{\"triggerType\": \"OnDemand\"}"
#define SOURCE_S3                                                                                  \
  "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\": "              \
  "{\"S3\": {\"bucketName\": \"src-bucket\"}}}"
#define DEST                                                                                       \
  "{\"connectorType\": \"S3\", \"destinationConnectorProperties\": "                               \
  "{\"S3\": {\"bucketName\": \"dst-bucket\"}}}"
#define MAP_ALL "\"tasks\": [{\"sourceFields\": [], \"taskType\": \"Map_all\"}]"
#define S3_TO_S3 SOURCE_S3 ", \"destinationFlowConfigList\": [" DEST "], " MAP_ALL
#define FLOW(name, trigger, status)                                                                \
  "{\"flowName\": \"" name "\", \"flowStatus\": \"" #status "\", "                                 \
  "\"triggerConfig\": " TRIGGER_##trigger ", " S3_TO_S3 "}"
#define FLOW_AS_CREATED(name, trigger)                                                             \
  "{\"flowName\": \"" name "\", \"triggerConfig\": " TRIGGER_##trigger ", " S3_TO_S3 "}"
/* A flow with more members: FLOW_WITH("name", ", \"description\": \"x\"") */
#define FLOW_WITH(name, more)                                                                      \
  "{\"flowName\": \"" name "\", \"triggerConfig\": " TRIGGER_Event ", " S3_TO_S3 more "}"

/* One flow, as its store holds it. */
typedef struct stored {
  int trigger, status;
  bool has_description, has_definition;
  char description[4200];
  char status_message[2100]; /* "" for none */
  char source[32], destination[32];
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

/* Loads json[0..len) from an exact-size heap copy; *res (may be NULL) gets what was read. */
static int load_n(af_flows *svc, const char *json, size_t len, af_seed_result *res,
                  af_seed_error *err) {
  char *copy = malloc(len ? len : 1);
  cr_assert_not_null(copy);
  memcpy(copy, json, len);
  af_seed_result r;
  int rc = af_seed_load_buffer(svc, copy, len, &r, err);
  free(copy);
  if (res != NULL)
    *res = r;
  return rc;
}

static int load(af_flows *svc, const char *json, af_seed_result *res, af_seed_error *err) {
  return load_n(svc, json, strlen(json), res, err);
}

/* Loads json into a fresh service and expects success with `flows` flows. */
static af_flows *expect_ok(const char *json, size_t flows) {
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  int rc = load(svc, json, &res, &err);
  cr_assert_eq(rc, 0, "%d:%d: %s", err.line, err.column, err.message);
  cr_assert_eq(res.flows, flows);
  cr_assert_eq(res.added, flows);
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
  cr_assert_eq(load(svc, json, NULL, &err), -1, "loaded, expected: %s", message);
  cr_expect(strcmp(err.message, message) == 0 && err.line == line && err.column == column,
            "got  %d:%d: %s\nwant %d:%d: %s", err.line, err.column, err.message, line, column,
            message);
  af_flows_free(svc);
}

/* As expect_message, with the column anywhere in [lo, hi]: for errors jansson finds inside a
 * string, whose position is the last character jansson read, within the string. */
static void expect_message_near(const char *json, int line, int lo, int hi, const char *message) {
  af_flows *svc = new_service();
  af_seed_error err;
  cr_assert_eq(load(svc, json, NULL, &err), -1, "loaded, expected: %s", message);
  cr_expect(strcmp(err.message, message) == 0 && err.line == line && err.column >= lo &&
                err.column <= hi,
            "got  %d:%d: %s\nwant %d:%d-%d: %s", err.line, err.column, err.message, line, lo, hi,
            message);
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
  s->has_definition = f->definition.len > 0;
  snprintf(s->status_message, sizeof s->status_message, "%s",
           f->status_message ? f->status_message : "");
  snprintf(s->source, sizeof s->source, "%s", f->source_connector ? f->source_connector : "");
  snprintf(s->destination, sizeof s->destination, "%s",
           f->destination_connector ? f->destination_connector : "");
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
  af_store_op op = {
      .key = name, .key_len = strlen(name), .rule = copy_flow, .ctx = out, .with_definition = true};
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

/* DescribeFlow of name on svc gives back the CreateFlow request `json` (its definition:
 * everything but flowName, clientToken and tags, written back as AWS JSON). */
static void expect_described_as(af_flows *svc, const char *name, const char *json) {
  af_arena a;
  af_arena_init(&a);
  Appflow__V1__CreateFlowRequest *want = request_from_json(&af_model_CreateFlowRequest, json, &a);
  want->flow_name = want->client_token = NULL;
  want->n_tags = 0;
  Appflow__V1__DescribeFlowRequest req = APPFLOW__V1__DESCRIBE_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  Appflow__V1__DescribeFlowResponse d;
  af_error err;
  cr_assert_eq(af_flows_describe_flow(svc, &req, &d, &a, &err), AF_OK, "%s", err.message);
  Appflow__V1__CreateFlowRequest got = APPFLOW__V1__CREATE_FLOW_REQUEST__INIT;
  got.description = d.description;
  got.kms_arn = d.kms_arn;
  got.trigger_config = d.trigger_config;
  got.source_flow_config = d.source_flow_config;
  got.n_destination_flow_config_list = d.n_destination_flow_config_list;
  got.destination_flow_config_list = d.destination_flow_config_list;
  got.n_tasks = d.n_tasks;
  got.tasks = d.tasks;
  got.metadata_catalog_config = d.metadata_catalog_config;
  cr_expect_str_eq(message_json(&af_model_CreateFlowRequest, &got, &a),
                   message_json(&af_model_CreateFlowRequest, want, &a), "%s", name);
  af_arena_destroy(&a);
}

/* ---- what is stored ---- */

Test(seed, empty_array) {
  af_flows_free(expect_ok("[]", 0));
  af_flows_free(expect_ok(" \r\n\t[ \n ]\n\n", 0));
}

Test(seed, whole_flows_are_stored_as_created) {
  static const char json[] = "[" FLOW("daily_sync", Scheduled, Active) ",\n" FLOW(
      "events", Event, Suspended) ",\n" FLOW("on_demand", OnDemand, Deprecated) "]";
  af_flows *svc = expect_ok(json, 3);
  stored s;
  get_flow(svc, "daily_sync", &s);
  cr_expect_eq(s.trigger, SCHEDULED);
  cr_expect_eq(s.status, ST(ACTIVE));
  cr_expect(!s.has_description);
  cr_expect(s.has_definition);
  cr_expect_str_eq(s.source, "S3");
  cr_expect_str_eq(s.destination, "S3");
  cr_expect_eq(s.ntags, 0);
  get_flow(svc, "events", &s);
  cr_expect_eq(s.trigger, EVENT);
  cr_expect_eq(s.status, ST(SUSPENDED));
  get_flow(svc, "on_demand", &s);
  cr_expect_eq(s.trigger, ON_DEMAND);
  cr_expect_eq(s.status, ST(DEPRECATED));
  expect_described_as(svc, "daily_sync", FLOW("daily_sync", Scheduled, Active));
  expect_described_as(svc, "events", FLOW("events", Event, Suspended));
  af_flows_free(svc);

  /* Any member order, no whitespace. */
  svc = expect_ok(
      "[{\"tasks\":[{\"taskType\":\"Map_all\",\"sourceFields\":[]}],\"destinationFlowConfigList\":"
      "[{\"destinationConnectorProperties\":{\"S3\":{\"bucketName\":\"dst-bucket\"}},"
      "\"connectorType\":\"S3\"}],\"flowStatus\":\"Errored\",\"sourceFlowConfig\":"
      "{\"sourceConnectorProperties\":{\"S3\":{\"bucketName\":\"src-bucket\"}},\"connectorType\":"
      "\"S3\"},\"triggerConfig\":{\"triggerType\":\"Event\"},\"flowName\":\"x1\"}]",
      1);
  get_flow(svc, "x1", &s);
  cr_expect_eq(s.trigger, EVENT);
  cr_expect_eq(s.status, ST(ERRORED));
  af_flows_free(svc);
}

Test(seed, a_flow_without_status_gets_the_one_create_flow_gives) {
  af_flows *svc = expect_ok("[" FLOW_AS_CREATED("sched", Scheduled) ", " FLOW_AS_CREATED(
                                "event", Event) ", " FLOW_AS_CREATED("od", OnDemand) "]",
                            3);
  stored s;
  get_flow(svc, "sched", &s);
  cr_expect_eq(s.status, ST(DRAFT));
  get_flow(svc, "event", &s);
  cr_expect_eq(s.status, ST(DRAFT));
  get_flow(svc, "od", &s);
  cr_expect_eq(s.status, ST(ACTIVE));
  af_flows_free(svc);
}

Test(seed, every_trigger_and_status) {
  static const char *const triggers[] = {TRIGGER_Scheduled, TRIGGER_Event, TRIGGER_OnDemand};
  static const int trigger_values[] = {SCHEDULED, EVENT, ON_DEMAND};
  static const char *const statuses[] = {"Active", "Deprecated", "Deleted",
                                         "Draft",  "Errored",    "Suspended"};
  static const int status_values[] = {ST(ACTIVE), ST(DEPRECATED), ST(DELETED),
                                      ST(DRAFT),  ST(ERRORED),    ST(SUSPENDED)};
  static char json[32768];
  size_t n = (size_t)snprintf(json, sizeof json, "[");
  for (int t = 0; t < 3; t++) {
    for (int s = 0; s < 6; s++)
      n += (size_t)snprintf(json + n, sizeof json - n,
                            "%s\n{\"flowName\": \"f_%d_%d\", \"triggerConfig\": %s, "
                            "\"flowStatus\": \"%s\", " S3_TO_S3 "}",
                            n > 1 ? "," : "", t, s, triggers[t], statuses[s]);
  }
  cr_assert_lt(n, sizeof json - 4);
  snprintf(json + n, sizeof json - n, "\n]\n");
  af_flows *svc = expect_ok(json, 18);
  for (int t = 0; t < 3; t++) {
    for (int s = 0; s < 6; s++) {
      char name[16];
      stored got;
      snprintf(name, sizeof name, "f_%d_%d", t, s);
      get_flow(svc, name, &got);
      cr_expect_eq(got.trigger, trigger_values[t], "%s", name);
      cr_expect_eq(got.status, status_values[s], "%s", name);
    }
  }
  af_flows_free(svc);
}

Test(seed, description_and_tags) {
  af_flows *svc = expect_ok(
      "[" FLOW_WITH("tagged",
                    ",\n  \"description\": \"Copies accounts, nightly! @team #1 - ok? yes.\",\n"
                    "  \"tags\": {\"team\": \"data\", \"a,b-c./0:9;<=_Z\": \"v a_l+u-e=.:/@,;<\", "
                    "\"empty\": \"\"}") ",\n" FLOW_WITH("bare", ", \"tags\": {}") "]",
      2);
  stored s;
  get_flow(svc, "tagged", &s);
  cr_expect(s.has_description);
  cr_expect_str_eq(s.description, "Copies accounts, nightly! @team #1 - ok? yes.");
  cr_assert_eq(s.ntags, 3);
  cr_expect_str_eq(tag(&s, "team"), "data");
  cr_expect_str_eq(tag(&s, "a,b-c./0:9;<=_Z"), "v a_l+u-e=.:/@,;<");
  cr_expect_str_eq(tag(&s, "empty"), "");
  get_flow(svc, "bare", &s);
  cr_expect(!s.has_description);
  cr_expect_eq(s.ntags, 0);
  af_flows_free(svc);
}

Test(seed, escapes_decoded) {
  af_flows *svc = expect_ok(
      "[{\"flow\\u004eame\": \"a\\u0062\\u0063\", \"triggerConfig\": {\"triggerType\": "
      "\"Ev\\u0065nt\"}, \"description\": \"tab\\there\\nnew\\r\\f\\u000b\\u0020line\\u002E\", "
      "\"tags\": {\"k\\u003a\\/x\": \"v\\/\\u0040\\u002B\"}, " S3_TO_S3 "}]",
      1);
  stored s;
  get_flow(svc, "abc", &s);
  cr_expect_eq(s.trigger, EVENT);
  cr_expect_str_eq(s.description, "tab\there\nnew\r\f\v line.");
  cr_expect_str_eq(tag(&s, "k:/x"), "v/@+");
  af_flows_free(svc);
}

/* A flow's extent is found eight bytes at a time: brackets inside strings, escaped quotes and
 * backslashes, at every offset of a word and across words, end nothing early. */
Test(seed, marks_inside_strings_at_every_offset) {
  static const char *const odd[] = {"{", "]]", "\\\"", "\\\\", "\\\\\\\"", "[\\\"}", "\\u007b"};
  static const char *const as_stored[] = {"{", "]]", "\"", "\\", "\\\"", "[\"}", "{"};
  for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
    for (size_t pad = 0; pad < 17; pad++) {
      char json[1024], want[64];
      int n = snprintf(json, sizeof json,
                       "[{\"flowName\": \"ab\", \"flowStatusMessage\": \"%.*s%s%.*s\", "
                       "\"triggerConfig\": {\"triggerType\": \"Event\"}, " S3_TO_S3 "}]",
                       (int)pad, "abcdefghijklmnopq", odd[k], (int)(16 - pad), "0123456789abcdef");
      cr_assert(n > 0 && (size_t)n < sizeof json);
      snprintf(want, sizeof want, "%.*s%s%.*s", (int)pad, "abcdefghijklmnopq", as_stored[k],
               (int)(16 - pad), "0123456789abcdef");
      af_flows *svc = new_service();
      af_seed_error err;
      af_seed_result res;
      cr_assert_eq(load(svc, json, &res, &err), 0, "%s: %s", json, err.message);
      stored s;
      get_flow(svc, "ab", &s);
      cr_expect_str_eq(s.status_message, want, "%s", json);
      af_flows_free(svc);
    }
  }
}

Test(seed, flows_before_an_error_stay_loaded) {
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  int rc = load(svc,
                "[" FLOW("one", Event, Active) ",\n" FLOW("two", Event, Active) ",\n"
                                                                                "{\"flowName\": "
                                                                                "\"three\"}]",
                &res, &err);
  cr_assert_eq(rc, -1);
  cr_expect_eq(res.flows, 2);
  cr_expect_eq(af_flows_count(svc), 2);
  af_flows_free(svc);
}

/* A name the store held before this load is kept as it is, not an error: a durable store
 * starts with what the last run left, and the seed adds only what is new. */
Test(seed, a_stored_flow_is_kept) {
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  cr_assert_eq(load(svc, "[" FLOW("dup1", Event, Suspended) "]", &res, &err), 0, "%s", err.message);
  cr_assert_eq(load(svc, "[\n" FLOW("new1", Event, Active) ",\n" FLOW("dup1", OnDemand, Active) "]",
                    &res, &err),
               0, "%s", err.message);
  cr_expect_eq(res.flows, 2);
  cr_expect_eq(res.added, 1);
  cr_expect_eq(res.kept, 1);
  cr_expect_eq(af_flows_count(svc), 2);
  stored s;
  get_flow(svc, "dup1", &s);
  cr_expect_eq(s.status, ST(SUSPENDED), "kept as it was");
  cr_expect_eq(s.trigger, EVENT, "kept as it was");
  af_flows_free(svc);
}

/* ---- flows CreateFlow would refuse: at the flow, with CreateFlow's message ---- */

Test(seed, a_flow_create_flow_refuses) {
  expect_message(
      "[" FLOW("ok", Event, Active) ",\n  " FLOW_WITH(
          "bad_role", ", \"metadataCatalogConfig\": {\"glueDataCatalog\": {\"roleArn\": \"r\", "
                      "\"databaseName\": \"db\", \"tablePrefix\": \"p\"}}") "]",
      2, 3,
      "flow 'bad_role': 1 validation error detected: Value 'r' at "
      "'metadataCatalogConfig.glueDataCatalog.roleArn' failed to satisfy constraint: Member must "
      "satisfy regular expression pattern: arn:aws:iam:.*:[0-9]+:.*");
  expect_message("[{\"flowName\": \"ab\", \"triggerConfig\": " TRIGGER_Event ", "
                 "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\": "
                 "{\"S3\": {\"bucketName\": \"ab\"}}}, \"destinationFlowConfigList\": [" DEST
                 "], " MAP_ALL "}]",
                 1, 2,
                 "flow 'ab': 1 validation error detected: Value 'ab' at "
                 "'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' failed to satisfy "
                 "constraint: Member must have length greater than or equal to 3");
  /* AppFlow's rules too. */
  expect_message("[{\"flowName\": \"two_dest\", \"triggerConfig\": " TRIGGER_Event ", " SOURCE_S3
                 ", \"destinationFlowConfigList\": [" DEST ", " DEST "], " MAP_ALL "}]",
                 1, 2,
                 "flow 'two_dest': Create Flow request failed: [Destination Validation Error: "
                 "'destinationFlowConfigList' must hold exactly one destination; it holds 2]");
  expect_message("[{\"flowName\": \"no_projection\", \"triggerConfig\": " TRIGGER_Event
                 ", " SOURCE_S3 ", \"destinationFlowConfigList\": [" DEST "], \"tasks\": []}]",
                 1, 2,
                 "flow 'no_projection': Create Flow request failed: [Task Validation Error: You "
                 "must specify a projection task or a MAP_ALL task]");
  expect_message(
      "[{\"flowName\": \"sched\", \"triggerConfig\": {\"triggerType\": \"Scheduled\"}, " S3_TO_S3
      "}]",
      1, 2,
      "flow 'sched': Create Flow request failed: [Trigger Validation Error: a Scheduled "
      "trigger needs 'triggerConfig.triggerProperties.Scheduled']");
  /* The model's members and names. */
  expect_message(
      "[{\"flowName\": \"bad name\", \"triggerConfig\": " TRIGGER_Event ", " S3_TO_S3 "}]", 1, 2,
      "flow 'bad name': 1 validation error detected: Value 'bad name' at 'flowName' "
      "failed to satisfy constraint: " FLOW_NAME_PATTERN);
  expect_message("[{\"flowName\": \"\", \"triggerConfig\": " TRIGGER_Event ", " S3_TO_S3 "}]", 1, 2,
                 "flow '': 1 validation error detected: Value '' at 'flowName' failed to satisfy "
                 "constraint: " FLOW_NAME_PATTERN);
  expect_message("[{\"triggerConfig\": " TRIGGER_Event ", " S3_TO_S3 "}]", 1, 2,
                 "missing required member \"flowName\"");
  expect_message("[{\"flowName\": \"ab\", " S3_TO_S3 "}]", 1, 2,
                 "flow 'ab': 1 validation error detected: Value null at 'triggerConfig' failed to "
                 "satisfy constraint: Member must not be null");
  expect_message(
      "[{\"flowName\": \"ab\", \"triggerConfig\": {\"triggerType\": \"Hourly\"}, " S3_TO_S3 "}]", 1,
      2,
      "ValidationException: 1 validation error detected: Value 'Hourly' at "
      "'triggerConfig.triggerType' failed to satisfy constraint: Member must satisfy "
      "enum value set: [Scheduled, Event, OnDemand]");
  expect_message("[{\"flowName\": \"ab\", \"triggerConfig\": " TRIGGER_Event "}]", 1, 2,
                 "flow 'ab': 1 validation error detected: Value null at 'sourceFlowConfig' failed "
                 "to satisfy constraint: Member must not be null");
  expect_message("[" FLOW_WITH("ab", ", \"description\": \"a;b\"") "]", 1, 2,
                 "flow 'ab': 1 validation error detected: Value 'a;b' at 'description' failed to "
                 "satisfy constraint: Member must satisfy regular expression pattern: "
                 "[\\w!@#\\-.?,\\s]*");
  expect_message("[" FLOW_WITH("ab", ", \"tags\": {\"aws:team\": \"v\"}") "]", 1, 2,
                 "flow 'ab': 1 validation error detected: Value '{aws:team=v}' at 'tags' failed "
                 "to satisfy constraint: Map keys must satisfy constraint: [Member must have "
                 "length less than or equal to 128, Member must have length greater than or "
                 "equal to 1, Member must satisfy regular expression pattern: "
                 "^(?!aws:)[a-zA-Z+-=._:/]+$]");
}

#define BAD_STATUS                                                                                 \
  "flowStatus must be one of Active, Deprecated, Deleted, Draft, Errored or Suspended"

Test(seed, flow_status) {
  expect_message("[" FLOW("ab", Event, Running) "]", 1, 2, BAD_STATUS);
  expect_message("[" FLOW("ab", Event, ACTIVE) "]", 1, 2, BAD_STATUS);
  expect_message("[\n " FLOW("ok", Event, Active) ",\n {\"flowStatus\": 1, \"flowName\": \"ab\", "
                                                  "\"triggerConfig\": " TRIGGER_Event ", " S3_TO_S3
                                                  "}]",
                 3, 2, BAD_STATUS);
}

/* Members of the wrong JSON type: at the flow, in the AWS door's words. */
Test(seed, wrong_types) {
  expect_message("[{\"flowName\": 12}]", 1, 2,
                 "SerializationException: member flowName must be a string, not a number");
  expect_message("[{\"flowName\": \"ab\", \"triggerConfig\": []}]", 1, 2,
                 "SerializationException: member triggerConfig must be an object, not an array");
  expect_message("[{\"flowName\": \"ab\", \"tags\": {\"k\": 1}}]", 1, 2,
                 "SerializationException: member tags.k must be a string, not a number");
}

/* ---- errors in the file's syntax, each at its line and column ---- */

/* Line 1, the column just after "[" FLOW("ab", Event, Active). */
#define AFTER_AB 1, (int)sizeof("[" FLOW("ab", Event, Active))

Test(seed, syntax_errors) {
  /* Inside a flow: where jansson stopped, at the end of the token it did not expect. */
  expect_message("[\n  " FLOW("ab", Event, Active) ",\n  {\"flowName\": \"cd\" \"triggerType\": "
                                                   "\"Event\"}\n]\n",
                 3, 33, "not valid JSON: '}' expected near '\"triggerType\"'");
  expect_message("[{flowName: \"ab\"}]", 1, 10,
                 "not valid JSON: string or '}' expected near 'flowName'");
  expect_message("[{\"flowName\": 'ab'}]", 1, 15, "not valid JSON: invalid token near '''");
  expect_message("[{\"flowName\": \"ab\",}]", 1, 20,
                 "not valid JSON: string or '}' expected near '}'");
  expect_message("[{\"flowName\": \"ab\", \"flowName\": \"cd\"}]", 1, 30,
                 "not valid JSON: duplicate object key near '\"flowName\"'");
  /* Between flows: at the character. */
  expect_message("[" FLOW("ab", Event, Active) "\n  x]", 2, 3,
                 "expected ',' or ']' after a flow, found 'x'");
  expect_message("[" FLOW("ab", Event, Active) " " FLOW("cd", Event, Active) "]", AFTER_AB + 1,
                 "expected ',' or ']' after a flow, found '{'");
  expect_message("[" FLOW("ab", Event, Active) ",]", AFTER_AB + 1,
                 "expected another flow after ',', found ']' (trailing comma)");
  expect_message("[" FLOW("ab", Event, Active) ",\n  ]", 2, 3,
                 "expected another flow after ',', found ']' (trailing comma)");
  /* Not an array of flows. */
  expect_message("", 1, 1, "expected '[' to start the array of flows, found end of file");
  expect_message("  \n  ", 2, 3, "expected '[' to start the array of flows, found end of file");
  expect_message("{}", 1, 1, "expected '[' to start the array of flows, found an object");
  expect_message(FLOW("ab", Event, Active), 1, 1,
                 "expected '[' to start the array of flows, found an object");
  expect_message("[\"ab\"]", 1, 2, "expected '{' to start a flow, found a string");
  expect_message("[[]]", 1, 2, "expected '{' to start a flow, found an array");
  expect_message("[null]", 1, 2, "expected '{' to start a flow, found null");
  expect_message("[] x", 1, 4, "unexpected 'x' after the closing ']': expected end of file");
  expect_message("[]]", 1, 3, "unexpected ']' after the closing ']': expected end of file");
}

Test(seed, unexpected_end_of_file) {
  expect_message("[", 1, 2, "expected '{' to start a flow, found end of file");
  expect_message("[\n" FLOW("ab", Event, Active), 2, (int)sizeof FLOW("ab", Event, Active),
                 "expected ',' or ']' after a flow, found end of file");
  expect_message("[\n" FLOW("ab", Event, Active) ",\n", 3, 1,
                 "expected '{' to start a flow, found end of file");
  expect_message("[{\"flowName\": \"ab", 1, 15, "unterminated string: the file ends inside it");
  expect_message("[{\"flowName\": \"ab\"", 1, 19, "the file ends inside a flow");
  /* Every proper prefix of a valid file fails, with a position inside it. */
  static const char full[] = "[" FLOW_WITH(
      "ab", ", \"description\": \"x\\u0041 ok\", \"tags\": {\"k\": \"v\\u0040\"}") "]";
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
  af_flows_free(expect_ok(full, 1));
}

Test(seed, nesting_depth) {
  char json[1024];
  size_t n = (size_t)snprintf(json, sizeof json, "[{\"flowName\": \"ab\", \"x\": ");
  for (int i = 0; i < 130; i++)
    json[n++] = '[';
  for (int i = 0; i < 130; i++)
    json[n++] = ']';
  snprintf(json + n, sizeof json - n, "}]");
  /* The 128th '[' is the 129th level, counting the flow's '{'. */
  expect_message(json, 1, 25 + 128, "a flow nests objects and arrays deeper than 128");
}

Test(seed, invalid_utf8) {
  /* jansson stops after the last good byte. */
  expect_message("[{\"flowName\": \"a\xc0\xaf\"}]", 1, 16,
                 "not valid JSON: unable to decode byte 0xc0 near '\"a'");
  expect_message("[" FLOW_WITH("ab", ", \"description\": \"\xff\"") "]", 1,
                 (int)sizeof("[" FLOW_WITH("ab", ", \"description\": \"")) - 2,
                 "not valid JSON: unable to decode byte 0xff near '\"'");
  /* Outside strings a non-ASCII byte is just an unexpected character. */
  expect_message("[\xff]", 1, 2, "expected '{' to start a flow, found '\\xff'");
  expect_message("[\xc3\xa9]", 1, 2, "expected '{' to start a flow, found '\\xc3\\xa9'");
}

/* A string jansson refuses is reported where jansson stopped reading it: IN_DESC(text) is
 * line 1 and the columns from the description's opening quote to text's end. */
#define DESC_OPEN (int)sizeof("[" FLOW_WITH("ab", ", \"description\": \"")) - 1
#define IN_DESC(text) 1, DESC_OPEN, DESC_OPEN + (int)sizeof(text) - 1

Test(seed, bad_strings) {
  expect_message_near("[" FLOW_WITH("ab", ", \"description\": \"a\\u0000\"") "]",
                      IN_DESC("a\\u0000"),
                      "not valid JSON: a string holds \\u0000, which appflowd does not accept");
  expect_message_near("[" FLOW_WITH("ab", ", \"description\": \"a\tb\"") "]", IN_DESC("a\t"),
                      "not valid JSON: control character 0x9 near '\"a'");
  expect_message_near("[" FLOW_WITH("ab", ", \"description\": \"\\x41\"") "]", IN_DESC("\\x"),
                      "not valid JSON: invalid escape near '\"\\x5cx'");
  expect_message_near("[" FLOW_WITH("ab", ", \"description\": \"\\ud83d\"") "]",
                      IN_DESC("\\ud83d\""),
                      "not valid JSON: invalid Unicode '\\x5cuD83D' near '\"\\x5cud83d\"'");
}

Test(seed, duplicate_name) {
  expect_message("[\n" FLOW("dup1", Event, Active) ",\n" FLOW("other", Event, Active) ",\n  " FLOW(
                     "dup1", Scheduled, Draft) "\n]",
                 4, 3, "duplicate flowName 'dup1' (first defined at line 2)");
  /* The same name spelled with an escape. */
  expect_message("[" FLOW("dup1", Event, Active) ",\n\n " FLOW("dup\\u0031", Event, Active) "]", 3,
                 2, "duplicate flowName 'dup1' (first defined at line 1)");
  /* Pretty-printed: the line is the flow's. */
  expect_message("[\n  {\n    \"triggerConfig\": " TRIGGER_Event ",\n    \"flowName\": \"p1\",\n"
                 "    " S3_TO_S3 "\n  },\n  {\n"
                 "    \"flowName\": \"p1\", \"triggerConfig\": " TRIGGER_Event ", " S3_TO_S3
                 "\n  }\n]",
                 7, 3, "duplicate flowName 'p1' (first defined at line 2)");
  /* Also into a store that already has flows (names are then remembered while loading). */
  af_flows *svc = new_service();
  af_seed_error err;
  cr_assert_eq(load(svc, "[" FLOW("old", Event, Active) "]", NULL, &err), 0, "%s", err.message);
  cr_assert_eq(
      load(svc, "[" FLOW("new", Event, Active) ",\n" FLOW("new", Event, Active) "]", NULL, &err),
      -1);
  cr_expect_str_eq(err.message, "duplicate flowName 'new' (first defined at line 1)");
  cr_expect(err.line == 2 && err.column == 1, "at %d:%d", err.line, err.column);
  af_flows_free(svc);
}

Test(seed, byte_order_mark) {
  af_flows_free(expect_ok("\xEF\xBB\xBF[]", 0));
  af_flows_free(expect_ok("\xEF\xBB\xBF[" FLOW("ab", Event, Active) "]", 1));
  /* A byte order mark is not a column. */
  expect_message("\xEF\xBB\xBF[x]", 1, 2, "expected '{' to start a flow, found 'x'");
  expect_message("\xEF\xBB\xBF[{\"flowName\": \"a\"}]", 1, 2,
                 "flow 'a': 3 validation errors detected: Value 'a' at 'flowName' failed to "
                 "satisfy constraint: " FLOW_NAME_PATTERN "; Value null at 'triggerConfig' failed "
                 "to satisfy constraint: Member must not be null; Value null at "
                 "'sourceFlowConfig' failed to satisfy constraint: Member must not be null");
}

/* A flow whose Glue table prefix (a pattern that takes any character) is text. */
#define FLOW_UNICODE(text)                                                                         \
  FLOW_WITH("ab", ", \"metadataCatalogConfig\": {\"glueDataCatalog\": {\"roleArn\": "              \
                  "\"arn:aws:iam::123456789012:role/glue\", \"databaseName\": \"db\", "            \
                  "\"tablePrefix\": \"" text "\"}}")

Test(seed, column_counts_code_points) {
  /* é is 2 bytes, € 3, 😀 4: each one column. */
  expect_message("[\n  \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\" x]", 2, 3,
                 "expected '{' to start a flow, found a string");
  af_flows_free(expect_ok("[" FLOW_UNICODE("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") "]", 1));
  expect_message("[" FLOW_UNICODE("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") " x]", 1,
                 (int)sizeof("[" FLOW_UNICODE("...")) + 1,
                 "expected ',' or ']' after a flow, found 'x'");
  expect_message("[" FLOW_UNICODE("\xc3\xa9") "\n\xc3\xa9 x]", 2, 1,
                 "expected ',' or ']' after a flow, found '\\xc3\\xa9'");
  /* Inside a flow too: within the string's five characters. */
  expect_message_near("[" FLOW_UNICODE("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\q") "]", 1,
                      (int)sizeof("[" FLOW_UNICODE("")) - 5, (int)sizeof("[" FLOW_UNICODE("")),
                      "not valid JSON: invalid escape near "
                      "'\"\\xc3\\xa9\\xe2\\x82\\xac\\xf0\\x9f\\x98\\x80\\x5cq'");
  /* A CR before the LF belongs to the line it ends. */
  expect_message("[\r\n  x]", 2, 3, "expected '{' to start a flow, found 'x'");
}

Test(seed, name_lengths) {
  char name[320], json[1024];
  snprintf(json, sizeof json,
           "[{\"flowName\": \"%s\", \"triggerConfig\": " TRIGGER_Event ", " S3_TO_S3 "}]",
           repeat(name, 'n', 256));
  af_flows *svc = expect_ok(json, 1);
  stored s;
  get_flow(svc, name, &s);
  af_flows_free(svc);
  snprintf(json, sizeof json,
           "[{\"flowName\": \"%s\", \"triggerConfig\": " TRIGGER_Event ", " S3_TO_S3 "}]",
           repeat(name, 'n', 257));
  /* The message is cut at af_seed_error's 512 bytes: the name given twice fills it. */
  expect_error(json, 1, 2, "': 1 validation error detected: Value 'nnnnn");
}

/* ---- files and sizes ---- */

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
  const char *json = "[\n" FLOW("f1", Event, Active) ",\n" FLOW("f2", OnDemand, Draft) "\n]\n";
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
  cr_assert_eq(s.status, ST(DRAFT));
  af_flows_free(svc);
}

/* One flow of a big seed, named flow_NNNNNN. */
#define BIG_FLOW(nl)                                                                               \
  "{\"flowName\": \"flow_%06d\", \"triggerConfig\": " TRIGGER_Event ", " S3_TO_S3 "}," nl

Test(seed, ten_thousand_flows_load) {
  enum { N = 10000 };
  size_t cap = (size_t)N * 400 + 64, len = 0;
  char *json = malloc(cap);
  cr_assert_not_null(json);
  len += (size_t)snprintf(json, cap, "[\n");
  for (int i = 0; i < N; i++)
    len += (size_t)snprintf(json + len, cap - len, BIG_FLOW("\n"), i);
  cr_assert_lt(len, cap - 4);
  json[len - 2] = '\n'; /* the last ',' */
  json[len - 1] = ']';
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  int rc = load_n(svc, json, len, &res, &err);
  cr_assert_eq(rc, 0, "%d:%d: %s", err.line, err.column, err.message);
  cr_expect_eq(res.flows, N);
  cr_expect_eq(res.added, N);
  cr_expect_eq(af_flows_count(svc), N);
  stored s;
  get_flow(svc, "flow_009999", &s);
  cr_expect_eq(s.status, ST(DRAFT));
  af_flows_free(svc);
  free(json);
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
  enum { N = 30000 }; /* ~330 bytes each: ~10 MB */
  fputs("[\n", f);
  for (int i = 0; i < N; i++)
    fprintf(f, BIG_FLOW("\n"), i);
  fprintf(f, "  " BIG_FLOW("\n"), 1);
  fputs(FLOW("last", Event, Active) "\n]\n", f);
  long size = ftell(f);
  fclose(f);
  cr_assert_gt(size, 9L << 20, "%ld bytes", size);
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  int rc = af_seed_load_file(svc, path, &res, &err);
  unlink(path);
  cr_assert_eq(rc, -1);
  cr_expect_eq(res.flows, N);
  cr_expect_eq(err.line, N + 2, "line %d", err.line);
  cr_expect_eq(err.column, 3);
  cr_expect_str_eq(err.message, "duplicate flowName 'flow_000001' (first defined at line 3)");
  af_flows_free(svc);
}

#ifndef AF_SOURCE_DIR
#error "tests/CMakeLists.txt must define AF_SOURCE_DIR as the repository root for test_seed"
#endif

Test(seed, examples_file) {
  static const struct {
    const char *name;
    int trigger, status;
    const char *source, *destination;
  } want[] = {
      {"salesforce_accounts_to_s3", SCHEDULED, ST(ACTIVE), "Salesforce", "S3"},
      {"salesforce_opportunity_events", EVENT, ST(ACTIVE), NULL, NULL},
      {"s3_exports_on_demand", ON_DEMAND, ST(ACTIVE), "S3", NULL},
      {"salesforce_contacts_draft", SCHEDULED, ST(DRAFT), NULL, NULL},
      {"salesforce_leads_errored", SCHEDULED, ST(ERRORED), NULL, NULL},
      {"salesforce_cases_suspended", EVENT, ST(SUSPENDED), NULL, NULL},
      {"legacy_orders_deprecated", SCHEDULED, ST(DEPRECATED), NULL, NULL},
      {"old_report_deleted", ON_DEMAND, ST(DELETED), NULL, NULL},
  };
  af_flows *svc = new_service();
  af_seed_error err;
  af_seed_result res;
  int rc = af_seed_load_file(svc, AF_SOURCE_DIR "/examples/flows.json", &res, &err);
  cr_assert_eq(rc, 0, "examples/flows.json:%d:%d: %s", err.line, err.column, err.message);
  cr_assert_eq(res.flows, 8);
  cr_assert_eq(res.added, 8);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    stored s;
    get_flow(svc, want[i].name, &s);
    cr_expect_eq(s.trigger, want[i].trigger, "%s", want[i].name);
    cr_expect_eq(s.status, want[i].status, "%s", want[i].name);
    cr_expect(s.has_definition, "%s", want[i].name);
    if (want[i].source != NULL)
      cr_expect_str_eq(s.source, want[i].source, "%s", want[i].name);
    if (want[i].destination != NULL)
      cr_expect_str_eq(s.destination, want[i].destination, "%s", want[i].name);
    /* only the errored flow says why */
    cr_expect_eq(s.status_message[0] != '\0', want[i].status == ST(ERRORED), "%s", want[i].name);
  }
  af_flows_free(svc);
}

/* flowStatusMessage: kept as given; null is none; anything but a string (or too long) is an
 * error at the flow. */
Test(seed, a_status_message_is_kept) {
  static const char ok[] =
      "[" FLOW_WITH("why", ", \"flowStatus\": \"Errored\", "
                           "\"flowStatusMessage\": \"It failed: no bucket\"") "]";
  af_flows *svc = expect_ok(ok, 1);
  stored s;
  get_flow(svc, "why", &s);
  cr_expect_str_eq(s.status_message, "It failed: no bucket");
  af_flows_free(svc);
  static const char none[] = "[" FLOW_WITH("why", ", \"flowStatusMessage\": null") "]";
  svc = expect_ok(none, 1);
  get_flow(svc, "why", &s);
  cr_expect_str_eq(s.status_message, "");
  af_flows_free(svc);
  static const char bad[] = "[" FLOW_WITH("why", ", \"flowStatusMessage\": 7") "]";
  svc = new_service();
  af_seed_error err;
  cr_expect_eq(load(svc, bad, NULL, &err), -1);
  cr_expect(strstr(err.message, "flowStatusMessage must be a string") != NULL, "%s", err.message);
  cr_expect_eq(err.line, 1);
  cr_expect_eq(err.column, 2);
  af_flows_free(svc);
}

/* ---- robustness ---- */

/* Every byte of a valid file replaced by each of a few troublesome bytes: the reader must
 * neither crash nor read out of bounds (ASan), and every failure must say where. */
Test(seed, mutations_never_crash) {
  static const char bytes[] = {'\0', '"', '\\', '{', '}', '[',        ']',        ',',       ':',
                               'x',  ' ', '\n', 'u', '0', (char)0xff, (char)0xc3, (char)0xed};
  static const char full[] =
      "[{\"flowName\": \"m1\", \"triggerConfig\": {\"triggerType\": \"Event\"},\n"
      "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\": "
      "{\"S3\": {\"bucketName\": \"src\"}}}, \"destinationFlowConfigList\": [{\"connectorType\": "
      "\"S3\", \"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"dst\"}}}],\n"
      "\"tasks\": [{\"sourceFields\": [\"a\\u0062\"], \"taskType\": \"Map_all\"}], "
      "\"description\": \"d\\n\", \"tags\": {\"k\": \"v\"}, \"flowStatus\": \"Draft\"}]";
  size_t len = strlen(full);
  af_flows_free(expect_ok(full, 1));
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
        cr_assert(err.line >= 1 && err.line <= 4 && err.column >= 1 && err.message[0] != '\0',
                  "byte %zu = 0x%02x: %d:%d: %s", i, (unsigned char)bytes[b], err.line, err.column,
                  err.message);
        cr_assert(res.flows <= 1);
      }
      af_flows_free(svc);
    }
  }
  free(copy);
}

/* ---- a large seed read in two parts (af_seed_load_buffer_alone) ---- */

/* Past the 4 MiB from which a seed is read in two parts. */
#define BIG_N 12000
#define BIG_ENTRY FLOW("big_%06zu", Event, Suspended)
#define SF_PROFILE                                                                                 \
  "{\"connectorProfileName\": \"sf\", \"connectorType\": \"Salesforce\", \"connectionMode\": "     \
  "\"Public\", \"connectorProfileConfig\": {\"connectorProfileProperties\": {\"Salesforce\": "     \
  "{\"instanceUrl\": \"https://example.my.salesforce.com\"}}, \"connectorProfileCredentials\": "   \
  "{\"Salesforce\": {\"accessToken\": \"t\"}}}}"

/* BIG_N entries, one a line: flow big_<i>, or the text `odd` for entry `at`. */
static char *big_seed(size_t at, const char *odd, size_t *len) {
  size_t cap = (size_t)BIG_N * 1024, n = 0;
  char *buf = malloc(cap);
  cr_assert_not_null(buf);
  n += (size_t)snprintf(buf, cap, "[\n");
  for (size_t i = 0; i < BIG_N; i++) {
    if (odd != NULL && i == at)
      n += (size_t)snprintf(buf + n, cap - n, "%s", odd);
    else
      n += (size_t)snprintf(buf + n, cap - n, BIG_ENTRY, i);
    n += (size_t)snprintf(buf + n, cap - n, "%s\n", i + 1 < BIG_N ? "," : "");
  }
  n += (size_t)snprintf(buf + n, cap - n, "]\n");
  cr_assert(n < cap && n > ((size_t)4 << 20), "%zu bytes", n);
  *len = n;
  return buf;
}

typedef struct big_load {
  af_flows *svc;
  af_store *store; /* a SQLite store of its own; NULL: the service's memory store */
  char dir[64];    /* ... in this directory */
  FILE *logf;      /* the service's log */
  af_log log;
  int rc;
  af_seed_result res;
  af_seed_error err;
} big_load;

/* The ways a test loads a large seed. */
enum { IN_ORDER_BUFFER, ALONE_BUFFER, ALONE_FILE };

/* buf written to a new file, whose path is returned (static storage). */
static const char *big_file(const char *buf, size_t len) {
  static char path[] = "/tmp/af-test-seed-XXXXXX";
  memcpy(path + sizeof path - 7, "XXXXXX", 6);
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, buf, len), (ssize_t)len);
  close(fd);
  return path;
}

/* A new SQLite file's store, in a directory of its own (b->dir). */
static af_store *big_sqlite(big_load *b) {
  snprintf(b->dir, sizeof b->dir, "/tmp/af-test-seed-db-XXXXXX");
  cr_assert_not_null(mkdtemp(b->dir));
  char url[128], msg[256];
  snprintf(url, sizeof url, "sqlite:%s/flows.db", b->dir);
  af_store_open_rc why;
  af_store *st = af_store_open(url, &(af_store_config){.log = &b->log}, &why, msg, sizeof msg);
  cr_assert_not_null(st, "%s", msg);
  return st;
}

/* Loads buf into a fresh service (on a new SQLite file, or memory), in one of those ways. */
static void big_load_run_on(big_load *b, const char *buf, size_t len, int way, bool sqlite) {
  memset(b, 0, sizeof *b);
  b->logf = tmpfile();
  cr_assert_not_null(b->logf);
  b->log = (af_log){AF_LOG_INFO, b->logf};
  if (sqlite)
    b->store = big_sqlite(b);
  af_error e;
  b->svc = af_flows_new(&(af_flows_config){.log = &b->log, .store = b->store}, &e);
  cr_assert_not_null(b->svc, "%s", e.message);
  if (way == ALONE_FILE) {
    const char *path = big_file(buf, len);
    b->rc = af_seed_load_file_alone(b->svc, path, &b->res, &b->err);
    unlink(path);
  } else {
    b->rc = way == ALONE_BUFFER ? af_seed_load_buffer_alone(b->svc, buf, len, &b->res, &b->err)
                                : load_n(b->svc, buf, len, &b->res, &b->err);
  }
}

/* Whether the service's log says the store was emptied (a load read again in order). */
static bool big_load_reset(const big_load *b) {
  char line[1024];
  bool found = false;
  rewind(b->logf);
  while (fgets(line, sizeof line, b->logf) != NULL)
    found |= strstr(line, "reset: removed") != NULL;
  return found;
}

static void big_load_run(big_load *b, const char *buf, size_t len, int way) {
  big_load_run_on(b, buf, len, way, false);
}

static void big_load_free(big_load *b) {
  af_flows_free(b->svc);
  if (b->store != NULL) {
    af_store_close(b->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", b->dir);
    cr_expect_eq(system(cmd), 0);
  }
  fclose(b->logf);
}

/* A load alone and one in order of the same text end alike: result, error, flows stored. */
static void expect_alike(const big_load *alone, const big_load *in_order) {
  cr_assert_eq(alone->rc, in_order->rc, "%s", alone->err.message);
  cr_assert_str_eq(alone->err.message, in_order->err.message);
  cr_assert_eq(alone->err.line, in_order->err.line);
  cr_assert_eq(alone->err.column, in_order->err.column);
  if (in_order->rc == 0) {
    cr_assert_eq(alone->res.flows, in_order->res.flows);
    cr_assert_eq(alone->res.added, in_order->res.added);
    cr_assert_eq(alone->res.profiles, in_order->res.profiles);
  }
  cr_assert_eq(af_flows_count(alone->svc), af_flows_count(in_order->svc));
}

/* How a load alone reads: in two parts; in two parts that found what only reading in order
 * gets right, then again in order (the store emptied in between); or in order from the start
 * (a file with profiles or registrations). */
enum { TWO_PARTS, AGAIN_IN_ORDER, IN_ORDER };

/* Entry `at` is `odd`; `how` a load alone reads it, from a buffer and from a file into memory,
 * and from a file into a new SQLite file as appflowd's start-up does (a store that answers
 * later: a name given twice shows only when the parts end). */
static void expect_big_alike(size_t at, const char *odd, int how) {
  size_t len;
  char *buf = big_seed(at, odd, &len);
  big_load in_order;
  big_load_run(&in_order, buf, len, IN_ORDER_BUFFER);
  for (int way = ALONE_BUFFER; way <= ALONE_FILE + 1; way++) {
    bool sqlite = way > ALONE_FILE;
    int w = sqlite ? ALONE_FILE : way;
    big_load alone;
    big_load_run_on(&alone, buf, len, w, sqlite);
    expect_alike(&alone, &in_order);
    cr_assert(big_load_reset(&alone) == (how == AGAIN_IN_ORDER), "%s, from a %s into %s",
              how == AGAIN_IN_ORDER ? "expected the file read again in order" : "expected no reset",
              w == ALONE_FILE ? "file" : "buffer", sqlite ? "SQLite" : "memory");
    big_load_free(&alone);
  }
  big_load_free(&in_order);
  free(buf);
}

/* Flow big_<i> as an entry of its own (status `status`), in buf. */
static const char *big_flow(char *buf, size_t size, size_t i, const char *status) {
  snprintf(buf, size,
           "{\"flowName\": \"big_%06zu\", \"flowStatus\": \"%s\", \"triggerConfig\": " TRIGGER_Event
           ", " S3_TO_S3 "}",
           i, status);
  return buf;
}

Test(seed_alone, a_large_seed_loads_in_two_parts_as_in_order) {
  expect_big_alike(0, NULL, TWO_PARTS);
  /* ... every flow whole, on either side of the middle */
  size_t len;
  char *buf = big_seed(0, NULL, &len);
  big_load b;
  big_load_run(&b, buf, len, ALONE_BUFFER);
  cr_assert_eq(b.rc, 0, "%s", b.err.message);
  cr_assert_eq(b.res.flows, BIG_N);
  size_t probe[] = {0, BIG_N / 2 - 1, BIG_N / 2, BIG_N / 2 + 1, BIG_N - 1};
  for (size_t i = 0; i < sizeof probe / sizeof *probe; i++) {
    char name[32];
    snprintf(name, sizeof name, "big_%06zu", probe[i]);
    stored s;
    get_flow(b.svc, name, &s);
    cr_assert_eq(s.status, ST(SUSPENDED), "%s", name);
    cr_assert_eq(s.trigger, EVENT, "%s", name);
    cr_assert(s.has_definition, "%s", name);
  }
  big_load_free(&b);
  free(buf);
}

Test(seed_alone, a_name_given_twice_across_the_parts_is_the_error_it_is_in_order) {
  char odd[1024];
  expect_big_alike(BIG_N - 1, big_flow(odd, sizeof odd, 0, "Suspended"), AGAIN_IN_ORDER);
  expect_big_alike(3 * BIG_N / 4, big_flow(odd, sizeof odd, 7, "Suspended"), AGAIN_IN_ORDER);
  expect_big_alike(BIG_N / 4, big_flow(odd, sizeof odd, BIG_N / 4 + 1, "Suspended"),
                   AGAIN_IN_ORDER);
  /* the second part most likely stores its own first: the first part's copy is the error */
  expect_big_alike(BIG_N / 2 - 5, big_flow(odd, sizeof odd, BIG_N / 2 + 2, "Suspended"),
                   AGAIN_IN_ORDER);
}

Test(seed_alone, an_error_in_either_part_is_the_error_it_is_in_order) {
  char odd[1024];
  expect_big_alike(10, big_flow(odd, sizeof odd, 10, "Sleeping"), AGAIN_IN_ORDER);
  expect_big_alike(3 * BIG_N / 4, big_flow(odd, sizeof odd, 3 * BIG_N / 4, "Sleeping"),
                   AGAIN_IN_ORDER);
  expect_big_alike(BIG_N - 2, "{\"flowName\": \"big_x\"}", AGAIN_IN_ORDER);
}

Test(seed_alone, a_profile_anywhere_is_read_in_order) {
  expect_big_alike(3 * BIG_N / 4, SF_PROFILE, IN_ORDER);
  expect_big_alike(0, SF_PROFILE, IN_ORDER);
  expect_big_alike(BIG_N / 2 + 3, "{\"connectorLabel\": \"x\"}", IN_ORDER); /* an error */
  /* a profile without its configuration (an error) is found by the part that meets it */
  expect_big_alike(3 * BIG_N / 4,
                   "{\"connectorProfileName\": \"x\", \"connectorType\": \"Salesforce\"}",
                   AGAIN_IN_ORDER);
}

/* buf loaded into b's service again, alone from a file: the load's return. */
static int load_file_into(const big_load *b, const char *buf, size_t len, af_seed_result *res,
                          af_seed_error *err) {
  const char *path = big_file(buf, len);
  int rc = af_seed_load_file_alone(b->svc, path, res, err);
  unlink(path);
  return rc;
}

/* err is the fault the in-order load reported, where it reported it. */
static void expect_error_as(const af_seed_error *err, const big_load *in_order) {
  cr_expect_str_eq(err->message, in_order->err.message);
  cr_expect_eq(err->line, in_order->err.line);
  cr_expect_eq(err->column, in_order->err.column);
}

/* A store that holds flows already (a restart given its seed again) is read in two parts too,
 * each part remembering its names: every flow is kept, none added, nothing emptied. A name the
 * two parts both read is the error it is in order, and the store keeps what it held. On memory
 * and on a SQLite file. */
Test(seed_alone, a_store_holding_flows_is_read_in_two_parts_and_keeps_them) {
  size_t len;
  char *buf = big_seed(0, NULL, &len);
  char odd[1024];
  char *dup = big_seed(3 * BIG_N / 4, big_flow(odd, sizeof odd, BIG_N / 4, "Suspended"), &len);
  big_load in_order;
  big_load_run(&in_order, dup, len, IN_ORDER_BUFFER);
  cr_assert_eq(in_order.rc, -1, "the duplicate is an error in order");
  for (int sqlite = 0; sqlite < 2; sqlite++) {
    big_load b;
    big_load_run_on(&b, buf, len, ALONE_FILE, sqlite);
    cr_assert_eq(b.rc, 0, "%s", b.err.message);
    cr_assert_eq(b.res.added, BIG_N);
    /* again, in two parts: every flow kept */
    af_seed_result res;
    af_seed_error err;
    cr_assert_eq(load_file_into(&b, buf, len, &res, &err), 0, "%s", err.message);
    cr_expect_eq(res.flows, BIG_N);
    cr_expect_eq(res.added, 0);
    cr_expect_eq(res.kept, BIG_N);
    /* a name given twice, across the parts: as in order, and nothing emptied */
    cr_assert_eq(load_file_into(&b, dup, len, &res, &err), -1);
    expect_error_as(&err, &in_order);
    cr_expect(!big_load_reset(&b), "a store that held flows is never emptied");
    cr_expect_eq(af_flows_count(b.svc), BIG_N, "%s", sqlite ? "SQLite" : "memory");
    big_load_free(&b);
  }
  big_load_free(&in_order);
  free(buf);
  free(dup);
}

/* A store other processes may write (PostgreSQL's replicas; here a SQLite file marked so) is
 * never taken for empty: its parts remember their names as for a store that holds flows, so a
 * name given twice is the error it is in order and nothing is emptied, and a clean seed adds
 * every flow. */
Test(seed_alone, a_store_others_write_is_never_emptied) {
  size_t len;
  char odd[1024];
  char *dup = big_seed(3 * BIG_N / 4, big_flow(odd, sizeof odd, BIG_N / 4, "Suspended"), &len);
  big_load in_order;
  big_load_run(&in_order, dup, len, IN_ORDER_BUFFER);
  cr_assert_eq(in_order.rc, -1, "the duplicate is an error in order");
  big_load b;
  big_load_run_on(&b, "[]", 2, ALONE_BUFFER, true);
  b.store->shared = true;
  af_seed_result res;
  af_seed_error err;
  cr_assert_eq(load_file_into(&b, dup, len, &res, &err), -1);
  expect_error_as(&err, &in_order);
  cr_expect(!big_load_reset(&b), "a store others write is never emptied");
  big_load_free(&b);
  /* a clean seed: every flow added, in two parts */
  char *buf = big_seed(0, NULL, &len);
  big_load_run_on(&b, "[]", 2, ALONE_BUFFER, true);
  b.store->shared = true;
  cr_assert_eq(load_file_into(&b, buf, len, &res, &err), 0, "%s", err.message);
  cr_expect_eq(res.added, BIG_N);
  cr_expect_eq(res.kept, 0);
  cr_expect_eq(af_flows_count(b.svc), BIG_N);
  big_load_free(&b);
  big_load_free(&in_order);
  free(buf);
  free(dup);
}
