/* src/flows/check.c: generic validation from the model tables, with AWS's exact wording, order
 * and paths; and, from the tables themselves, every bounded member of every structure at its
 * bound (accepted) and one past it (refused with the exact constraint). */
#include "flows/check.h"

#include "appflow/v1/appflow.pb-c.h"
#include "appflow_model.h"
#include "common/utf8.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ONE "1 validation error detected: "
#define FAILED "failed to satisfy constraint: "
#define NOT_NULL "Member must not be null"

static af_checker *checker;
static af_error err;

static void setup(void) {
  af_error e;
  checker = af_checker_new(&e);
  cr_assert_not_null(checker, "%s", e.message);
}
static void teardown(void) { af_checker_free(checker); }

TestSuite(check, .init = setup, .fini = teardown);

static af_err check(const af_model_struct *st, const void *msg) {
  memset(&err, 0, sizeof err);
  return af_check_message(checker, st, (const ProtobufCMessage *)msg, &err);
}

#define EXPECT_OK(st, msg)                                                                         \
  do {                                                                                             \
    af_err rc_ = check(st, msg);                                                                   \
    cr_expect_eq(rc_, AF_OK, "refused: %s", err.message);                                          \
  } while (0)

#define EXPECT_MSG(st, msg, text)                                                                  \
  do {                                                                                             \
    af_err rc_ = check(st, msg);                                                                   \
    cr_expect_eq(rc_, AF_ERR_VALIDATION);                                                          \
    cr_expect_str_eq(err.message, text);                                                           \
  } while (0)

static char *repeat(char *buf, char c, size_t n) {
  memset(buf, c, n);
  buf[n] = '\0';
  return buf;
}

/* ---- hand-built requests ---- */

Test(check, create_flow_required_members) {
  Appflow__V1__CreateFlowRequest r = APPFLOW__V1__CREATE_FLOW_REQUEST__INIT;
  /* destinationFlowConfigList and tasks are required but empty lists are accepted. */
  EXPECT_MSG(&af_model_CreateFlowRequest, &r,
             "3 validation errors detected: Value null at 'flowName' " FAILED NOT_NULL
             "; Value null at 'triggerConfig' " FAILED NOT_NULL
             "; Value null at 'sourceFlowConfig' " FAILED NOT_NULL);
}

/* A complete, valid CreateFlow request (S3 to S3, one Map_all task). */
typedef struct flow {
  Appflow__V1__CreateFlowRequest r;
  Appflow__V1__TriggerConfig trigger;
  Appflow__V1__SourceFlowConfig src;
  Appflow__V1__SourceConnectorProperties sprops;
  Appflow__V1__S3SourceProperties s3src;
  Appflow__V1__DestinationFlowConfig dst;
  Appflow__V1__DestinationFlowConfig *dsts[1];
  Appflow__V1__DestinationConnectorProperties dprops;
  Appflow__V1__S3DestinationProperties s3dst;
  Appflow__V1__Task task;
  Appflow__V1__Task *tasks[1];
  char *fields[1];
  Appflow__V1__Task__TaskPropertiesEntry prop;
  Appflow__V1__Task__TaskPropertiesEntry *props[1];
} flow;

static void flow_init(flow *f) {
  *f = (flow){.r = APPFLOW__V1__CREATE_FLOW_REQUEST__INIT,
              .trigger = APPFLOW__V1__TRIGGER_CONFIG__INIT,
              .src = APPFLOW__V1__SOURCE_FLOW_CONFIG__INIT,
              .sprops = APPFLOW__V1__SOURCE_CONNECTOR_PROPERTIES__INIT,
              .s3src = APPFLOW__V1__S3_SOURCE_PROPERTIES__INIT,
              .dst = APPFLOW__V1__DESTINATION_FLOW_CONFIG__INIT,
              .dprops = APPFLOW__V1__DESTINATION_CONNECTOR_PROPERTIES__INIT,
              .s3dst = APPFLOW__V1__S3_DESTINATION_PROPERTIES__INIT,
              .task = APPFLOW__V1__TASK__INIT,
              .prop = APPFLOW__V1__TASK__TASK_PROPERTIES_ENTRY__INIT};
  f->r.flow_name = "flow-1";
  f->trigger.has_trigger_type = 1;
  f->trigger.trigger_type = APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND;
  f->r.trigger_config = &f->trigger;
  f->s3src.bucket_name = "source-bucket";
  f->sprops.s3 = &f->s3src;
  f->src.has_connector_type = 1;
  f->src.connector_type = APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3;
  f->src.source_connector_properties = &f->sprops;
  f->r.source_flow_config = &f->src;
  f->s3dst.bucket_name = "dest-bucket";
  f->dprops.s3 = &f->s3dst;
  f->dst.has_connector_type = 1;
  f->dst.connector_type = APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3;
  f->dst.destination_connector_properties = &f->dprops;
  f->dsts[0] = &f->dst;
  f->r.n_destination_flow_config_list = 1;
  f->r.destination_flow_config_list = f->dsts;
  f->fields[0] = "";
  f->task.n_source_fields = 1;
  f->task.source_fields = f->fields;
  f->task.has_task_type = 1;
  f->task.task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_MAP_ALL;
  f->tasks[0] = &f->task;
  f->r.n_tasks = 1;
  f->r.tasks = f->tasks;
}

