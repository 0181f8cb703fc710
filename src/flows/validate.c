#include "flows/validate.h"

#include <stdio.h>
#include <string.h>

#define PREFIX "1 validation error detected: "

/* The untrusted value quoted in a message is escaped and cut to fit. */
#define QUOTE_MAX 200

static af_err missing(const char *member, af_error *err) {
  return af_error_set(err, AF_ERR_VALIDATION,
                      PREFIX "Value null at '%s' failed to satisfy constraint: Member must not be "
                             "null",
                      member);
}

static af_err too_long(const char *member, size_t max, af_error *err) {
  return af_error_set(err, AF_ERR_VALIDATION,
                      PREFIX "Value at '%s' failed to satisfy constraint: Member must have length "
                             "less than or equal to %zu",
                      member, max);
}

static af_err too_short(const char *member, size_t min, af_error *err) {
  return af_error_set(err, AF_ERR_VALIDATION,
                      PREFIX "Value at '%s' failed to satisfy constraint: Member must have length "
                             "greater than or equal to %zu",
                      member, min);
}

static af_err no_match(const char *member, const char *value, const char *pattern, af_error *err) {
  char esc[QUOTE_MAX];
  return af_error_set(err, AF_ERR_VALIDATION,
                      PREFIX "Value '%s' at '%s' failed to satisfy constraint: Member must satisfy "
                             "regular expression pattern: %s",
                      af_escape(esc, sizeof esc, value, strlen(value)), member, pattern);
}

static bool is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Java's \s: space, \t, \n, \x0B, \f, \r. */
static bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static bool is_alnum(unsigned char c) { return is_word(c) && c != '_'; }

typedef bool (*char_class)(unsigned char c);

static bool all_in(const char *s, size_t len, char_class in) {
  for (size_t i = 0; i < len; i++) {
    if (!in((unsigned char)s[i]))
      return false;
  }
  return true;
}

/* Absent is fine; else length within [min, max] and every character in the class. */
static af_err check_string(const char *member, const char *s, size_t min, size_t max, char_class in,
                           const char *pattern, af_error *err) {
  size_t len = s ? strlen(s) : 0;
  if (len == 0)
    return AF_OK;
  if (len > max)
    return too_long(member, max, err);
  if (len < min)
    return too_short(member, min, err);
  return in == NULL || all_in(s, len, in) ? AF_OK : no_match(member, s, pattern, err);
}

static bool name_char(unsigned char c) {
  return is_word(c) || c == '!' || c == '@' || c == '#' || c == '.' || c == '-';
}

af_err af_check_name(const char *member, const char *name, size_t len, af_error *err) {
  static const char pattern[] = "[a-zA-Z0-9][\\w!@#.-]+";
  if (name == NULL || len == 0)
    return missing(member, err);
  if (len > 256)
    return too_long(member, 256, err);
  if (len < 2 || !is_alnum((unsigned char)name[0]) || !all_in(name + 1, len - 1, name_char)) {
    char esc[QUOTE_MAX * 5];
    return af_error_set(err, AF_ERR_VALIDATION,
                        PREFIX "Value '%s' at '%s' failed to satisfy constraint: Member must "
                               "satisfy regular expression pattern: %s",
                        af_escape(esc, sizeof esc, name, len), member, pattern);
  }
  return AF_OK;
}

static bool description_char(unsigned char c) {
  return is_word(c) || is_space(c) || strchr("!@#-.?,", c) != NULL;
}

af_err af_check_description(const char *member, const char *s, af_error *err) {
  return check_string(member, s, 0, 2048, description_char, "[\\w!@#\\-.?,\\s]*", err);
}

/* Java's '.' matches anything but a line terminator (ASCII ones here; others are not ASCII
 * and fail the patterns they would appear in anyway). */
static bool is_dot(unsigned char c) { return c != '\n' && c != '\r' && c != '\0'; }

/* The first ":" [0-9]+ ":" in s, or NULL. */
static const char *digits_between_colons(const char *s) {
  for (const char *p = strchr(s, ':'); p != NULL; p = strchr(p + 1, ':')) {
    size_t d = strspn(p + 1, "0123456789");
    if (d > 0 && p[1 + d] == ':')
      return p;
  }
  return NULL;
}

static bool all_dots(const char *s) { return all_in(s, strlen(s), is_dot); }

af_err af_check_kms_arn(const char *member, const char *s, af_error *err) {
  static const char pattern[] = "arn:aws:kms:.*:[0-9]+:.*";
  af_err rc = check_string(member, s, 20, 2048, NULL, pattern, err);
  if (rc != AF_OK || s == NULL || *s == '\0')
    return rc;
  bool ok =
      strncmp(s, "arn:aws:kms:", 12) == 0 && all_dots(s) && digits_between_colons(s + 12) != NULL;
  return ok ? AF_OK : no_match(member, s, pattern, err);
}

