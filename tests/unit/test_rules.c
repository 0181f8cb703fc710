/* src/flows/rules.c: AppFlow's own rules on a flow definition and on a connector profile, each
 * passing and failing, and which connector types take a profile (checked against the model
 * file itself). */
#include "flows/rules.h"

#include "appflow_model.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>

static af_error err;

typedef struct flow {
  Appflow__V1__TriggerConfig trigger;
  Appflow__V1__TriggerProperties tprops;
  Appflow__V1__ScheduledTriggerProperties sched;
  Google__Protobuf__Timestamp start, end;
  Appflow__V1__SourceFlowConfig src;
  Appflow__V1__SourceConnectorProperties sprops;
  Appflow__V1__S3SourceProperties s3src;
  Appflow__V1__SalesforceSourceProperties sfsrc;
  Appflow__V1__GoogleAnalyticsSourceProperties gasrc;
  Appflow__V1__DestinationFlowConfig dst[2];
  Appflow__V1__DestinationFlowConfig *dsts[2];
  Appflow__V1__DestinationConnectorProperties dprops;
  Appflow__V1__S3DestinationProperties s3dst;
  Appflow__V1__Task task[3];
  Appflow__V1__Task *tasks[3];
  Appflow__V1__ConnectorOperator op[3];
  size_t ndst, ntasks;
} flow;

/* S3 to S3, on demand, one Map_all task with the S3 operator NO_OP. */
static void flow_init(flow *f) {
  memset(f, 0, sizeof *f);
  f->trigger = (Appflow__V1__TriggerConfig)APPFLOW__V1__TRIGGER_CONFIG__INIT;
  f->trigger.has_trigger_type = 1;
  f->trigger.trigger_type = APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND;
  f->tprops = (Appflow__V1__TriggerProperties)APPFLOW__V1__TRIGGER_PROPERTIES__INIT;
  f->sched =
      (Appflow__V1__ScheduledTriggerProperties)APPFLOW__V1__SCHEDULED_TRIGGER_PROPERTIES__INIT;
  f->start = (Google__Protobuf__Timestamp)GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  f->end = (Google__Protobuf__Timestamp)GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  f->src = (Appflow__V1__SourceFlowConfig)APPFLOW__V1__SOURCE_FLOW_CONFIG__INIT;
  f->sprops =
      (Appflow__V1__SourceConnectorProperties)APPFLOW__V1__SOURCE_CONNECTOR_PROPERTIES__INIT;
  f->s3src = (Appflow__V1__S3SourceProperties)APPFLOW__V1__S3_SOURCE_PROPERTIES__INIT;
  f->sfsrc =
      (Appflow__V1__SalesforceSourceProperties)APPFLOW__V1__SALESFORCE_SOURCE_PROPERTIES__INIT;
  f->gasrc = (Appflow__V1__GoogleAnalyticsSourceProperties)
      APPFLOW__V1__GOOGLE_ANALYTICS_SOURCE_PROPERTIES__INIT;
  f->s3src.bucket_name = "src";
  f->sprops.s3 = &f->s3src;
  f->src.has_connector_type = 1;
  f->src.connector_type = APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3;
  f->src.source_connector_properties = &f->sprops;
  f->dprops = (Appflow__V1__DestinationConnectorProperties)
      APPFLOW__V1__DESTINATION_CONNECTOR_PROPERTIES__INIT;
  f->s3dst = (Appflow__V1__S3DestinationProperties)APPFLOW__V1__S3_DESTINATION_PROPERTIES__INIT;
  f->s3dst.bucket_name = "dst";
  f->dprops.s3 = &f->s3dst;
  for (int i = 0; i < 2; i++) {
    f->dst[i] = (Appflow__V1__DestinationFlowConfig)APPFLOW__V1__DESTINATION_FLOW_CONFIG__INIT;
    f->dst[i].has_connector_type = 1;
    f->dst[i].connector_type = APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3;
    f->dst[i].destination_connector_properties = &f->dprops;
    f->dsts[i] = &f->dst[i];
  }
  f->ndst = 1;
  for (int i = 0; i < 3; i++) {
    f->task[i] = (Appflow__V1__Task)APPFLOW__V1__TASK__INIT;
    f->op[i] = (Appflow__V1__ConnectorOperator)APPFLOW__V1__CONNECTOR_OPERATOR__INIT;
    f->task[i].has_task_type = 1;
    f->task[i].task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_MAP_ALL;
    f->op[i].has_s3 = 1;
    f->op[i].s3 = APPFLOW__V1__S3_CONNECTOR_OPERATOR__S3_CONNECTOR_OPERATOR_NO_OP;
    f->task[i].connector_operator = &f->op[i];
    f->tasks[i] = &f->task[i];
  }
  f->ntasks = 1;
}