Test(check, create_flow_valid) {
  flow f;
  flow_init(&f);
  EXPECT_OK(&af_model_CreateFlowRequest, &f.r);
}

Test(check, nested_s3_bucket_name) {
  flow f;
  flow_init(&f);
  char buf[100];
  f.s3src.bucket_name = "ab";
  EXPECT_MSG(&af_model_CreateFlowRequest, &f.r,
             ONE "Value 'ab' at 'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' " FAILED
                 "Member must have length greater than or equal to 3");
  f.s3src.bucket_name = "abc";
  EXPECT_OK(&af_model_CreateFlowRequest, &f.r);
  f.s3src.bucket_name = repeat(buf, 'b', 63);
  EXPECT_OK(&af_model_CreateFlowRequest, &f.r);
  f.s3src.bucket_name = repeat(buf, 'b', 64);
  cr_expect_eq(check(&af_model_CreateFlowRequest, &f.r), AF_ERR_VALIDATION);
  cr_expect(strstr(err.message,
                   "at 'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' " FAILED
                   "Member must have length less than or equal to 63") != NULL,
            "%s", err.message);
  /* pattern \S+ first, then the length, as AWS lists them */
  f.s3src.bucket_name = "a b";
  EXPECT_MSG(&af_model_CreateFlowRequest, &f.r,
             ONE "Value 'a b' at 'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' " FAILED
                 "Member must satisfy regular expression pattern: \\S+");
  f.s3src.bucket_name = "";
  EXPECT_MSG(&af_model_CreateFlowRequest, &f.r,
             "2 validation errors detected: Value '' at "
             "'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' " FAILED
             "Member must satisfy regular expression pattern: \\S+; Value '' at "
             "'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' " FAILED
             "Member must have length greater than or equal to 3");
  f.s3src.bucket_name = NULL;
  EXPECT_MSG(
      &af_model_CreateFlowRequest, &f.r,
      ONE
      "Value null at 'sourceFlowConfig.sourceConnectorProperties.S3.bucketName' " FAILED NOT_NULL);
}

Test(check, list_member_paths_and_order) {
  flow f;
  flow_init(&f);
  f.task.has_task_type = 0;
  f.dst.destination_connector_properties = NULL;
  f.r.flow_name = "x";
  EXPECT_MSG(
      &af_model_CreateFlowRequest, &f.r,
      "3 validation errors detected: Value 'x' at 'flowName' " FAILED
      "Member must satisfy regular expression pattern: [a-zA-Z0-9][\\w!@#.-]+"
      "; Value null at 'destinationFlowConfigList.1.member.destinationConnectorProperties' " FAILED
          NOT_NULL "; Value null at 'tasks.1.member.taskType' " FAILED NOT_NULL);
}

/* The path is printed from the steps taken to an error: a two-digit index, and the members
 * checked before it (the first task's, the flow's) leave nothing behind in it. */
Test(check, path_after_many_elements) {
  flow f;
  flow_init(&f);
  Appflow__V1__Task more[12], *list[12];
  for (size_t i = 0; i < 12; i++) {
    more[i] = f.task;
    list[i] = &more[i];
  }
  more[11].has_task_type = 0;
  more[11].n_source_fields = 0;
  f.r.n_tasks = 12;
  f.r.tasks = list;
  f.r.description = "fine";
  EXPECT_MSG(&af_model_CreateFlowRequest, &f.r,
             ONE "Value null at 'tasks.12.member.taskType' " FAILED NOT_NULL);
}

