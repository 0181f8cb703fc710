/* src/flows/rules.c: AppFlow's own rules on a flow definition, each passing and failing. */
#include "flows/rules.h"

#include <criterion/criterion.h>
#include <string.h>

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