af_err af_check_resource_arn(const char *member, const char *s, af_error *err) {
  static const char pattern[] = "arn:aws:.*:.*:[0-9]+:.*";
  if (s == NULL || *s == '\0')
    return missing(member, err);
  af_err rc = check_string(member, s, 1, 512, NULL, pattern, err);
  if (rc != AF_OK)
    return rc;
  /* After "arn:aws:", a colon, then (later) ":digits:". */
  const char *first = strncmp(s, "arn:aws:", 8) == 0 ? strchr(s + 8, ':') : NULL;
  bool ok = first != NULL && all_dots(s) && digits_between_colons(first + 1) != NULL;
  return ok ? AF_OK : no_match(member, s, pattern, err);
}

static bool printable(unsigned char c) { return c >= ' ' && c <= '~'; }

af_err af_check_client_token(const char *member, const char *s, af_error *err) {
  return check_string(member, s, 1, 256, printable, "[ -~]+", err);
}

static bool not_space(unsigned char c) { return !is_space(c); }

af_err af_check_next_token(const char *member, const char *s, af_error *err) {
  return check_string(member, s, 1, 2048, not_space, "\\S+", err);
}

static bool tag_key_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '+' && c <= '=') || c == '.' ||
         c == '_' || c == ':' || c == '/';
}

af_err af_check_tag_key(const char *member, const char *key, af_error *err) {
  static const char pattern[] = "^(?!aws:)[a-zA-Z+-=._:/]+$";
  if (key == NULL || *key == '\0')
    return too_short(member, 1, err);
  af_err rc = check_string(member, key, 1, 128, tag_key_char, pattern, err);
  if (rc == AF_OK && strncmp(key, "aws:", 4) == 0)
    return no_match(member, key, pattern, err);
  return rc;
}

static bool tag_value_char(unsigned char c) {
  return is_word(c) || is_space(c) || (c >= '+' && c <= '=') || c == '.' || c == ':' || c == '/' ||
         c == '@';
}

af_err af_check_tag_value(const char *member, const char *value, af_error *err) {
  return check_string(member, value, 0, 256, tag_value_char, "[\\s\\w+-=\\.:/@]*", err);
}

af_err af_check_tag(const char *member, const char *key, const char *value, af_error *err) {
  af_err rc = af_check_tag_key(member, key, err);
  if (rc != AF_OK)
    return rc;
  char path[256];
  snprintf(path, sizeof path, "%s.%.128s", member, key);
  return af_check_tag_value(path, value, err);
}

af_err af_check_count(const char *member, size_t n, size_t max, af_error *err) {
  if (n <= max)
    return AF_OK;
  return af_error_set(err, AF_ERR_VALIDATION,
                      PREFIX "Value at '%s' failed to satisfy constraint: Member must have length "
                             "less than or equal to %zu (it has %zu)",
                      member, max, n);
}