Test(check, enum_keyed_map) {
  flow f;
  flow_init(&f);
  f.prop.key = "BOGUS";
  f.prop.value = "x";
  f.props[0] = &f.prop;
  f.task.n_task_properties = 1;
  f.task.task_properties = f.props;
  EXPECT_MSG(&af_model_CreateFlowRequest, &f.r,
             ONE "Value '{BOGUS=x}' at 'tasks.1.member.taskProperties' " FAILED
                 "Map keys must satisfy constraint: [Member must satisfy enum value set: [VALUE, "
                 "VALUES, DATA_TYPE, UPPER_BOUND, LOWER_BOUND, SOURCE_DATA_TYPE, "
                 "DESTINATION_DATA_TYPE, VALIDATION_ACTION, MASK_VALUE, MASK_LENGTH, "
                 "TRUNCATE_LENGTH, MATH_OPERATION_FIELDS_ORDER, CONCAT_FORMAT, "
                 "SUBFIELD_CATEGORY_MAP, EXCLUDE_SOURCE_FIELDS_LIST, INCLUDE_NEW_FIELDS, "
                 "ORDERED_PARTITION_KEYS_LIST]]");
  f.prop.key = "EXCLUDE_SOURCE_FIELDS_LIST";
  f.prop.value = "[]";
  EXPECT_OK(&af_model_CreateFlowRequest, &f.r);
}

Test(check, unknown_enum_number) {
  flow f;
  flow_init(&f);
  f.trigger.trigger_type = (Appflow__V1__TriggerType)99;
  EXPECT_MSG(&af_model_CreateFlowRequest, &f.r,
             ONE "Value '99' at 'triggerConfig.triggerType' " FAILED
                 "Member must satisfy enum value set: [Scheduled, Event, OnDemand]");
}

/* ---- TagResource ---- */

typedef struct tags {
  Appflow__V1__TagResourceRequest r;
  Appflow__V1__TagResourceRequest__TagsEntry e[60];
  Appflow__V1__TagResourceRequest__TagsEntry *p[60];
  char keys[60][8];
} tags;

static void tags_init(tags *t, size_t n) {
  t->r = (Appflow__V1__TagResourceRequest)APPFLOW__V1__TAG_RESOURCE_REQUEST__INIT;
  t->r.resource_arn = "arn:aws:appflow:us-east-1:123456789012:flow/f";
  for (size_t i = 0; i < n; i++) {
    t->e[i] = (Appflow__V1__TagResourceRequest__TagsEntry)
        APPFLOW__V1__TAG_RESOURCE_REQUEST__TAGS_ENTRY__INIT;
    snprintf(t->keys[i], sizeof t->keys[i], "k%c%c", 'a' + (int)(i / 26), 'a' + (int)(i % 26));
    t->e[i].key = t->keys[i];
    t->e[i].value = "v";
    t->p[i] = &t->e[i];
  }
  t->r.n_tags = n;
  t->r.tags = t->p;
}

#define TAG_KEY_RULES                                                                              \
  "[Member must have length less than or equal to 128, Member must have length greater than or "   \
  "equal to 1, Member must satisfy regular expression pattern: ^(?!aws:)[a-zA-Z+-=._:/]+$]"

Test(check, tag_keys) {
  tags t;
  tags_init(&t, 1);
  EXPECT_OK(&af_model_TagResourceRequest, &t.r);
  t.e[0].key = "aws:x"; /* the (?!aws:) lookahead */
  EXPECT_MSG(&af_model_TagResourceRequest, &t.r,
             ONE "Value '{aws:x=v}' at 'tags' " FAILED
                 "Map keys must satisfy constraint: " TAG_KEY_RULES);
  t.e[0].key = "aws-x:y";
  EXPECT_OK(&af_model_TagResourceRequest, &t.r);
  char buf[200];
  t.e[0].key = repeat(buf, 'k', 128);
  EXPECT_OK(&af_model_TagResourceRequest, &t.r);
  t.e[0].key = repeat(buf, 'k', 129);
  cr_expect_eq(check(&af_model_TagResourceRequest, &t.r), AF_ERR_VALIDATION);
  cr_expect(strstr(err.message, "' at 'tags' " FAILED
                                "Map keys must satisfy constraint: " TAG_KEY_RULES) != NULL,
            "%s", err.message);
  t.e[0].key = "";
  EXPECT_MSG(&af_model_TagResourceRequest, &t.r,
             ONE "Value '{=v}' at 'tags' " FAILED
                 "Map keys must satisfy constraint: " TAG_KEY_RULES);
  t.e[0].key = "team";
  t.e[0].value = "a|b";
  EXPECT_MSG(&af_model_TagResourceRequest, &t.r,
             ONE
             "Value '{team=a|b}' at 'tags' " FAILED
             "Map value must satisfy constraint: [Member must have length less than or equal to "
             "256, Member must satisfy regular expression pattern: [\\s\\w+-=\\.:/@]*]");
}

