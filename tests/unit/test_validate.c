/* src/flows/validate.c: every check against the AWS model of AppFlow, at its boundaries, with
 * AWS's wording and the member named. Patterns are followed literally, as Java reads them. */
#include "flows/validate.h"

#include "struct_build.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PREFIX "1 validation error detected: "
#define NOT_NULL "Member must not be null"
#define PATTERN "Member must satisfy regular expression pattern: "
#define MAX_LEN(n) "Member must have length less than or equal to " #n
#define MIN_LEN(n) "Member must have length greater than or equal to " #n
#define MAX_VAL(n) "Member must have value less than or equal to " #n
#define MIN_VAL(n) "Member must have value greater than or equal to " #n

static af_error err;

static void expect_ok(af_err rc, const char *what) {
  cr_expect_eq(rc, AF_OK, "%s refused: %s", what, rc != AF_OK ? err.message : "");
}

/* A refusal must be a ValidationException naming `member` and stating `constraint`. */
static void expect_bad(af_err rc, const char *what, const char *member, const char *constraint) {
  cr_expect_eq(rc, AF_ERR_VALIDATION, "%s accepted", what);
  if (rc != AF_ERR_VALIDATION)
    return;
  cr_expect_eq(err.code, AF_ERR_VALIDATION);
  char at[512];
  snprintf(at, sizeof at, "at '%s'", member);
  cr_expect(strstr(err.message, at) != NULL, "%s: '%s' does not name %s", what, err.message,
            member);
  cr_expect(strstr(err.message, constraint) != NULL, "%s: '%s' lacks '%s'", what, err.message,
            constraint);
}

#define OK(call) expect_ok((call), #call)
#define BAD(call, member, constraint) expect_bad((call), #call, member, constraint)

/* n copies of c after prefix, NUL-terminated, in buf (which must have room). */
static char *fill(char *buf, const char *prefix, char c, size_t n) {
  size_t p = strlen(prefix);
  memcpy(buf, prefix, p);
  memset(buf + p, c, n);
  buf[p + n] = '\0';
  return buf;
}

/* ---- FlowName ---- */

static af_err name(const char *s) { return af_check_name("flowName", s, strlen(s), &err); }

Test(name, lengths) {
  char buf[300];
  BAD(name("a"), "flowName", PATTERN "[a-zA-Z0-9][\\w!@#.-]+"); /* the pattern needs two */
  OK(name("ab"));
  OK(name(fill(buf, "", 'n', 256)));
  BAD(name(fill(buf, "", 'n', 257)), "flowName", MAX_LEN(256));
  BAD(name(""), "flowName", NOT_NULL);
  BAD(af_check_name("flowName", NULL, 0, &err), "flowName", NOT_NULL);
  cr_expect(strncmp(err.message, PREFIX, strlen(PREFIX)) == 0, "%s", err.message);
}

Test(name, characters) {
  OK(name("0a"));
  OK(name("Z9"));
  OK(name("a_"));
  static const char punct[] = "_!@#.-";
  for (const char *p = punct; *p; p++) {
    char after[] = {'x', *p, 'y', '\0'}, first[] = {*p, 'x', '\0'};
    OK(name(after));
    BAD(name(first), "flowName", PATTERN);
  }
  static const char others[] = " \t$%^&*()+=[]{};:'\"\\|,<>/?`~";
  for (const char *p = others; *p; p++) {
    char after[] = {'x', *p, 'y', '\0'};
    BAD(name(after), "flowName", PATTERN);
  }
  BAD(name("fl\xc3\xb6w"), "flowName", PATTERN); /* \w is ASCII */
  BAD(name("\xc3\x96"
           "flow"),
      "flowName", PATTERN); /* so is [a-zA-Z0-9] */
  BAD(af_check_name("flowName", "ab\0c", 4, &err), "flowName", PATTERN);
}

