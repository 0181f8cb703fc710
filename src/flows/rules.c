/* AppFlow's own rules on a flow definition (flows/rules.h has the contract).
 *
 * Sources followed:
 *  - the projection rule and its words: AWS's reply quoted in hashicorp/terraform-provider-aws
 *    issue #34482 ("Create Flow request failed: [Task Validation Error: You must specify a
 *    projection task or a MAP_ALL task]"); a projection task is a Filter task with the
 *    PROJECTION operator (AppFlow API reference, Task and ConnectorOperator:
 *    https://docs.aws.amazon.com/appflow/1.0/APIReference/API_Task.html);
 *  - schedule expressions: EventBridge's rate and cron syntax, as flows/schedule.c parses it.
 * Where the sources say nothing (task property keys per task type, operators of Merge,
 * Passthrough, Truncate and Partition tasks) nothing is refused. */
#include "flows/rules.h"

#include "appflow_model.h"
#include "flows/schedule.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- the message ---- */

typedef struct rules_msg {
  size_t count;
  size_t len;
  bool full;
  char buf[AF_ERROR_MESSAGE_MAX - 64];
} rules_msg;

static void fail(rules_msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(rules_msg *m, const char *fmt, ...) {
  char one[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(one, sizeof one, fmt, ap);
  va_end(ap);
  m->count++;
  size_t n = strlen(one), sep = m->len ? 2 : 0;
  if (m->full || m->len + sep + n + 1 > sizeof m->buf) {
    m->full = true;
    return;
  }
  memcpy(m->buf + m->len, ", ", sep);
  memcpy(m->buf + m->len + sep, one, n + 1);
  m->len += sep + n;
}

/* Not `= {0}`: the message's 4 KiB are written before they are read, and zeroing them was
 * most of what the rules cost a CreateFlow. */
static void start_msg(rules_msg *m) {
  m->count = m->len = 0;
  m->full = false;
  m->buf[0] = '\0';
}

/* ---- the model's names ---- */

static const af_model_member *member_named(const af_model_struct *st, const char *name) {
  for (size_t i = 0; i < st->n_members; i++) {
    if (strcmp(st->members[i].name, name) == 0)
      return &st->members[i];
  }
  return NULL;
}

static const char *enum_string(const af_model_shape *sh, int v) {
  if (sh == NULL || sh->enum_values == NULL || v <= 0 || (size_t)v >= sh->n_enum)
    return NULL;
  return sh->enum_values[v];
}

static const char *connector_type_name(int v) {
  const af_model_member *m = member_named(&af_model_SourceFlowConfig, "connectorType");
  const char *s = m ? enum_string(m->shape, v) : NULL;
  return s ? s : "(none)";
}

/* The member of st (a structure with a member per connector) for the connector named want. */
static const af_model_member *member_for(const af_model_struct *st, const char *want) {
  /* the first two letters before strcasecmp: every CreateFlow asks this several times, and
   * seven connectors start with S. Names and connector types are ASCII letters and digits,
   * whose case bit 0x20 folds without the locale's table (a digit has it set already; a name's
   * NUL folds to 0x20, which no second letter of a longer name is). */
  int first = want[0] | 0x20, second = want[0] != '\0' ? want[1] | 0x20 : 0;
  for (size_t i = 0; i < st->n_members; i++) {
    const char *name = st->members[i].name;
    if ((name[0] | 0x20) == first && (name[1] | 0x20) == second && strcasecmp(name, want) == 0)
      return &st->members[i];
  }
  return NULL;
}

/* Where a connector's properties are, for a message: what holds them and the path of its
 * connectorType. A destination's paths carry its index, printed only for an error (most
 * requests have none). */
typedef struct place {
  const char *what;      /* NULL: destination number dst */
  const char *type_path; /* when what is set */
  size_t dst;            /* from 1 */
} place;

typedef struct place_text {
  char what[64], type_path[96];
} place_text;

static void print_place(const place *at, place_text *t) {
  if (at->what != NULL) {
    snprintf(t->what, sizeof t->what, "%s", at->what);
    snprintf(t->type_path, sizeof t->type_path, "%s", at->type_path);
    return;
  }
  snprintf(t->what, sizeof t->what, "destinationFlowConfigList.%zu.member", at->dst);
  snprintf(t->type_path, sizeof t->type_path, "%s.connectorType", t->what);
}

/* The one connector member set in props (a SourceConnectorProperties or
 * DestinationConnectorProperties): checks it against connectorType. */
static void check_connector(rules_msg *m, const place *at, const af_model_struct *st,
                            const ProtobufCMessage *props, bool has_type, int type,
                            const char *props_name) {
  if (props == NULL || !has_type || type == 0)
    return; /* af_check_message reports what is missing */
  const char *want = connector_type_name(type);
  place_text t;
  if (member_for(st, want) == NULL) { /* the model has no properties for it there */
    print_place(at, &t);
    fail(m,
         "Connector Validation Error: '%s' is %s, a connector that has no %s: it cannot be "
         "used there",
         t.type_path, want, props_name);
    return;
  }
  const char *set[4];
  size_t nset = 0;
  const char *base = (const char *)props;
  for (size_t i = 0; i < st->n_members && i < st->descriptor->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &st->descriptor->fields[i];
    if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
        *(void *const *)(const void *)(base + f->offset) != NULL) {
      if (nset < sizeof set / sizeof set[0])
        set[nset] = st->members[i].name;
      nset++;
    }
  }
  if (nset == 1 && strcasecmp(set[0], want) == 0)
    return;
  print_place(at, &t);
  if (nset == 0) {
    fail(m,
         "Connector Validation Error: '%s.%s' sets no connector; it must set %s, the "
         "connectorType",
         t.what, props_name, want);
  } else if (nset == 1) {
    fail(m,
         "Connector Validation Error: '%s.%s' sets %s but '%s' is '%s'; they must "
         "name the same connector",
         t.what, props_name, set[0], t.type_path, want);
  } else {
    char names[256] = "";
    for (size_t i = 0; i < nset && i < sizeof set / sizeof set[0]; i++) {
      size_t o = strlen(names);
      snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", set[i]);
    }
    fail(m,
         "Connector Validation Error: '%s.%s' sets %zu connectors (%s); it must set exactly one, "
         "%s, the connectorType",
         t.what, props_name, nset, names, want);
  }
}

/* ---- schedule expressions ---- */

/* flows/schedule.c holds the one parser; a rule only needs its verdict. */
const char *af_schedule_expression_error(const char *e) {
  af_schedule unused;
  return af_schedule_parse(e, &unused);
}

static void check_trigger(rules_msg *m, const Appflow__V1__TriggerConfig *t) {
  static const char at[] = "triggerConfig.triggerProperties.Scheduled";
  if (t == NULL || !t->has_trigger_type ||
      t->trigger_type != APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED)
    return;
  const Appflow__V1__ScheduledTriggerProperties *s =
      t->trigger_properties ? t->trigger_properties->scheduled : NULL;
  if (s == NULL) {
    fail(m, "Trigger Validation Error: a Scheduled trigger needs '%s'", at);
    return;
  }
  const char *why = af_schedule_expression_error(s->schedule_expression);
  if (s->schedule_expression != NULL && why != NULL) {
    char esc[300];
    const char *e = s->schedule_expression;
    fail(m,
         "Trigger Validation Error: Value '%s' at '%s.scheduleExpression' is not a valid "
         "schedule expression: %s",
         af_escape(esc, sizeof esc, e, strlen(e)), at, why);
  }
  const Google__Protobuf__Timestamp *a = s->schedule_start_time, *b = s->schedule_end_time;
  if (a != NULL && b != NULL &&
      (b->seconds < a->seconds || (b->seconds == a->seconds && b->nanos <= a->nanos)))
    fail(m, "Trigger Validation Error: '%s.scheduleEndTime' must be after '%s.scheduleStartTime'",
         at, at);
}

/* ---- tasks ---- */

typedef enum op_kind { K_NONE, K_FILTER, K_ARITHMETIC, K_MASK, K_VALIDATE, K_NO_OP } op_kind;

static op_kind kind_of_operator(const char *op) {
  static const char *const filter[] = {"PROJECTION",
                                       "LESS_THAN",
                                       "GREATER_THAN",
                                       "CONTAINS",
                                       "BETWEEN",
                                       "LESS_THAN_OR_EQUAL_TO",
                                       "GREATER_THAN_OR_EQUAL_TO",
                                       "EQUAL_TO",
                                       "NOT_EQUAL_TO"};
  static const char *const arithmetic[] = {"ADDITION", "MULTIPLICATION", "DIVISION", "SUBTRACTION"};
  /* first letters before strcmp: every task of every CreateFlow and UpdateFlow asks */
  for (size_t i = 0; i < sizeof filter / sizeof filter[0]; i++) {
    if (op[0] == filter[i][0] && strcmp(op, filter[i]) == 0)
      return K_FILTER;
  }
  for (size_t i = 0; i < sizeof arithmetic / sizeof arithmetic[0]; i++) {
    if (op[0] == arithmetic[i][0] && strcmp(op, arithmetic[i]) == 0)
      return K_ARITHMETIC;
  }
  if (strncmp(op, "MASK_", 5) == 0)
    return K_MASK;
  if (strncmp(op, "VALIDATE_", 9) == 0)
    return K_VALIDATE;
  if (strcmp(op, "NO_OP") == 0)
    return K_NO_OP;
  return K_NONE;
}

/* The kind of operator a task type takes, or K_NONE where the sources do not say. */
static op_kind kind_of_task(const char *type) {
  static const struct {
    const char *type;
    op_kind kind;
  } table[] = {{"Filter", K_FILTER}, {"Arithmetic", K_ARITHMETIC},
               {"Mask", K_MASK},     {"Validate", K_VALIDATE},
               {"Map", K_NO_OP},     {"Map_all", K_NO_OP}};
  for (size_t i = 0; type != NULL && i < sizeof table / sizeof table[0]; i++) {
    if (type[0] == table[i].type[0] && strcmp(type, table[i].type) == 0)
      return table[i].kind;
  }
  return K_NONE;
}

static const char *kind_hint(op_kind k) {
  switch (k) {
  case K_FILTER:
    return "PROJECTION or a comparison (LESS_THAN, GREATER_THAN, CONTAINS, BETWEEN, "
           "LESS_THAN_OR_EQUAL_TO, GREATER_THAN_OR_EQUAL_TO, EQUAL_TO, NOT_EQUAL_TO)";
  case K_ARITHMETIC:
    return "ADDITION, MULTIPLICATION, DIVISION or SUBTRACTION";
  case K_MASK:
    return "MASK_ALL, MASK_FIRST_N or MASK_LAST_N";
  case K_VALIDATE:
    return "VALIDATE_NON_NULL, VALIDATE_NON_ZERO, VALIDATE_NON_NEGATIVE or VALIDATE_NUMERIC";
  case K_NO_OP:
    return "NO_OP";
  case K_NONE:
    break;
  }
  return "";
}

/* The task's one operator (its AWS string and connector member), or NULL; *nset counts the
 * connector members set. */
static const char *task_operator(const Appflow__V1__Task *t, const char **member, size_t *nset) {
  const af_model_struct *st = &af_model_ConnectorOperator;
  const ProtobufCMessage *co = (const ProtobufCMessage *)t->connector_operator;
  const char *op = NULL;
  *nset = 0;
  if (co == NULL)
    return NULL;
  const char *base = (const char *)co;
  for (size_t i = 0; i < st->n_members && i < st->descriptor->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &st->descriptor->fields[i];
    if (f->type != PROTOBUF_C_TYPE_ENUM ||
        !*(const protobuf_c_boolean *)(const void *)(base + f->quantifier_offset))
      continue;
    int v = *(const int *)(const void *)(base + f->offset);
    if (v == 0)
      continue;
    if ((*nset)++ == 0) {
      op = enum_string(st->members[i].shape, v);
      *member = st->members[i].name;
    }
  }
  return op;
}

static void check_tasks(rules_msg *m, Appflow__V1__Task *const *tasks, size_t n) {
  const af_model_member *tt = member_named(&af_model_Task, "taskType");
  bool projection = false;
  for (size_t i = 0; i < n; i++) {
    const Appflow__V1__Task *t = tasks[i];
    const char *type = t->has_task_type ? enum_string(tt->shape, t->task_type) : NULL;
    const char *member = NULL;
    size_t nset;
    const char *op = task_operator(t, &member, &nset);
    if (type != NULL && strcmp(type, "Map_all") == 0)
      projection = true;
    if (type != NULL && strcmp(type, "Filter") == 0 && op != NULL && strcmp(op, "PROJECTION") == 0)
      projection = true;
    if (nset > 1) {
      fail(m,
           "Task Validation Error: 'tasks.%zu.member.connectorOperator' sets %zu connectors' "
           "operators; it must set one",
           i + 1, nset);
      continue;
    }
    op_kind want = kind_of_task(type);
    if (op != NULL && want != K_NONE && kind_of_operator(op) != want)
      fail(m,
           "Task Validation Error: Value '%s' at 'tasks.%zu.member.connectorOperator.%s' is not an "
           "operator of a %s task, which takes %s",
           op, i + 1, member, type, kind_hint(want));
  }
  if (!projection)
    fail(m, "Task Validation Error: You must specify a projection task or a MAP_ALL task");
}

af_err af_check_flow_rules(af_flow_op op, const Appflow__V1__TriggerConfig *trigger,
                           const Appflow__V1__SourceFlowConfig *src,
                           Appflow__V1__DestinationFlowConfig *const *dst, size_t ndst,
                           Appflow__V1__Task *const *tasks, size_t ntasks, af_error *err) {
  rules_msg m;
  start_msg(&m);
  if (src != NULL)
    check_connector(&m, &(place){"sourceFlowConfig", "sourceFlowConfig.connectorType", 0},
                    &af_model_SourceConnectorProperties,
                    (const ProtobufCMessage *)src->source_connector_properties,
                    src->has_connector_type, (int)src->connector_type, "sourceConnectorProperties");
  if (ndst != 1)
    fail(&m,
         "Destination Validation Error: 'destinationFlowConfigList' must hold exactly one "
         "destination; it holds %zu",
         ndst);
  for (size_t i = 0; i < ndst; i++) {
    check_connector(&m, &(place){NULL, NULL, i + 1}, &af_model_DestinationConnectorProperties,
                    (const ProtobufCMessage *)dst[i]->destination_connector_properties,
                    dst[i]->has_connector_type, (int)dst[i]->connector_type,
                    "destinationConnectorProperties");
  }
  check_trigger(&m, trigger);
  check_tasks(&m, tasks, ntasks);
  if (m.count == 0)
    return AF_OK;
  return af_error_set(err, AF_ERR_VALIDATION, "%s request failed: [%s]",
                      op == AF_FLOW_UPDATE ? "Update Flow" : "Create Flow", m.buf);
}

/* ---- connector profiles ---- */

const af_model_member *af_connector_member(const af_model_struct *st, int type) {
  return member_for(st, connector_type_name(type));
}

bool af_connector_takes_profile(int type) {
  return af_connector_member(&af_model_ConnectorProfileProperties, type) != NULL;
}

af_err af_check_profile_rules(af_profile_op op, int type, const char *label,
                              const Appflow__V1__ConnectorProfileConfig *cfg, af_error *err) {
  rules_msg m;
  start_msg(&m);
  const char *name = connector_type_name(type);
  bool custom = type == APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_CUSTOM_CONNECTOR;
  const place profile = {"connectorProfileConfig", "connectorType", 0};
  if (!af_connector_takes_profile(type)) {
    fail(&m, "Connector type %s takes no connector profile: flows use it without one", name);
  } else if (cfg != NULL) {
    check_connector(&m, &profile, &af_model_ConnectorProfileProperties,
                    (const ProtobufCMessage *)cfg->connector_profile_properties, true, type,
                    "connectorProfileProperties");
    if (cfg->connector_profile_credentials != NULL)
      check_connector(&m, &profile, &af_model_ConnectorProfileCredentials,
                      (const ProtobufCMessage *)cfg->connector_profile_credentials, true, type,
                      "connectorProfileCredentials");
    else if (op == AF_PROFILE_CREATE &&
             af_connector_member(&af_model_ConnectorProfileCredentials, type) != NULL)
      fail(&m,
           "'connectorProfileConfig.connectorProfileCredentials' is required: a %s connection "
           "needs its credentials",
           name);
  }
  if (op != AF_PROFILE_UPDATE && custom && (label == NULL || *label == '\0'))
    fail(&m, "'connectorLabel' is required when connectorType is CustomConnector: it names the "
             "registered connector");
  else if (op != AF_PROFILE_UPDATE && !custom && label != NULL)
    fail(&m, "'connectorLabel' is only for CustomConnector profiles; connectorType is %s", name);
  if (m.count == 0)
    return AF_OK;
  return af_error_set(
      err, AF_ERR_VALIDATION, "%s request failed: [%s]",
      op == AF_PROFILE_UPDATE ? "Update Connector Profile" : "Create Connector Profile", m.buf);
}