Test(check, tag_count_and_required_arn) {
  tags t;
  tags_init(&t, 50);
  EXPECT_OK(&af_model_TagResourceRequest, &t.r);
  tags_init(&t, 51);
  t.r.resource_arn = NULL;
  cr_expect_eq(check(&af_model_TagResourceRequest, &t.r), AF_ERR_VALIDATION);
  cr_expect(
      strncmp(err.message,
              "2 validation errors detected: Value null at 'resourceArn' " FAILED NOT_NULL
              "; Value '{kaa=v, kab=v, ",
              strlen("2 validation errors detected: Value null at 'resourceArn' " FAILED NOT_NULL
                     "; Value '{kaa=v, kab=v, ")) == 0,
      "%s", err.message);
  cr_expect(strstr(err.message, "' at 'tags' " FAILED
                                "Member must have length less than or equal to 50") != NULL,
            "%s", err.message);
}

Test(check, tag_keys_list) {
  Appflow__V1__UntagResourceRequest r = APPFLOW__V1__UNTAG_RESOURCE_REQUEST__INIT;
  char *keys[] = {"ok", "aws:no"};
  r.resource_arn = "arn:aws:appflow:us-east-1:123456789012:flow/f";
  r.n_tag_keys = 2;
  r.tag_keys = keys;
  EXPECT_MSG(&af_model_UntagResourceRequest, &r,
             ONE "Value '[ok, aws:no]' at 'tagKeys' " FAILED
                 "Member must satisfy constraint: " TAG_KEY_RULES);
}

/* ---- numbers and client tokens ---- */

Test(check, list_flows_max_results) {
  Appflow__V1__ListFlowsRequest r = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  EXPECT_OK(&af_model_ListFlowsRequest, &r);
  r.has_max_results = 1;
  r.max_results = 0;
  EXPECT_MSG(&af_model_ListFlowsRequest, &r,
             ONE "Value '0' at 'maxResults' " FAILED
                 "Member must have value greater than or equal to 1");
  r.max_results = 1;
  EXPECT_OK(&af_model_ListFlowsRequest, &r);
  r.max_results = 100;
  EXPECT_OK(&af_model_ListFlowsRequest, &r);
  r.max_results = 101;
  EXPECT_MSG(&af_model_ListFlowsRequest, &r,
             ONE "Value '101' at 'maxResults' " FAILED
                 "Member must have value less than or equal to 100");
  r.max_results = -5;
  EXPECT_MSG(&af_model_ListFlowsRequest, &r,
             ONE "Value '-5' at 'maxResults' " FAILED
                 "Member must have value greater than or equal to 1");
}

Test(check, start_flow_client_token) {
  Appflow__V1__StartFlowRequest r = APPFLOW__V1__START_FLOW_REQUEST__INIT;
  char buf[300];
  r.flow_name = "f1";
  r.client_token = "";
  EXPECT_MSG(
      &af_model_StartFlowRequest, &r,
      "2 validation errors detected: Value '' at 'clientToken' " FAILED
      "Member must satisfy regular expression pattern: [ -~]+; Value '' at 'clientToken' " FAILED
      "Member must have length greater than or equal to 1");
  r.client_token = "t";
  EXPECT_OK(&af_model_StartFlowRequest, &r);
  r.client_token = repeat(buf, 't', 256);
  EXPECT_OK(&af_model_StartFlowRequest, &r);
  r.client_token = repeat(buf, 't', 257);
  cr_expect_eq(check(&af_model_StartFlowRequest, &r), AF_ERR_VALIDATION);
  cr_expect(strstr(err.message, "at 'clientToken' " FAILED
                                "Member must have length less than or equal to 256") != NULL,
            "%s", err.message);
  r.client_token = "a\x01\\";
  EXPECT_MSG(&af_model_StartFlowRequest, &r,
             ONE "Value 'a\\x01\\x5c' at 'clientToken' " FAILED
                 "Member must satisfy regular expression pattern: [ -~]+");
  r.flow_name = NULL;
  r.client_token = NULL;
  EXPECT_MSG(&af_model_StartFlowRequest, &r, ONE "Value null at 'flowName' " FAILED NOT_NULL);
}

/* Length counts characters (code points), not bytes. */
Test(check, length_in_characters) {
  Appflow__V1__StartFlowRequest r = APPFLOW__V1__START_FLOW_REQUEST__INIT;
  char buf[3000];
  r.flow_name = buf;
  buf[0] = 'a';
  buf[1] = '\0';
  for (int i = 0; i < 255; i++)
    strcat(buf, "é"); /* 256 characters, 511 bytes: the pattern fails, not the length */
  cr_expect_eq(check(&af_model_StartFlowRequest, &r), AF_ERR_VALIDATION);
  cr_expect(strstr(err.message, "length") == NULL, "%s", err.message);
  cr_expect(strstr(err.message, "regular expression") != NULL, "%s", err.message);
  strcat(buf, "é");
  cr_expect_eq(check(&af_model_StartFlowRequest, &r), AF_ERR_VALIDATION);
  cr_expect(strstr(err.message, "Member must have length less than or equal to 256") != NULL, "%s",
            err.message);
}