Test(name, message_quotes_the_value_escaped) {
  BAD(name("bad name"), "flowName", "Value 'bad name' at 'flowName'");
  BAD(name("x\x01\xff"), "flowName", "'x\\x01\\xff'");
}

/* ---- FlowDescription ---- */

static af_err description(const char *s) { return af_check_description("description", s, &err); }

Test(description, lengths) {
  static char buf[2100];
  OK(description(NULL));
  OK(description(""));
  OK(description(fill(buf, "", 'd', 2048)));
  BAD(description(fill(buf, "", 'd', 2049)), "description", MAX_LEN(2048));
}

Test(description, characters) {
  OK(description("Copies Accounts, nightly? Yes! @ops #1 - v2.0_final"));
  OK(description(" \t\n\r\f\v")); /* Java's \s */
  OK(description("!@#-.?,_"));
  static const char refused[] = ":/;$%^&*()+=[]{}'\"\\|<>`~";
  for (const char *p = refused; *p; p++) {
    char s[] = {'a', *p, 'b', '\0'};
    BAD(description(s), "description", PATTERN "[\\w!@#\\-.?,\\s]*");
  }
  BAD(description("caf\xc3\xa9"), "description", PATTERN);
  BAD(description("a\x01"), "description", PATTERN);
}

/* ---- KMSArn ---- */

static af_err kms(const char *s) { return af_check_kms_arn("kmsArn", s, &err); }

Test(kms_arn, lengths) {
  static char buf[2100];
  OK(kms(NULL));
  OK(kms(""));
  cr_assert_eq(strlen("arn:aws:kms:x:1:abc"), 19);
  BAD(kms("arn:aws:kms:x:1:abc"), "kmsArn", MIN_LEN(20));
  OK(kms("arn:aws:kms:x:1:abcd"));
  const char *prefix = "arn:aws:kms:us-east-1:123456789012:key/";
  OK(kms(fill(buf, prefix, 'k', 2048 - strlen(prefix))));
  BAD(kms(fill(buf, prefix, 'k', 2049 - strlen(prefix))), "kmsArn", MAX_LEN(2048));
}

Test(kms_arn, pattern) {
  OK(kms("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"));
  OK(kms("arn:aws:kms::123456789012:alias/x")); /* .* may be empty */
  OK(kms("arn:aws:kms:us-east-1:123456789012:"));
  OK(kms("arn:aws:kms:a:b:c:9:key/anything goes"));
  const char *pattern = PATTERN "arn:aws:kms:.*:[0-9]+:.*";
  BAD(kms("arn:aws:kmz:us-east-1:123456789012:key/x"), "kmsArn", pattern);
  BAD(kms("arn:aws:s3:us-east-1:123456789012:key/x"), "kmsArn", pattern);
  BAD(kms("ARN:AWS:KMS:us-east-1:123456789012:key/x"), "kmsArn", pattern);
  BAD(kms("xarn:aws:kms:us-east-1:123456789012:k"), "kmsArn", pattern);
  BAD(kms("arn:aws:kms:us-east-1:12345678901a:key/x"), "kmsArn", pattern); /* no :digits: */
  BAD(kms("arn:aws:kms:us-east-1::key/abcdefgh"), "kmsArn", pattern);
  BAD(kms("arn:aws:kms:123456789012:key/abcdef"), "kmsArn", pattern); /* the ':' before is kms's */
  BAD(kms("arn:aws:kms:us-east-1:123456789012:k\n"), "kmsArn", pattern); /* '.' stops at \n */
}

/* ---- ARN (resourceArn) ---- */

static af_err arn(const char *s) { return af_check_resource_arn("resourceArn", s, &err); }