static af_err rules(flow *f) {
  memset(&err, 0, sizeof err);
  return af_check_flow_rules(AF_FLOW_CREATE, &f->trigger, &f->src, f->dsts, f->ndst, f->tasks,
                             f->ntasks, &err);
}

#define OK(f) cr_expect_eq(rules(f), AF_OK, "refused: %s", err.message)
#define BAD(f, text)                                                                               \
  do {                                                                                             \
    cr_expect_eq(rules(f), AF_ERR_VALIDATION);                                                     \
    cr_expect_str_eq(err.message, text);                                                           \
  } while (0)

Test(rules, valid_flow) {
  flow f;
  flow_init(&f);
  OK(&f);
}

Test(rules, source_connector_agrees) {
  flow f;
  flow_init(&f);
  f.src.connector_type = APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_SALESFORCE;
  BAD(&f,
      "Create Flow request failed: [Connector Validation Error: "
      "'sourceFlowConfig.sourceConnectorProperties' sets S3 but 'sourceFlowConfig.connectorType' "
      "is 'Salesforce'; they must name the same connector]");
  f.sprops.s3 = NULL;
  f.sfsrc.object = "Account";
  f.sprops.salesforce = &f.sfsrc;
  OK(&f);
  f.sprops.s3 = &f.s3src;
  BAD(&f,
      "Create Flow request failed: [Connector Validation Error: "
      "'sourceFlowConfig.sourceConnectorProperties' sets 2 connectors (S3, Salesforce); it must "
      "set exactly one, Salesforce, the connectorType]");
  f.sprops.s3 = NULL;
  f.sprops.salesforce = NULL;
  BAD(&f, "Create Flow request failed: [Connector Validation Error: "
          "'sourceFlowConfig.sourceConnectorProperties' sets no connector; it must set Salesforce, "
          "the connectorType]");
}

Test(rules, connector_names_differ_in_case) {
  flow f;
  flow_init(&f);
  f.src.connector_type = APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_GOOGLEANALYTICS;
  f.sprops.s3 = NULL;
  f.gasrc.object = "o";
  f.sprops.google_analytics = &f.gasrc;
  f.op[0].has_s3 = 0;
  f.op[0].has_google_analytics = 1;
  f.op[0].google_analytics =
      APPFLOW__V1__GOOGLE_ANALYTICS_CONNECTOR_OPERATOR__GOOGLE_ANALYTICS_CONNECTOR_OPERATOR_PROJECTION;
  f.task[0].task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_FILTER;
  OK(&f); /* "Googleanalytics" is member GoogleAnalytics; a projection task */
}

Test(rules, one_destination) {
  flow f;
  flow_init(&f);
  f.ndst = 2;
  BAD(&f, "Create Flow request failed: [Destination Validation Error: 'destinationFlowConfigList' "
          "must hold exactly one destination; it holds 2]");
  f.ndst = 1;
  f.dst[0].connector_type = APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_REDSHIFT;
  BAD(&f, "Create Flow request failed: [Connector Validation Error: "
          "'destinationFlowConfigList.1.member.destinationConnectorProperties' sets S3 but "
          "'destinationFlowConfigList.1.member.connectorType' is 'Redshift'; they must name the "
          "same connector]");
}