/* ---- the \uXXXX pattern (Glue database names) ---- */

Test(check, unicode_pattern) {
  Appflow__V1__GlueDataCatalogConfig g = APPFLOW__V1__GLUE_DATA_CATALOG_CONFIG__INIT;
  g.role_arn = "arn:aws:iam::123456789012:role/r";
  g.table_prefix = "p";
  g.database_name = "caf\xc3\xa9 \t\xf0\x9f\x98\x80 \xef\xbf\xbd"; /* é, tab, U+1F600, U+FFFD */
  EXPECT_OK(&af_model_GlueDataCatalogConfig, &g);
  g.database_name = "a\nb"; /* \n is not in the class */
  EXPECT_MSG(&af_model_GlueDataCatalogConfig, &g,
             ONE "Value 'a\\x0ab' at 'databaseName' " FAILED
                 "Member must satisfy regular expression pattern: "
                 "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*");
  g.database_name = "\xef\xbf\xbe"; /* U+FFFE */
  cr_expect_eq(check(&af_model_GlueDataCatalogConfig, &g), AF_ERR_VALIDATION);
  g.database_name = "\xff"; /* not UTF-8 */
  cr_expect_eq(check(&af_model_GlueDataCatalogConfig, &g), AF_ERR_VALIDATION);
}

/* ---- sensitive members ---- */

Test(check, sensitive_value_not_quoted) {
  Appflow__V1__AmplitudeConnectorProfileCredentials c =
      APPFLOW__V1__AMPLITUDE_CONNECTOR_PROFILE_CREDENTIALS__INIT;
  char buf[300];
  c.api_key = "secret value";
  c.secret_key = repeat(buf, 's', 257);
  EXPECT_MSG(&af_model_AmplitudeConnectorProfileCredentials, &c,
             "2 validation errors detected: Value at 'apiKey' " FAILED
             "Member must satisfy regular expression pattern: \\S+; Value at 'secretKey' " FAILED
             "Member must have length less than or equal to 256");
  c.api_key = NULL;
  c.secret_key = "s";
  EXPECT_MSG(&af_model_AmplitudeConnectorProfileCredentials, &c,
             ONE "Value null at 'apiKey' " FAILED NOT_NULL);
}

/* ---- a message too long to hold every error ---- */

Test(check, many_errors_cut_at_a_whole_error) {
  enum { N = 200 };
  Appflow__V1__CreateFlowRequest r = APPFLOW__V1__CREATE_FLOW_REQUEST__INIT;
  Appflow__V1__Task t[N], *tp[N];
  for (int i = 0; i < N; i++) {
    t[i] = (Appflow__V1__Task)APPFLOW__V1__TASK__INIT;
    tp[i] = &t[i];
  }
  r.n_tasks = N;
  r.tasks = tp;
  cr_assert_eq(check(&af_model_CreateFlowRequest, &r), AF_ERR_VALIDATION);
  cr_expect(strncmp(err.message, "203 validation errors detected: ", 32) == 0, "%.80s",
            err.message);
  size_t len = strlen(err.message);
  cr_expect_lt(len, sizeof err.message);
  cr_expect(len > 3 * sizeof err.message / 4);
  cr_expect(strcmp(err.message + len - strlen(NOT_NULL), NOT_NULL) == 0, "%s",
            err.message + len - 60);
}

Test(check, wrong_shape) {
  Appflow__V1__ListFlowsRequest r = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  cr_expect_eq(check(&af_model_StartFlowRequest, &r), AF_ERR_INTERNAL_SERVER);
}

/* ---- from the tables: every bounded member, at its bound and one past it ---- */

/* A string of exactly n characters that satisfies sh (its pattern), made from a prefix and a
 * fill character; uniq (if any) goes right after the prefix. NULL when none is found. */