Test(resource_arn, pattern_and_lengths) {
  static char buf[600];
  const char *pattern = PATTERN "arn:aws:.*:.*:[0-9]+:.*";
  OK(arn("arn:aws:appflow:us-east-1:12:flow/x"));
  OK(arn("arn:aws:appflow:us-east-1:000000000000:flow/f"));
  OK(arn("arn:aws:::1:"));
  OK(arn("arn:aws:a::1:"));
  BAD(arn("arn:aws:a:1:"), "resourceArn", pattern); /* two more colons needed before digits */
  BAD(arn("arn:aws:appflow"), "resourceArn", pattern);
  BAD(arn("arn:aws:appflow:us-east-1:flow/x"), "resourceArn", pattern);
  BAD(arn("arn:aws:appflow:us-east-1:acct:flow/x"), "resourceArn", pattern);
  BAD(arn("arn:aws-cn:appflow:cn-north-1:12:flow/x"), "resourceArn", pattern);
  BAD(arn("not an arn"), "resourceArn", pattern);
  BAD(arn(""), "resourceArn", NOT_NULL);
  BAD(arn(NULL), "resourceArn", NOT_NULL);
  const char *prefix = "arn:aws:appflow:us-east-1:000000000000:flow/";
  OK(arn(fill(buf, prefix, 'f', 512 - strlen(prefix))));
  BAD(arn(fill(buf, prefix, 'f', 513 - strlen(prefix))), "resourceArn", MAX_LEN(512));
}

/* ---- ClientToken and NextToken ---- */

static af_err client_token(const char *s) { return af_check_client_token("clientToken", s, &err); }

Test(client_token, lengths_and_characters) {
  char buf[300];
  OK(client_token(NULL));
  OK(client_token(""));
  OK(client_token("x"));
  OK(client_token(" "));
  OK(client_token(" !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"));
  OK(client_token(fill(buf, "", 't', 256)));
  BAD(client_token(fill(buf, "", 't', 257)), "clientToken", MAX_LEN(256));
  BAD(client_token("a\tb"), "clientToken", PATTERN "[ -~]+");
  BAD(client_token("a\x7f"), "clientToken", PATTERN);
  BAD(client_token("a\n"), "clientToken", PATTERN);
  BAD(client_token("caf\xc3\xa9"), "clientToken", PATTERN);
}

static af_err next_token(const char *s) { return af_check_next_token("nextToken", s, &err); }

Test(next_token, no_whitespace) {
  static char buf[2100];
  OK(next_token(NULL));
  OK(next_token("eyJ0b2tlbiI6MX0-_"));
  BAD(next_token("abc def"), "nextToken", PATTERN "\\S+");
  BAD(next_token("abc\t"), "nextToken", PATTERN);
  BAD(next_token("\nabc"), "nextToken", PATTERN);
  OK(next_token(fill(buf, "", 'n', 2048)));
  BAD(next_token(fill(buf, "", 'n', 2049)), "nextToken", MAX_LEN(2048));
}

/* ---- tags ---- */

static af_err key(const char *s) { return af_check_tag_key("tagKeys", s, &err); }

Test(tag_key, aws_prefix_is_reserved_case_sensitively) {
  const char *pattern = PATTERN "^(?!aws:)[a-zA-Z+-=._:/]+$";
  BAD(key("aws:x"), "tagKeys", pattern);
  BAD(key("aws:"), "tagKeys", pattern);
  OK(key("aws"));
  OK(key("aws_x:y"));
  OK(key("xaws:"));
  OK(key("AWS:x")); /* (?!aws:) is case-sensitive */
  OK(key("Aws:x"));
}

Test(tag_key, characters_and_lengths) {
  char buf[200];
  OK(key("team"));
  OK(key("cost-center/2024"));
  /* "+-=" in the class is the range '+'..'=': + , - . / 0-9 : ; < = */
  OK(key("+,-./0123456789:;<="));
  OK(key("a._:/Z"));
  static const char refused[] = "@#!$%^&*()[]{}|\\\"'?>` ~";
  for (const char *p = refused; *p; p++) {
    char s[] = {'k', *p, '\0'};
    BAD(key(s), "tagKeys", PATTERN);
  }
  BAD(key("k\t"), "tagKeys", PATTERN);
  BAD(key("k\xc3\xa9"), "tagKeys", PATTERN);
  OK(key(fill(buf, "", 'k', 128)));
  BAD(key(fill(buf, "", 'k', 129)), "tagKeys", MAX_LEN(128));
  BAD(key(""), "tagKeys", MIN_LEN(1));
  BAD(key(NULL), "tagKeys", MIN_LEN(1));
}