Test(rules, projection_or_map_all) {
  flow f;
  flow_init(&f);
  f.task[0].task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_MAP;
  BAD(&f, "Create Flow request failed: [Task Validation Error: You must specify a projection task "
          "or a MAP_ALL task]");
  memset(&err, 0, sizeof err);
  cr_expect_eq(af_check_flow_rules(AF_FLOW_UPDATE, &f.trigger, &f.src, f.dsts, f.ndst, f.tasks,
                                   f.ntasks, &err),
               AF_ERR_VALIDATION);
  cr_expect_str_eq(err.message, "Update Flow request failed: [Task Validation Error: You must "
                                "specify a projection task or a MAP_ALL task]");
  f.ntasks = 2;
  f.task[1].task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_FILTER;
  f.op[1].s3 = APPFLOW__V1__S3_CONNECTOR_OPERATOR__S3_CONNECTOR_OPERATOR_PROJECTION;
  OK(&f);
  f.op[1].s3 = APPFLOW__V1__S3_CONNECTOR_OPERATOR__S3_CONNECTOR_OPERATOR_BETWEEN;
  BAD(&f, "Create Flow request failed: [Task Validation Error: You must specify a projection task "
          "or a MAP_ALL task]");
  f.ntasks = 0;
  BAD(&f, "Create Flow request failed: [Task Validation Error: You must specify a projection task "
          "or a MAP_ALL task]");
}

Test(rules, operator_fits_task_type) {
  flow f;
  flow_init(&f);
  f.ntasks = 3;
  f.task[1].task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_MASK;
  f.op[1].s3 = APPFLOW__V1__S3_CONNECTOR_OPERATOR__S3_CONNECTOR_OPERATOR_MASK_ALL;
  f.task[2].task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_ARITHMETIC;
  f.op[2].s3 = APPFLOW__V1__S3_CONNECTOR_OPERATOR__S3_CONNECTOR_OPERATOR_ADDITION;
  OK(&f);
  f.op[1].s3 = APPFLOW__V1__S3_CONNECTOR_OPERATOR__S3_CONNECTOR_OPERATOR_NO_OP;
  f.task[2].task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_VALIDATE;
  BAD(&f, "Create Flow request failed: [Task Validation Error: Value 'NO_OP' at "
          "'tasks.2.member.connectorOperator.S3' is not an operator of a Mask task, which takes "
          "MASK_ALL, MASK_FIRST_N or MASK_LAST_N, Task Validation Error: Value 'ADDITION' at "
          "'tasks.3.member.connectorOperator.S3' is not an operator of a Validate task, which "
          "takes VALIDATE_NON_NULL, VALIDATE_NON_ZERO, VALIDATE_NON_NEGATIVE or VALIDATE_NUMERIC]");
  /* Merge, Truncate, Passthrough: the sources do not say, nothing is refused */
  f.task[1].task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_MERGE;
  f.task[2].task_type = APPFLOW__V1__TASK_TYPE__TASK_TYPE_TRUNCATE;
  OK(&f);
  f.op[2].has_salesforce = 1;
  f.op[2].salesforce =
      APPFLOW__V1__SALESFORCE_CONNECTOR_OPERATOR__SALESFORCE_CONNECTOR_OPERATOR_NO_OP;
  BAD(&f, "Create Flow request failed: [Task Validation Error: 'tasks.3.member.connectorOperator' "
          "sets 2 connectors' operators; it must set one]");
}