static char *valid_string(const af_model_shape *sh, int64_t n, const char *uniq) {
  static const char *const prefixes[] = {"",
                                         "arn:aws:appflow:r:1:",
                                         "arn:aws:iam:r:1:",
                                         "arn:aws:kms:r:1:",
                                         "arn:aws:secretsmanager:r:1:",
                                         "arn:aws:x:r:1:",
                                         "https://",
                                         "com.amazonaws.vpce.",
                                         "upsolver-appflow",
                                         "a.b.",
                                         "a"};
  static const char fills[] = "a0A_x -";
  if (n < 0 || n > 100000)
    return NULL;
  for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
    for (const char *f = fills; *f; f++) {
      size_t pl = strlen(prefixes[p]), ul = uniq ? strlen(uniq) : 0;
      if ((int64_t)(pl + ul) > n)
        continue;
      char *s = malloc((size_t)n + 1);
      memcpy(s, prefixes[p], pl);
      if (ul)
        memcpy(s + pl, uniq, ul);
      memset(s + pl + ul, *f, (size_t)n - pl - ul);
      s[n] = '\0';
      if (af_checker_match(checker, sh->pattern, s, (size_t)n))
        return s;
      free(s);
    }
  }
  return NULL;
}

/* Allocations of one table case, freed together. */
typedef struct pool {
  void *p[256];
  size_t n;
} pool;

static void *keep(pool *pl, void *p) {
  cr_assert_not_null(p);
  cr_assert_lt(pl->n, sizeof pl->p / sizeof pl->p[0]);
  pl->p[pl->n++] = p;
  return p;
}

static void pool_free(pool *pl) {
  for (size_t i = 0; i < pl->n; i++)
    free(pl->p[i]);
  pl->n = 0;
}

static ProtobufCMessage *new_message(pool *pl, const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = keep(pl, calloc(1, d->sizeof_message));
  d->message_init(m);
  return m;
}

static int64_t pick_len(const af_model_shape *sh) {
  int64_t n = sh->has_min ? (sh->min > 4 ? sh->min : 4) : 4;
  if (sh->has_min && n < sh->min)
    n = sh->min;
  if (sh->has_max && n > sh->max)
    n = sh->max;
  return n;
}

/* Writes one valid element of shape sh and proto type t at slot; false if none can be made. */
static bool valid_element(pool *pl, const af_model_shape *sh, const ProtobufCFieldDescriptor *f,
                          void *slot, size_t index) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    char uniq[16];
    snprintf(uniq, sizeof uniq, "%c%c", 'a' + (int)(index / 26 % 26), 'a' + (int)(index % 26));
    char *s = valid_string(sh, pick_len(sh), uniq);
    if (s == NULL && sh->enum_values != NULL && sh->n_enum > index + 1)
      s = strdup(sh->enum_values[index + 1]);
    if (s == NULL)
      return false;
    *(char **)slot = keep(pl, s);
    return true;
  }
  case PROTOBUF_C_TYPE_ENUM:
    *(int *)slot = 1;
    return true;
  case PROTOBUF_C_TYPE_MESSAGE:
    *(ProtobufCMessage **)slot = new_message(pl, f->descriptor);
    return true;
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    *(int32_t *)slot = sh->has_min ? (int32_t)sh->min : 1;
    return true;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    *(int64_t *)slot = sh->has_min ? sh->min : 1;
    return true;
  case PROTOBUF_C_TYPE_BOOL:
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_BYTES:
    return false;
  }
  return false;
}

static size_t slot_size(ProtobufCType t) {
  return t == PROTOBUF_C_TYPE_INT64 || t == PROTOBUF_C_TYPE_UINT64 || t == PROTOBUF_C_TYPE_SINT64 ||
                 t == PROTOBUF_C_TYPE_SFIXED64 || t == PROTOBUF_C_TYPE_FIXED64
             ? 8
         : t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE ? sizeof(void *)
                                                                       : 4;
}