static af_err value(const char *s) { return af_check_tag_value("tags.team", s, &err); }

Test(tag_value, characters_and_lengths) {
  char buf[300];
  OK(value(""));
  OK(value(NULL));
  OK(value("data@example.com"));
  OK(value("a b\tc_d+e,f-g.h/i:j;k<l=m"));
  static const char refused[] = "#!$%^&*()[]{}|\\\"'?>`~";
  for (const char *p = refused; *p; p++) {
    char s[] = {'v', *p, '\0'};
    BAD(value(s), "tags.team", PATTERN "[\\s\\w+-=\\.:/@]*");
  }
  BAD(value("caf\xc3\xa9"), "tags.team", PATTERN);
  OK(value(fill(buf, "", 'v', 256)));
  BAD(value(fill(buf, "", 'v', 257)), "tags.team", MAX_LEN(256));
}

Test(tag, names_the_map_entry) {
  OK(af_check_tag("tags", "team", "data", &err));
  BAD(af_check_tag("tags", "team", "a#b", &err), "tags.team", PATTERN);
  BAD(af_check_tag("tags", "aws:team", "data", &err), "tags", PATTERN);
  BAD(af_check_tag("tags", "", "data", &err), "tags", MIN_LEN(1));
}

Test(count, at_most_max) {
  OK(af_check_count("tags", 0, 50, &err));
  OK(af_check_count("tags", 50, 50, &err));
  BAD(af_check_count("tags", 51, 50, &err), "tags", MAX_LEN(50));
}

Test(range, both_ends) {
  OK(af_check_range("maxResults", 1, 1, 100, &err));
  OK(af_check_range("maxResults", 100, 1, 100, &err));
  BAD(af_check_range("maxResults", 0, 1, 100, &err), "maxResults", MIN_VAL(1));
  cr_expect(strstr(err.message, "Value '0' at 'maxResults'") != NULL, "%s", err.message);
  BAD(af_check_range("maxResults", 101, 1, 100, &err), "maxResults", MAX_VAL(100));
  BAD(af_check_range("maxResults", -1, 1, 100, &err), "maxResults", MIN_VAL(1));
  cr_expect(strstr(err.message, "Value '-1'") != NULL, "%s", err.message);
  BAD(af_check_range("x", -9223372036854775807LL - 1, 0, 10, &err), "x", MIN_VAL(0));
}

/* ---- TriggerConfig ---- */

#define TRIGGER(t) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##t
#define SCHED "triggerConfig.triggerProperties.Scheduled"

static Appflow__V1__TriggerConfig tc;
static Appflow__V1__TriggerProperties tp;
static Appflow__V1__ScheduledTriggerProperties sp;

/* A valid Scheduled trigger; tests then break one member. */
static void scheduled(const char *expression) {
  appflow__v1__trigger_config__init(&tc);
  appflow__v1__trigger_properties__init(&tp);
  appflow__v1__scheduled_trigger_properties__init(&sp);
  tc.trigger_type = TRIGGER(SCHEDULED);
  tc.trigger_properties = &tp;
  tp.scheduled = &sp;
  sp.schedule_expression = (char *)expression;
}

static af_err trigger(void) { return af_check_trigger(&tc, &err); }

Test(trigger, required_members) {
  BAD(af_check_trigger(NULL, &err), "triggerConfig", NOT_NULL);
  scheduled("rate(1hours)");
  tc.trigger_type = TRIGGER(UNSPECIFIED);
  BAD(trigger(), "triggerConfig.triggerType", NOT_NULL);
  scheduled("rate(1hours)");
  tc.trigger_properties = NULL;
  BAD(trigger(), SCHED, NOT_NULL);
  scheduled("rate(1hours)");
  tp.scheduled = NULL;
  BAD(trigger(), SCHED, NOT_NULL);
  scheduled("");
  BAD(trigger(), SCHED ".scheduleExpression", NOT_NULL);
  scheduled(NULL);
  BAD(trigger(), SCHED ".scheduleExpression", NOT_NULL);
}