Test(rules, scheduled_trigger) {
  flow f;
  flow_init(&f);
  f.trigger.trigger_type = APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED;
  BAD(&f, "Create Flow request failed: [Trigger Validation Error: a Scheduled trigger needs "
          "'triggerConfig.triggerProperties.Scheduled']");
  f.trigger.trigger_properties = &f.tprops;
  f.tprops.scheduled = &f.sched;
  f.sched.schedule_expression = "rate(5 minutes)";
  OK(&f);
  f.sched.schedule_expression = "rate(1 minutes)";
  BAD(&f, "Create Flow request failed: [Trigger Validation Error: Value 'rate(1 minutes)' at "
          "'triggerConfig.triggerProperties.Scheduled.scheduleExpression' is not a valid schedule "
          "expression: rate() takes a positive whole value and a unit: minute(s), hour(s) or "
          "day(s), as in rate(5minutes) or rate(1 hour)]");
  f.sched.schedule_expression = "cron(0 12 * * ? *)";
  f.start.seconds = 1000;
  f.end.seconds = 1000;
  f.sched.schedule_start_time = &f.start;
  f.sched.schedule_end_time = &f.end;
  BAD(&f, "Create Flow request failed: [Trigger Validation Error: "
          "'triggerConfig.triggerProperties.Scheduled.scheduleEndTime' must be after "
          "'triggerConfig.triggerProperties.Scheduled.scheduleStartTime']");
  f.end.nanos = 1;
  OK(&f);
  /* Scheduled properties on another trigger are ignored */
  f.trigger.trigger_type = APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_EVENT;
  f.sched.schedule_expression = "every day";
  OK(&f);
}