/* Sets member i of a fresh message of st to a value of size/length n; false if it cannot. */
static bool build(pool *pl, const af_model_struct *st, size_t i, int64_t n,
                  ProtobufCMessage **out) {
  const ProtobufCFieldDescriptor *f = &st->descriptor->fields[i];
  const af_model_shape *sh = st->members[i].shape;
  ProtobufCMessage *m = new_message(pl, st->descriptor);
  char *base = (char *)m;
  *out = m;
  if (sh->type == AF_MODEL_STRING) {
    char *s = valid_string(sh, n, NULL);
    if (s == NULL) { /* cannot satisfy the pattern at this length: any string of it */
      s = malloc((size_t)n + 1);
      memset(s, 'a', (size_t)n);
      s[n] = '\0';
    }
    *(char **)(void *)(base + f->offset) = keep(pl, s);
    return f->type == PROTOBUF_C_TYPE_STRING;
  }
  if (sh->type == AF_MODEL_INTEGER || sh->type == AF_MODEL_LONG) {
    if (f->quantifier_offset)
      *(protobuf_c_boolean *)(void *)(base + f->quantifier_offset) = 1;
    if (slot_size(f->type) == 8)
      *(int64_t *)(void *)(base + f->offset) = n;
    else
      *(int32_t *)(void *)(base + f->offset) = (int32_t)n;
    return true;
  }
  if (f->label != PROTOBUF_C_LABEL_REPEATED || n <= 0)
    return false;
  void **arr = keep(pl, calloc((size_t)n, sizeof(void *) > 8 ? sizeof(void *) : 8));
  *(size_t *)(void *)(base + f->quantifier_offset) = (size_t)n;
  *(void **)(void *)(base + f->offset) = arr;
  if (sh->type == AF_MODEL_MAP) {
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    for (int64_t k = 0; k < n; k++) {
      ProtobufCMessage *e = new_message(pl, ed);
      arr[k] = e;
      if (!valid_element(pl, sh->key, &ed->fields[0], (char *)e + ed->fields[0].offset,
                         (size_t)k) ||
          !valid_element(pl, sh->member, &ed->fields[1], (char *)e + ed->fields[1].offset,
                         (size_t)k))
        return false;
      if (ed->fields[1].quantifier_offset)
        *(protobuf_c_boolean *)(void *)((char *)e + ed->fields[1].quantifier_offset) = 1;
    }
    return true;
  }
  for (int64_t k = 0; k < n; k++) {
    if (!valid_element(pl, sh->member, f, (char *)arr + (size_t)k * slot_size(f->type), (size_t)k))
      return false;
  }
  return true;
}

/* Does the message state a length or value bound of the member at path? (At its bound a value
 * may still fail another constraint: no ARN of 20 characters satisfies
 * arn:aws:secretsmanager:.*:[0-9]+:.*, the pattern of a KMS-length member.) */
static bool mentions_bound(const char *path) {
  char at[600];
  snprintf(at, sizeof at, "at '%s' failed to satisfy constraint: Member must have ", path);
  return strstr(err.message, at) != NULL;
}

Test(check, every_bounded_member_from_the_tables) {
  size_t cases = 0, skipped = 0;
  for (size_t s = 0; s < af_model_struct_count; s++) {
    const af_model_struct *st = af_model_structs[s];
    for (size_t i = 0; i < st->n_members; i++) {
      const af_model_shape *sh = st->members[i].shape;
      bool count = sh->type == AF_MODEL_LIST || sh->type == AF_MODEL_MAP;
      if (!(sh->type == AF_MODEL_STRING || sh->type == AF_MODEL_INTEGER ||
            sh->type == AF_MODEL_LONG || count))
        continue;
      const char *path = st->members[i].name;
      const char *what = count || sh->type == AF_MODEL_STRING ? "length" : "value";
      for (int bound = 0; bound < 2; bound++) {
        bool has = bound ? sh->has_max : sh->has_min;
        if (!has)
          continue;
        int64_t at = bound ? sh->max : sh->min;
        int64_t past = bound ? at + 1 : at - 1;
        pool pl = {.n = 0};
        ProtobufCMessage *m;
        /* at the bound: nothing said about this member (empty collections are absent) */
        if (!(count && at == 0)) {
          if (build(&pl, st, i, at, &m)) {
            af_err rc = check(st, m);
            cr_expect(rc == AF_OK || !mentions_bound(path), "%s.%s = %" PRId64 " refused: %s",
                      st->name, path, at, err.message);
            cases++;
          } else {
            skipped++;
          }
        }
        pool_free(&pl);
        /* one past it: the exact constraint at this member (lists of 0 are absent) */
        if (past < 0 || (count && past == 0) ||
            (!count && sh->type == AF_MODEL_STRING && past > 100000))
          continue;
        if (build(&pl, st, i, past, &m)) {
          cr_expect_eq(check(st, m), AF_ERR_VALIDATION, "%s.%s = %" PRId64 " accepted", st->name,
                       path, past);
          char want[600];
          snprintf(want, sizeof want,
                   "at '%s' failed to satisfy constraint: Member must have %s %s than or equal to "
                   "%" PRId64,
                   path, what, bound ? "less" : "greater", at);
          cr_expect(strstr(err.message, want) != NULL, "%s.%s = %" PRId64 ": '%s' lacks '%s'",
                    st->name, path, past, err.message, want);
          cases++;
        } else {
          skipped++;
        }
        pool_free(&pl);
      }
    }
  }
  cr_log_info("table cases: %zu checked, %zu skipped", cases, skipped);
  cr_expect_gt(cases, 100);
  cr_expect_eq(skipped, 0);
}