Test(trigger, on_demand_and_event_need_no_properties) {
  appflow__v1__trigger_config__init(&tc);
  tc.trigger_type = TRIGGER(ON_DEMAND);
  OK(trigger());
  tc.trigger_type = TRIGGER(EVENT);
  OK(trigger());
}

Test(trigger, schedule_expression) {
  const char *good[] = {"rate(5minutes)", "rate(1 hours)", "cron(0 12 * * ? *)", "rate()"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    scheduled(good[i]);
    OK(trigger());
  }
  const char *bad[] = {"every hour",    "rate(5minutes",       "rate5minutes)",
                       " rate(1hours)", "cron(0 12 * * ? *) ", "at(2024-01-01T00:00:00)",
                       "Rate(1hours)"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    scheduled(bad[i]);
    BAD(trigger(), SCHED ".scheduleExpression", "rate(");
    cr_expect(strstr(err.message, "cron(") != NULL, "%s", err.message);
  }
  static char buf[300];
  scheduled(fill(buf, "rate(", '1', 251));
  buf[255] = ')';
  cr_assert_eq(strlen(buf), 256);
  OK(trigger());
  scheduled(fill(buf, "rate(", '1', 252));
  buf[256] = ')';
  BAD(trigger(), SCHED ".scheduleExpression", MAX_LEN(256));
}

Test(trigger, offset_threshold_and_timezone) {
  scheduled("rate(1hours)");
  sp.schedule_offset = -1;
  BAD(trigger(), SCHED ".scheduleOffset", MIN_VAL(0));
  sp.schedule_offset = 0;
  OK(trigger());
  sp.schedule_offset = 36000;
  OK(trigger());
  sp.schedule_offset = 36001;
  BAD(trigger(), SCHED ".scheduleOffset", MAX_VAL(36000));
  scheduled("rate(1hours)");
  sp.flow_error_deactivation_threshold = 0; /* unset */
  OK(trigger());
  sp.flow_error_deactivation_threshold = 1;
  OK(trigger());
  sp.flow_error_deactivation_threshold = 100;
  OK(trigger());
  sp.flow_error_deactivation_threshold = 101;
  BAD(trigger(), SCHED ".flowErrorDeactivationThreshold", MAX_VAL(100));
  sp.flow_error_deactivation_threshold = -1;
  BAD(trigger(), SCHED ".flowErrorDeactivationThreshold", MIN_VAL(1));
  char buf[300];
  scheduled("rate(1hours)");
  sp.timezone = fill(buf, "", 'z', 256);
  OK(trigger());
  sp.timezone = fill(buf, "", 'z', 257);
  BAD(trigger(), SCHED ".timezone", MAX_LEN(256));
  sp.timezone = "America/New_York";
  OK(trigger());
}

/* ---- connector configurations and tasks (google.protobuf.Struct) ---- */

static af_arena build;

static void build_start(void) {
  af_arena_init(&build);
  build_arena = &build;
}

static void build_end(void) { af_arena_destroy(&build); }

TestSuite(connector, .init = build_start, .fini = build_end);

static af_err source(const Google__Protobuf__Struct *s) {
  af_err rc = af_check_connector_config("sourceFlowConfig", s, "sourceConnectorProperties", &err);
  return rc;
}

Test(connector, valid) {
  OK(source(
      obj("connectorType", str("Salesforce"), "sourceConnectorProperties", objv(obj(NULL)), NULL)));
  OK(source(obj("connectorType", str("SAPOData"), "sourceConnectorProperties", objv(obj(NULL)),
                "connectorProfileName", str("p"), NULL)));
  OK(af_check_connector_config(
      "destinationFlowConfigList.1",
      obj("connectorType", str("S3"), "destinationConnectorProperties", objv(obj(NULL)), NULL),
      "destinationConnectorProperties", &err));
}