af_err af_check_range(const char *member, long long v, long long min, long long max,
                      af_error *err) {
  if (v >= min && v <= max)
    return AF_OK;
  return af_error_set(err, AF_ERR_VALIDATION,
                      PREFIX "Value '%lld' at '%s' failed to satisfy constraint: Member must have "
                             "value %s than or equal to %lld",
                      v, member, v < min ? "greater" : "less", v < min ? min : max);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static af_err check_schedule(const Appflow__V1__ScheduledTriggerProperties *p, af_error *err) {
  static const char member[] = "triggerConfig.triggerProperties.Scheduled.scheduleExpression";
  const char *e = p->schedule_expression;
  if (e == NULL || *e == '\0')
    return missing(member, err);
  af_err rc = check_string(member, e, 1, 256, is_dot, ".*", err);
  if (rc != AF_OK)
    return rc;
  if ((strncmp(e, "rate(", 5) != 0 && strncmp(e, "cron(", 5) != 0) || !ends_with(e, ")")) {
    char esc[QUOTE_MAX];
    return af_error_set(err, AF_ERR_VALIDATION,
                        "Schedule expression '%s' at '%s' is not valid: use rate(...) such as "
                        "rate(1hours), or cron(...) such as cron(0 12 * * ? *)",
                        af_escape(esc, sizeof esc, e, strlen(e)), member);
  }
  rc = af_check_range("triggerConfig.triggerProperties.Scheduled.scheduleOffset",
                      p->schedule_offset, 0, 36000, err);
  if (rc == AF_OK && p->flow_error_deactivation_threshold != 0)
    rc = af_check_range("triggerConfig.triggerProperties.Scheduled.flowErrorDeactivationThreshold",
                        p->flow_error_deactivation_threshold, 1, 100, err);
  if (rc == AF_OK)
    rc = check_string("triggerConfig.triggerProperties.Scheduled.timezone", p->timezone, 0, 256,
                      is_dot, ".*", err);
  return rc;
}

af_err af_check_trigger(const Appflow__V1__TriggerConfig *tc, af_error *err) {
  if (tc == NULL)
    return missing("triggerConfig", err);
  if (tc->trigger_type == APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_UNSPECIFIED)
    return missing("triggerConfig.triggerType", err);
  const Appflow__V1__TriggerProperties *tp = tc->trigger_properties;
  if (tc->trigger_type == APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED) {
    if (tp == NULL || tp->scheduled == NULL)
      return missing("triggerConfig.triggerProperties.Scheduled", err);
    return check_schedule(tp->scheduled, err);
  }
  return AF_OK;
}

static const Google__Protobuf__Value *struct_get(const Google__Protobuf__Struct *s,
                                                 const char *key) {
  for (size_t i = 0; s != NULL && i < s->n_fields; i++) {
    if (s->fields[i]->key != NULL && strcmp(s->fields[i]->key, key) == 0)
      return s->fields[i]->value;
  }
  return NULL;
}

const char *af_struct_string(const Google__Protobuf__Struct *s, const char *key) {
  const Google__Protobuf__Value *v = struct_get(s, key);
  return v != NULL && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE ? v->string_value
                                                                                 : NULL;
}

static const char *const connector_types[] = {
    "Salesforce",
    "Singular",
    "Slack",
    "Redshift",
    "S3",
    "Marketo",
    "Googleanalytics",
    "Zendesk",
    "Servicenow",
    "Datadog",
    "Trendmicro",
    "Snowflake",
    "Dynatrace",
    "Infornexus",
    "Amplitude",
    "Veeva",
    "EventBridge",
    "LookoutMetrics",
    "Upsolver",
    "Honeycode",
    "CustomerProfiles",
    "SAPOData",
    "CustomConnector",
    "Pardot",
};
#define N_CONNECTOR_TYPES (sizeof connector_types / sizeof connector_types[0])

static bool known_connector(const char *t) {
  for (size_t i = 0; i < N_CONNECTOR_TYPES; i++) {
    if (strcmp(connector_types[i], t) == 0)
      return true;
  }
  return false;
}

static af_err wrong_kind(const char *member, const char *want, af_error *err) {
  return af_error_set(err, AF_ERR_VALIDATION,
                      PREFIX "Value at '%s' failed to satisfy constraint: Member must be %s",
                      member, want);
}

/* s.key must be present and of the given kind. */
static af_err require(const char *member, const Google__Protobuf__Struct *s, const char *key,
                      Google__Protobuf__Value__KindCase kind, const char *kind_name,
                      af_error *err) {
  char path[256];
  snprintf(path, sizeof path, "%s.%s", member, key);
  const Google__Protobuf__Value *v = struct_get(s, key);
  if (v == NULL || v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE)
    return missing(path, err);
  return v->kind_case == kind ? AF_OK : wrong_kind(path, kind_name, err);
}

af_err af_check_connector_config(const char *member, const Google__Protobuf__Struct *s,
                                 const char *properties, af_error *err) {
  if (s == NULL)
    return missing(member, err);
  af_err rc = require(member, s, "connectorType", GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE,
                      "a string", err);
  if (rc != AF_OK)
    return rc;
  const char *type = af_struct_string(s, "connectorType");
  if (!known_connector(type)) {
    char esc[QUOTE_MAX], list[512] = "";
    for (size_t i = 0; i < N_CONNECTOR_TYPES; i++) {
      size_t n = strlen(list);
      snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", connector_types[i]);
    }
    return af_error_set(err, AF_ERR_VALIDATION,
                        PREFIX "Value '%s' at '%s.connectorType' failed to satisfy constraint: "
                               "Member must satisfy enum value set: [%s]",
                        af_escape(esc, sizeof esc, type, strlen(type)), member, list);
  }
  return require(member, s, properties, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE, "an object",
                 err);
}

af_err af_check_task(const char *member, const Google__Protobuf__Struct *s, af_error *err) {
  if (s == NULL)
    return missing(member, err);
  af_err rc =
      require(member, s, "sourceFields", GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE, "a list", err);
  const Google__Protobuf__ListValue *fields =
      rc == AF_OK ? struct_get(s, "sourceFields")->list_value : NULL;
  for (size_t i = 0; fields != NULL && rc == AF_OK && i < fields->n_values; i++) {
    if (fields->values[i]->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE) {
      char path[256];
      snprintf(path, sizeof path, "%s.sourceFields.%zu", member, i + 1);
      rc = wrong_kind(path, "a string", err);
    }
  }
  if (rc == AF_OK)
    rc =
        require(member, s, "taskType", GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE, "a string", err);
  return rc;
}