Test(rules, schedule_expressions) {
  static const char *const good[] = {"rate(1 minute)",
                                     "rate(2 minutes)",
                                     "rate(1 hour)",
                                     "rate(12 hours)",
                                     "rate(1 day)",
                                     "rate(7 days)",
                                     "rate(5minutes)",
                                     "rate(1day)",
                                     "rate(1hours)",
                                     "cron(0 12 * * ? *)",
                                     "cron(15 10 ? * 6L 2022-2030)",
                                     "cron(0/5 8-17 ? * MON-FRI *)",
                                     "cron(0 0 L * ? *)",
                                     "cron(0 0 15W * ? *)",
                                     "cron(0 0 LW * ? *)",
                                     "cron(0 0 ? * 3#2 *)",
                                     "cron(1,2,3 */2 1-15/3 JAN,MAR ? 2030)",
                                     "cron(0 0 ? * L *)",
                                     "cron(0 0 ? * sun *)"};
  static const char *const bad[] = {"rate(0 minutes)",
                                    "rate(1 minutes)",
                                    "rate(2 minute)",
                                    "rate(5 weeks)",
                                    "rate(5 weeks)x",
                                    "rate(5  minutes)",
                                    "rate(5minute s)",
                                    "rate(-1 days)",
                                    "rate()",
                                    "cron(0 12 * * *)",
                                    "cron(0 12 * * ? * *)",
                                    "cron(0 12 * * * *)",
                                    "cron(0 12 ? * ? *)",
                                    "cron(60 12 * * ? *)",
                                    "cron(0 24 * * ? *)",
                                    "cron(0 0 32 * ? *)",
                                    "cron(0 0 ? 13 * *)",
                                    "cron(0 0 ? * 8 *)",
                                    "cron(0 0 ? * 3#6 *)",
                                    "cron(0 0 * * ? 1969)",
                                    "cron(0/0 0 * * ? *)",
                                    "cron(0 0 L * L *)",
                                    "cron(0 0 * FOO ? *)",
                                    "cron(a 0 * * ? *)",
                                    "every day",
                                    "",
                                    "rate(1 hour"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    cr_expect_null(af_schedule_expression_error(good[i]), "%s refused: %s", good[i],
                   af_schedule_expression_error(good[i]));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_not_null(af_schedule_expression_error(bad[i]), "%s accepted", bad[i]);
}

Test(rules, all_violations_together) {
  flow f;
  flow_init(&f);
  f.ndst = 0;
  f.ntasks = 0;
  f.trigger.trigger_type = APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED;
  BAD(&f, "Create Flow request failed: [Destination Validation Error: 'destinationFlowConfigList' "
          "must hold exactly one destination; it holds 0, Trigger Validation Error: a Scheduled "
          "trigger needs 'triggerConfig.triggerProperties.Scheduled', Task Validation Error: You "
          "must specify a projection task or a MAP_ALL task]");
}

/* ---- connector profiles ---- */

#define CT(x) APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_##x

typedef struct profile {
  Appflow__V1__ConnectorProfileConfig cfg;
  Appflow__V1__ConnectorProfileProperties props;
  Appflow__V1__ConnectorProfileCredentials creds;
  Appflow__V1__SalesforceConnectorProfileProperties sf_props;
  Appflow__V1__SalesforceConnectorProfileCredentials sf_creds;
  Appflow__V1__ZendeskConnectorProfileProperties zd_props;
  Appflow__V1__ZendeskConnectorProfileCredentials zd_creds;
  Appflow__V1__GoogleAnalyticsConnectorProfileProperties ga_props;
  Appflow__V1__GoogleAnalyticsConnectorProfileCredentials ga_creds;
  Appflow__V1__CustomConnectorProfileProperties cc_props;
  Appflow__V1__CustomConnectorProfileCredentials cc_creds;
} profile;

/* A Salesforce profile's config: its properties and credentials; the other connectors'
 * members are ready to be pointed to. */
static void profile_init(profile *p) {
  memset(p, 0, sizeof *p);
  p->cfg = (Appflow__V1__ConnectorProfileConfig)APPFLOW__V1__CONNECTOR_PROFILE_CONFIG__INIT;
  p->props =
      (Appflow__V1__ConnectorProfileProperties)APPFLOW__V1__CONNECTOR_PROFILE_PROPERTIES__INIT;
  p->creds =
      (Appflow__V1__ConnectorProfileCredentials)APPFLOW__V1__CONNECTOR_PROFILE_CREDENTIALS__INIT;
  p->sf_props = (Appflow__V1__SalesforceConnectorProfileProperties)
      APPFLOW__V1__SALESFORCE_CONNECTOR_PROFILE_PROPERTIES__INIT;
  p->sf_creds = (Appflow__V1__SalesforceConnectorProfileCredentials)
      APPFLOW__V1__SALESFORCE_CONNECTOR_PROFILE_CREDENTIALS__INIT;
  p->zd_props = (Appflow__V1__ZendeskConnectorProfileProperties)
      APPFLOW__V1__ZENDESK_CONNECTOR_PROFILE_PROPERTIES__INIT;
  p->zd_creds = (Appflow__V1__ZendeskConnectorProfileCredentials)
      APPFLOW__V1__ZENDESK_CONNECTOR_PROFILE_CREDENTIALS__INIT;
  p->ga_props = (Appflow__V1__GoogleAnalyticsConnectorProfileProperties)
      APPFLOW__V1__GOOGLE_ANALYTICS_CONNECTOR_PROFILE_PROPERTIES__INIT;
  p->ga_creds = (Appflow__V1__GoogleAnalyticsConnectorProfileCredentials)
      APPFLOW__V1__GOOGLE_ANALYTICS_CONNECTOR_PROFILE_CREDENTIALS__INIT;
  p->cc_props = (Appflow__V1__CustomConnectorProfileProperties)
      APPFLOW__V1__CUSTOM_CONNECTOR_PROFILE_PROPERTIES__INIT;
  p->cc_creds = (Appflow__V1__CustomConnectorProfileCredentials)
      APPFLOW__V1__CUSTOM_CONNECTOR_PROFILE_CREDENTIALS__INIT;
  p->sf_props.instance_url = "https://example.my.salesforce.com";
  p->sf_creds.access_token = "token";
  p->zd_props.instance_url = "https://example.zendesk.com";
  p->zd_creds.client_id = "id";
  p->zd_creds.client_secret = "secret";
  p->props.salesforce = &p->sf_props;
  p->creds.salesforce = &p->sf_creds;
  p->cfg.connector_profile_properties = &p->props;
  p->cfg.connector_profile_credentials = &p->creds;
}

static af_err profile_rules(af_profile_op op, int type, const char *label, const profile *p) {
  memset(&err, 0, sizeof err);
  return af_check_profile_rules(op, type, label, p ? &p->cfg : NULL, &err);
}

#define PROFILE_OK(op, type, label, p)                                                             \
  cr_expect_eq(profile_rules(op, type, label, p), AF_OK, "refused: %s", err.message)
#define PROFILE_BAD(op, type, label, p, text)                                                      \
  do {                                                                                             \
    cr_expect_eq(profile_rules(op, type, label, p), AF_ERR_VALIDATION);                            \
    cr_expect_str_eq(err.message, text);                                                           \
  } while (0)

#define CREATE AF_PROFILE_CREATE
#define UPDATE AF_PROFILE_UPDATE

Test(profile_rules, a_valid_profile) {
  profile p;
  profile_init(&p);
  PROFILE_OK(CREATE, CT(SALESFORCE), NULL, &p);
  PROFILE_OK(UPDATE, CT(SALESFORCE), NULL, &p);
}

Test(profile_rules, the_type_must_take_a_profile) {
  profile p;
  profile_init(&p);
  p.props.salesforce = NULL;
  p.creds.salesforce = NULL;
  PROFILE_BAD(CREATE, CT(S3), NULL, &p,
              "Create Connector Profile request failed: [Connector type S3 takes no connector "
              "profile: flows use it without one]");
  PROFILE_BAD(UPDATE, CT(S3), NULL, &p,
              "Update Connector Profile request failed: [Connector type S3 takes no connector "
              "profile: flows use it without one]");
  static const int none[] = {CT(EVENT_BRIDGE), CT(LOOKOUT_METRICS), CT(UPSOLVER),
                             CT(CUSTOMER_PROFILES)};
  for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
    cr_expect_eq(profile_rules(CREATE, none[i], NULL, &p), AF_ERR_VALIDATION, "%d", none[i]);
    cr_expect(strstr(err.message, "takes no connector profile: flows use it without one") != NULL,
              "%s", err.message);
  }
  /* with no configuration at all, the type is still checked */
  PROFILE_BAD(CREATE, CT(EVENT_BRIDGE), NULL, NULL,
              "Create Connector Profile request failed: [Connector type EventBridge takes no "
              "connector profile: flows use it without one]");
}