/* The model's ConnectorType enum, in the order service-2.json lists it. */
static const char model_connector_types[] =
    "Salesforce Singular Slack Redshift S3 Marketo Googleanalytics Zendesk Servicenow Datadog "
    "Trendmicro Snowflake Dynatrace Infornexus Amplitude Veeva EventBridge LookoutMetrics Upsolver "
    "Honeycode CustomerProfiles SAPOData CustomConnector Pardot";

Test(connector, every_model_connector_type) {
  char types[sizeof model_connector_types], *save = NULL;
  memcpy(types, model_connector_types, sizeof types);
  int n = 0;
  for (char *t = strtok_r(types, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save), n++)
    OK(source(obj("connectorType", str(t), "sourceConnectorProperties", objv(obj(NULL)), NULL)));
  cr_expect_eq(n, 24);
}

Test(connector, enum_message_lists_the_model_values) {
  BAD(source(
          obj("connectorType", str("Kafka"), "sourceConnectorProperties", objv(obj(NULL)), NULL)),
      "sourceFlowConfig.connectorType", "Value 'Kafka'");
  char want[sizeof model_connector_types + 64] = "Member must satisfy enum value set: [";
  size_t n = strlen(want);
  for (const char *p = model_connector_types; *p; p++) {
    if (*p == ' ')
      want[n++] = ',';
    want[n++] = *p;
  }
  want[n++] = ']';
  want[n] = '\0';
  cr_expect(strstr(err.message, want) != NULL, "'%s' lacks '%s'", err.message, want);
}

Test(connector, missing_or_wrong_members) {
  BAD(source(NULL), "sourceFlowConfig", NOT_NULL);
  BAD(source(obj(NULL)), "sourceFlowConfig.connectorType", NOT_NULL);
  BAD(source(obj("sourceConnectorProperties", objv(obj(NULL)), NULL)),
      "sourceFlowConfig.connectorType", NOT_NULL);
  BAD(source(
          obj("connectorType", null_value(), "sourceConnectorProperties", objv(obj(NULL)), NULL)),
      "sourceFlowConfig.connectorType", NOT_NULL);
  BAD(source(obj("connectorType", num(3), "sourceConnectorProperties", objv(obj(NULL)), NULL)),
      "sourceFlowConfig.connectorType", "Member must be a string");
  BAD(source(obj("connectorType", objv(obj(NULL)), "sourceConnectorProperties", objv(obj(NULL)),
                 NULL)),
      "sourceFlowConfig.connectorType", "Member must be a string");
  BAD(source(obj("connectorType", str("Salesforce"), NULL)),
      "sourceFlowConfig.sourceConnectorProperties", NOT_NULL);
  BAD(source(obj("connectorType", str("Salesforce"), "sourceConnectorProperties", str("x"), NULL)),
      "sourceFlowConfig.sourceConnectorProperties", "Member must be an object");
  BAD(source(
          obj("connectorType", str("Salesforce"), "sourceConnectorProperties", list(NULL), NULL)),
      "sourceFlowConfig.sourceConnectorProperties", "Member must be an object");
  /* The other side's properties member does not count. */
  BAD(source(
          obj("connectorType", str("S3"), "destinationConnectorProperties", objv(obj(NULL)), NULL)),
      "sourceFlowConfig.sourceConnectorProperties", NOT_NULL);
}

Test(connector, type_outside_the_enum) {
  const char *bad[] = {"salesforce", "SalesForce", "Salesforce ", "", "Kafka", "S3\x01"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    BAD(source(
            obj("connectorType", str(bad[i]), "sourceConnectorProperties", objv(obj(NULL)), NULL)),
        "sourceFlowConfig.connectorType", "Member must satisfy enum value set: [Salesforce, ");
    cr_expect(strstr(err.message, "SAPOData, CustomConnector, Pardot]") != NULL, "%s", err.message);
  }
}