/* ---- patterns: the ASCII short cut against pcre2 ---- */

/* The checker decides ASCII values of one-class patterns ("\S+", ".*", "[\w/-]+") from a table
 * learnt from pcre2, and runs the others with pcre2's JIT; every pattern must answer exactly as
 * pcre2's interpreter does, for every short value over an alphabet of the bytes that tell classes
 * apart, and for valid and malformed UTF-8. */
static pcre2_code *reference(size_t i) {
  pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
  pcre2_set_newline(cc, PCRE2_NEWLINE_ANYCRLF);
  int code;
  PCRE2_SIZE at;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)af_model_pattern_pcre2[i], PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &code, &at, cc);
  pcre2_compile_context_free(cc);
  cr_assert_not_null(re, "pattern %zu", i);
  return re;
}

static int pattern_index(const char *text) {
  for (size_t i = 0; i < af_model_pattern_count; i++) {
    if (strcmp(af_model_pattern_pcre2[i], text) == 0)
      return (int)i;
  }
  cr_assert_fail("pattern %s is not in the model", text);
  return -1;
}

/* Flow names ("[a-zA-Z0-9][\w!@#.-]+") are checked in nearly every request: their two classes
 * are decided by the tables; patterns with anchors, literals or a class repeated before another
 * go to pcre2. */
Test(check, class_patterns_are_decided_without_pcre2) {
  static const char *const tables[] = {"[a-zA-Z0-9][\\w!@#.-]+", "\\S+", ".*", "[\\w/-]+",
                                       "[ -~]+"};
  static const char *const pcre2[] = {"arn:aws:.*:.*:[0-9]+:.*", "^\\d{3}$", "^[a-zA-Z0-9_]*$"};
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
    cr_expect(af_checker_knows_ascii(checker, pattern_index(tables[i])), "%s", tables[i]);
  for (size_t i = 0; i < sizeof pcre2 / sizeof pcre2[0]; i++)
    cr_expect_not(af_checker_knows_ascii(checker, pattern_index(pcre2[i])), "%s", pcre2[i]);
  int name = pattern_index("[a-zA-Z0-9][\\w!@#.-]+");
  cr_expect(af_checker_match(checker, name, "a-b.c@d", 7));
  cr_expect(af_checker_match(checker, name, "ab", 2));
  cr_expect_not(af_checker_match(checker, name, "a", 1));
  cr_expect_not(af_checker_match(checker, name, "-ab", 3));
  cr_expect_not(af_checker_match(checker, name, "ab c", 4));
}

Test(check, patterns_answer_as_pcre2_does) {
  static const char alphabet[] = "aZ09_-./:@!#+=,?~ \t\r\n\v\f$%^&*()[]{}\\|'\"`;<>\x01\x7f";
  size_t na = sizeof alphabet - 1;
  pcre2_match_data *md = pcre2_match_data_create(1, NULL);
  for (size_t i = 0; i < af_model_pattern_count; i++) {
    pcre2_code *re = reference(i);
    char s[8];
    /* every value of up to 2 bytes, then 3-byte values of the alphabet's every third byte */
    for (size_t len = 0; len <= 3; len++) {
      size_t step = len == 3 ? 3 : 1, total = 1;
      for (size_t k = 0; k < len; k++)
        total *= (na + step - 1) / step;
      for (size_t v = 0; v < total; v++) {
        size_t x = v;
        for (size_t k = 0; k < len; k++, x /= (na + step - 1) / step)
          s[k] = alphabet[(x % ((na + step - 1) / step)) * step];
        bool want = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL) >= 0;
        cr_assert_eq(af_checker_match(checker, (int)i, s, len), want,
                     "pattern %zu (%s) on %zu bytes starting 0x%02x: pcre2 says %d", i,
                     af_model_pattern_pcre2[i], len, len ? (unsigned char)s[0] : 0, want);
      }
    }
    const char *wide[] = {"\xc3\xa9",
                          "a\xe2\x82\xac",
                          "\xf0\x9f\x98\x80",
                          "\xff",
                          "a\xc3",
                          "\xc3"
                          "a"};
    for (size_t k = 0; k < sizeof wide / sizeof wide[0]; k++) {
      bool want = pcre2_match(re, (PCRE2_SPTR)wide[k], strlen(wide[k]), 0, 0, md, NULL) >= 0;
      cr_expect_eq(af_checker_match(checker, (int)i, wide[k], strlen(wide[k])), want,
                   "pattern %zu on non-ASCII value %zu", i, k);
    }
    pcre2_code_free(re);
  }
  pcre2_match_data_free(md);
}