Test(profile_rules, properties_set_exactly_the_types_member) {
  profile p;
  profile_init(&p);
  p.props.salesforce = NULL;
  PROFILE_BAD(CREATE, CT(SALESFORCE), NULL, &p,
              "Create Connector Profile request failed: [Connector Validation Error: "
              "'connectorProfileConfig.connectorProfileProperties' sets no connector; it must set "
              "Salesforce, the connectorType]");
  p.props.zendesk = &p.zd_props;
  PROFILE_BAD(CREATE, CT(SALESFORCE), NULL, &p,
              "Create Connector Profile request failed: [Connector Validation Error: "
              "'connectorProfileConfig.connectorProfileProperties' sets Zendesk but "
              "'connectorType' is 'Salesforce'; they must name the same connector]");
  p.props.salesforce = &p.sf_props;
  PROFILE_BAD(UPDATE, CT(SALESFORCE), NULL, &p,
              "Update Connector Profile request failed: [Connector Validation Error: "
              "'connectorProfileConfig.connectorProfileProperties' sets 2 connectors "
              "(Salesforce, Zendesk); it must set exactly one, Salesforce, the connectorType]");
  /* the same profile is right for Zendesk once it sets Zendesk's alone */
  p.props.salesforce = NULL;
  p.creds.salesforce = NULL;
  p.creds.zendesk = &p.zd_creds;
  PROFILE_OK(CREATE, CT(ZENDESK), NULL, &p);
}