static af_err task(const Google__Protobuf__Struct *s) {
  af_err rc = af_check_task("tasks.2", s, &err);
  return rc;
}

Test(connector, tasks) {
  OK(task(obj("sourceFields", list(NULL), "taskType", str("Map"), NULL)));
  OK(task(obj("sourceFields", list(NULL), "taskType", str("Filter"), "destinationField", str("Id"),
              NULL)));
  BAD(task(NULL), "tasks.2", NOT_NULL);
  BAD(task(obj("taskType", str("Map"), NULL)), "tasks.2.sourceFields", NOT_NULL);
  BAD(task(obj("sourceFields", str("Id"), "taskType", str("Map"), NULL)), "tasks.2.sourceFields",
      "Member must be a list");
  BAD(task(obj("sourceFields", objv(obj(NULL)), "taskType", str("Map"), NULL)),
      "tasks.2.sourceFields", "Member must be a list");
  OK(task(obj("sourceFields", list(str("Id"), str("Name"), NULL), "taskType", str("Map"), NULL)));
  BAD(task(obj("sourceFields", list(str("Id"), num(1), NULL), "taskType", str("Map"), NULL)),
      "tasks.2.sourceFields.2", "Member must be a string");
  BAD(task(obj("sourceFields", list(null_value(), str("Id"), NULL), "taskType", str("Map"), NULL)),
      "tasks.2.sourceFields.1", "Member must be a string");
  BAD(task(obj("sourceFields", list(NULL), NULL)), "tasks.2.taskType", NOT_NULL);
  BAD(task(obj("sourceFields", list(NULL), "taskType", null_value(), NULL)), "tasks.2.taskType",
      NOT_NULL);
  BAD(task(obj("sourceFields", list(NULL), "taskType", num(1), NULL)), "tasks.2.taskType",
      "Member must be a string");
}

Test(connector, struct_string) {
  Google__Protobuf__Struct *s = obj("a", str("x"), "n", num(2), "o", objv(obj(NULL)), NULL);
  cr_expect_str_eq(af_struct_string(s, "a"), "x");
  cr_expect_null(af_struct_string(s, "n"));
  cr_expect_null(af_struct_string(s, "o"));
  cr_expect_null(af_struct_string(s, "missing"));
  cr_expect_null(af_struct_string(NULL, "a"));
}

/* ---- AWS wording ---- */

/* The whole message, for one check of each form. */
static void expect_message(af_err rc, const char *want) {
  cr_expect_eq(rc, AF_ERR_VALIDATION);
  cr_expect_str_eq(err.message, want);
}

Test(wording, model_constraints_use_the_aws_form) {
  char buf[300];
  expect_message(name("bad name"), PREFIX "Value 'bad name' at 'flowName' failed to satisfy "
                                          "constraint: " PATTERN "[a-zA-Z0-9][\\w!@#.-]+");
  expect_message(name(fill(buf, "", 'n', 257)),
                 PREFIX "Value at 'flowName' failed to satisfy constraint: " MAX_LEN(256));
  expect_message(af_check_name("flowName", NULL, 0, &err),
                 PREFIX "Value null at 'flowName' failed to satisfy constraint: " NOT_NULL);
  expect_message(kms("arn:aws:kms:x:1:abc"),
                 PREFIX "Value at 'kmsArn' failed to satisfy constraint: " MIN_LEN(20));
  expect_message(af_check_range("maxResults", 101, 1, 100, &err),
                 PREFIX "Value '101' at 'maxResults' failed to satisfy constraint: " MAX_VAL(100));
  expect_message(key("aws:x"),
                 PREFIX "Value 'aws:x' at 'tagKeys' failed to satisfy constraint: " PATTERN
                        "^(?!aws:)[a-zA-Z+-=._:/]+$");
}
