/* AppFlow's own rules on a flow definition, beyond what the AWS model states (used by CreateFlow
 * and UpdateFlow, after af_check_message has passed, so every member is known to be well formed).
 *
 * Contract: af_check_flow_rules checks, in this order, and reports every violation at once:
 *   - sourceFlowConfig.sourceConnectorProperties sets exactly one connector, the one
 *     sourceFlowConfig.connectorType names (member names and ConnectorType strings are compared
 *     without case: "GoogleAnalytics" is "Googleanalytics");
 *   - destinationFlowConfigList holds exactly one destination, whose
 *     destinationConnectorProperties likewise sets exactly the connector its connectorType names;
 *   - a Scheduled trigger has triggerProperties.Scheduled with an EventBridge schedule expression
 *     (rate(N unit) or cron(6 fields)) and, when both are given, a scheduleEndTime after its
 *     scheduleStartTime; other triggers' Scheduled properties are ignored, as AWS ignores them;
 *   - some task is a projection (taskType Filter with connectorOperator PROJECTION) or Map_all;
 *   - a task's connectorOperator sets at most one connector's operator, and for Filter,
 *     Arithmetic, Mask, Validate, Map and Map_all tasks that operator is of the task's kind
 *     (Filter: PROJECTION and the comparisons; Arithmetic: ADDITION..SUBTRACTION; Mask: MASK_*;
 *     Validate: VALIDATE_*; Map, Map_all: NO_OP).
 *   The message is AWS's: "Create Flow request failed: [Task Validation Error: You must specify a
 *   projection task or a MAP_ALL task]" ("Update Flow" for AF_FLOW_UPDATE), several errors joined
 *   by ", " inside the brackets; rules AWS's wording is not known for name the member path the
 *   way af_check_message does ("tasks.2.member.connectorOperator.S3").
 * Ownership: borrows its arguments for the call. Errors: AF_OK or AF_ERR_VALIDATION.
 * Thread-safety: pure (reads the static model tables only). */
#ifndef AF_FLOWS_RULES_H
#define AF_FLOWS_RULES_H

#include "appflow/v1/appflow.pb-c.h"
#include "common/awsmodel.h"
#include "common/compiler.h"
#include "flows/error.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum af_flow_op { AF_FLOW_CREATE, AF_FLOW_UPDATE } af_flow_op;

af_err af_check_flow_rules(af_flow_op op, const Appflow__V1__TriggerConfig *trigger,
                           const Appflow__V1__SourceFlowConfig *src,
                           Appflow__V1__DestinationFlowConfig *const *dst, size_t ndst,
                           Appflow__V1__Task *const *tasks, size_t ntasks,
                           af_error *err) AF_MUST_USE;

/* Connector profiles (CreateConnectorProfile, UpdateConnectorProfile), after af_check_message:
 * the connector type takes a profile (ConnectorProfileProperties has a member for it: S3,
 * EventBridge and the other AWS services do not); connectorProfileProperties, and
 * connectorProfileCredentials when given, set exactly that type's member; a create gives the
 * credentials when the type has any; connectorLabel is given exactly for CustomConnector. type
 * is the request's (create) or the stored profile's (update). */
/* SEED: a create from a seed file, whose profiles may leave their credentials out (a state
 * document never holds them). */
typedef enum af_profile_op { AF_PROFILE_CREATE, AF_PROFILE_UPDATE, AF_PROFILE_SEED } af_profile_op;
af_err af_check_profile_rules(af_profile_op op, int type, const char *label,
                              const Appflow__V1__ConnectorProfileConfig *cfg,
                              af_error *err) AF_MUST_USE;
/* The member of a connector-keyed structure (ConnectorProfileProperties, ...) for connector
 * type `type`, names compared without case ("GoogleAnalytics" is "Googleanalytics"), or NULL. */
const af_model_member *af_connector_member(const af_model_struct *st, int type);
/* Whether flows reach connector type `type` through a connector profile. */
bool af_connector_takes_profile(int type);

/* NULL when expr is a valid EventBridge schedule expression, else why it is not (static text):
 * af_schedule_parse's verdict (flows/schedule.h), without the compiled schedule. */
const char *af_schedule_expression_error(const char *expr) AF_MUST_USE;

#endif