Test(profile_rules, credentials_given_set_exactly_the_types_member) {
  profile p;
  profile_init(&p);
  p.creds.salesforce = NULL;
  p.creds.zendesk = &p.zd_creds;
  PROFILE_BAD(CREATE, CT(SALESFORCE), NULL, &p,
              "Create Connector Profile request failed: [Connector Validation Error: "
              "'connectorProfileConfig.connectorProfileCredentials' sets Zendesk but "
              "'connectorType' is 'Salesforce'; they must name the same connector]");
  PROFILE_BAD(UPDATE, CT(SALESFORCE), NULL, &p,
              "Update Connector Profile request failed: [Connector Validation Error: "
              "'connectorProfileConfig.connectorProfileCredentials' sets Zendesk but "
              "'connectorType' is 'Salesforce'; they must name the same connector]");
  p.creds.salesforce = &p.sf_creds;
  PROFILE_BAD(CREATE, CT(SALESFORCE), NULL, &p,
              "Create Connector Profile request failed: [Connector Validation Error: "
              "'connectorProfileConfig.connectorProfileCredentials' sets 2 connectors "
              "(Salesforce, Zendesk); it must set exactly one, Salesforce, the connectorType]");
  /* credentials that set no connector at all */
  p.creds.salesforce = NULL;
  p.creds.zendesk = NULL;
  PROFILE_BAD(UPDATE, CT(SALESFORCE), NULL, &p,
              "Update Connector Profile request failed: [Connector Validation Error: "
              "'connectorProfileConfig.connectorProfileCredentials' sets no connector; it must "
              "set Salesforce, the connectorType]");
}

Test(profile_rules, a_create_needs_the_credentials_an_update_does_not) {
  profile p;
  profile_init(&p);
  p.cfg.connector_profile_credentials = NULL;
  PROFILE_BAD(CREATE, CT(SALESFORCE), NULL, &p,
              "Create Connector Profile request failed: ['connectorProfileConfig."
              "connectorProfileCredentials' is required: a Salesforce connection needs its "
              "credentials]");
  PROFILE_OK(UPDATE, CT(SALESFORCE), NULL, &p);
}

Test(profile_rules, member_names_are_compared_without_case) {
  profile p;
  profile_init(&p);
  p.props.salesforce = NULL;
  p.creds.salesforce = NULL;
  p.props.google_analytics = &p.ga_props;
  p.creds.google_analytics = &p.ga_creds;
  PROFILE_OK(CREATE, CT(GOOGLEANALYTICS), NULL, &p); /* "Googleanalytics" is "GoogleAnalytics" */
  PROFILE_BAD(CREATE, CT(SALESFORCE), NULL, &p,
              "Create Connector Profile request failed: [Connector Validation Error: "
              "'connectorProfileConfig.connectorProfileProperties' sets GoogleAnalytics but "
              "'connectorType' is 'Salesforce'; they must name the same connector, Connector "
              "Validation Error: 'connectorProfileConfig.connectorProfileCredentials' sets "
              "GoogleAnalytics but 'connectorType' is 'Salesforce'; they must name the same "
              "connector]");
}

Test(profile_rules, a_label_exactly_for_custom_connectors) {
  profile p;
  profile_init(&p);
  PROFILE_BAD(CREATE, CT(SALESFORCE), "acme", &p,
              "Create Connector Profile request failed: ['connectorLabel' is only for "
              "CustomConnector profiles; connectorType is Salesforce]");
  PROFILE_OK(UPDATE, CT(SALESFORCE), "acme", &p); /* an update's label is the stored one's */
  p.props.salesforce = NULL;
  p.creds.salesforce = NULL;
  p.props.custom_connector = &p.cc_props;
  p.creds.custom_connector = &p.cc_creds;
  PROFILE_OK(CREATE, CT(CUSTOM_CONNECTOR), "acme", &p);
  PROFILE_BAD(CREATE, CT(CUSTOM_CONNECTOR), NULL, &p,
              "Create Connector Profile request failed: ['connectorLabel' is required when "
              "connectorType is CustomConnector: it names the registered connector]");
  PROFILE_BAD(CREATE, CT(CUSTOM_CONNECTOR), "", &p,
              "Create Connector Profile request failed: ['connectorLabel' is required when "
              "connectorType is CustomConnector: it names the registered connector]");
  PROFILE_OK(UPDATE, CT(CUSTOM_CONNECTOR), NULL, &p);
}

Test(profile_rules, every_violation_at_once) {
  profile p;
  profile_init(&p);
  p.props.salesforce = NULL;
  p.props.zendesk = &p.zd_props;
  p.creds.salesforce = NULL;
  p.creds.zendesk = &p.zd_creds;
  PROFILE_BAD(CREATE, CT(SALESFORCE), "acme", &p,
              "Create Connector Profile request failed: [Connector Validation Error: "
              "'connectorProfileConfig.connectorProfileProperties' sets Zendesk but "
              "'connectorType' is 'Salesforce'; they must name the same connector, Connector "
              "Validation Error: 'connectorProfileConfig.connectorProfileCredentials' sets "
              "Zendesk but 'connectorType' is 'Salesforce'; they must name the same connector, "
              "'connectorLabel' is only for CustomConnector profiles; connectorType is "
              "Salesforce]");
  PROFILE_BAD(CREATE, CT(S3), "acme", &p,
              "Create Connector Profile request failed: [Connector type S3 takes no connector "
              "profile: flows use it without one, 'connectorLabel' is only for CustomConnector "
              "profiles; connectorType is S3]");
}

Test(profile_rules, connector_member_finds_a_types_member) {
  const af_model_member *m =
      af_connector_member(&af_model_ConnectorProfileProperties, CT(GOOGLEANALYTICS));
  cr_assert_not_null(m);
  cr_expect_str_eq(m->name, "GoogleAnalytics");
  m = af_connector_member(&af_model_ConnectorProfileCredentials, CT(SERVICENOW));
  cr_assert_not_null(m);
  cr_expect_str_eq(m->name, "ServiceNow");
  m = af_connector_member(&af_model_SourceConnectorProperties, CT(S3));
  cr_assert_not_null(m);
  cr_expect_str_eq(m->name, "S3");
  cr_expect_null(af_connector_member(&af_model_ConnectorProfileProperties, CT(S3)));
  cr_expect_null(af_connector_member(&af_model_SourceConnectorProperties, CT(REDSHIFT)));
  cr_expect_null(af_connector_member(&af_model_ConnectorProfileProperties, 0));
  cr_expect_null(af_connector_member(&af_model_ConnectorProfileProperties, 1000));
}

/* True exactly for the ConnectorType values that model/appflow-2020-08-23.json's
 * ConnectorProfileProperties has a member for (names compared without case), read from the
 * model file itself, for every value of the model's ConnectorType. */
Test(profile_rules, the_types_that_take_a_profile_are_the_models) {
  json_error_t je;
  json_t *model = json_load_file(AF_SOURCE_DIR "/model/appflow-2020-08-23.json", 0, &je);
  cr_assert_not_null(model, "%s", je.text);
  json_t *shapes = json_object_get(model, "shapes");
  json_t *types = json_object_get(json_object_get(shapes, "ConnectorType"), "enum");
  json_t *members =
      json_object_get(json_object_get(shapes, "ConnectorProfileProperties"), "members");
  cr_assert(json_is_array(types) && json_is_object(members));
  const af_model_shape *shape =
      af_model_member_named(&af_model_SourceFlowConfig, "connectorType")->shape;
  size_t n = 0, taking = 0;
  for (size_t i = 0; i < json_array_size(types); i++) {
    const char *name = json_string_value(json_array_get(types, i));
    int v = af_model_enum_value(shape, name, strlen(name));
    cr_assert_gt(v, 0, "%s is not a ConnectorType value", name);
    bool want = false;
    const char *k;
    json_t *x;
    json_object_foreach(members, k, x) {
      if (strcasecmp(k, name) == 0)
        want = true;
    }
    cr_expect_eq(af_connector_takes_profile(v), want, "%s: %s", name,
                 want ? "takes a profile" : "takes none");
    n++;
    taking += want;
  }
  json_decref(model);
  /* every value of the contract's enum was looked at, and the model is the one this was
   * written for: 24 types, 19 with a profile (S3, EventBridge, LookoutMetrics, Upsolver and
   * CustomerProfiles without) */
  cr_expect_eq(n, appflow__v1__connector_type__descriptor.n_values - 1);
  cr_expect_eq(n, 24);
  cr_expect_eq(taking, 19);
  cr_expect_not(af_connector_takes_profile(0));
  cr_expect_not(af_connector_takes_profile(1000));
}
