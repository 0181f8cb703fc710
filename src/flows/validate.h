/* Request members checked against AppFlow's AWS model (limits, patterns, required members),
 * with AWS's wording ("1 validation error detected: Value ... at 'member' failed to satisfy
 * constraint: ..."), which the AWS CLI and SDKs show as they are.
 *
 * Patterns are matched whole, with Java's regex meaning (AWS's dialect): \w and \s are ASCII.
 * A NULL or empty string is "absent". Errors: AF_OK, or AF_ERR_VALIDATION with a message
 * naming the member (the path given, e.g. "tags.team" or "destinationFlowConfigList.1").
 * Thread-safety: pure. */
#ifndef AF_FLOWS_VALIDATE_H
#define AF_FLOWS_VALIDATE_H

#include "appflow/v1/appflow.pb-c.h"
#include "flows/error.h"
#include "google/protobuf/struct.pb-c.h"

#include <stdbool.h>
#include <stddef.h>

#define AF_TAGS_MAX 50

/* FlowName: required, 1..256, [a-zA-Z0-9][\w!@#.-]+. */
af_err af_check_name(const char *member, const char *name, size_t len, af_error *err);
/* FlowDescription: optional, <=2048, [\w!@#\-.?,\s]*. */
af_err af_check_description(const char *member, const char *s, af_error *err);
/* KMSArn: optional, 20..2048, arn:aws:kms:.*:[0-9]+:.*. */
af_err af_check_kms_arn(const char *member, const char *s, af_error *err);
/* ARN (resourceArn): required, <=512, arn:aws:.*:.*:[0-9]+:.*. */
af_err af_check_resource_arn(const char *member, const char *s, af_error *err);
/* ClientToken: optional, 1..256, [ -~]+. */
af_err af_check_client_token(const char *member, const char *s, af_error *err);
/* NextToken: optional, <=2048, \S+. */
af_err af_check_next_token(const char *member, const char *s, af_error *err);
/* TagKey: 1..128, ^(?!aws:)[a-zA-Z+-=._:/]+$ (so "+-=" is the range '+'..'='). */
af_err af_check_tag_key(const char *member, const char *key, af_error *err);
/* TagValue: <=256, [\s\w+-=\.:/@]*. */
af_err af_check_tag_value(const char *member, const char *value, af_error *err);
/* One tag of a map member: key and value as above, the member named "member.key". */
af_err af_check_tag(const char *member, const char *key, const char *value, af_error *err);
/* At most max entries in a list or map member. */
af_err af_check_count(const char *member, size_t n, size_t max, af_error *err);
/* An integer member within [min, max]. */
af_err af_check_range(const char *member, long long v, long long min, long long max, af_error *err);
/* TriggerConfig: required with a triggerType; a Scheduled trigger needs
 * triggerProperties.Scheduled with a rate(...) or cron(...) scheduleExpression (<=256), a
 * scheduleOffset in 0..36000, flowErrorDeactivationThreshold 1..100 when set and a timezone of
 * at most 256 characters. */
af_err af_check_trigger(const Appflow__V1__TriggerConfig *tc, af_error *err);
/* A connector configuration object (SourceFlowConfig, DestinationFlowConfig): required, with
 * a connectorType from AppFlow's ConnectorType values and an object member `properties`
 * (sourceConnectorProperties / destinationConnectorProperties). */
af_err af_check_connector_config(const char *member, const Google__Protobuf__Struct *s,
                                 const char *properties, af_error *err);
/* A Task object: sourceFields (a list of strings) and taskType (a string) required. */
af_err af_check_task(const char *member, const Google__Protobuf__Struct *s, af_error *err);

/* The string member `key` of s; NULL when absent or not a string. */
const char *af_struct_string(const Google__Protobuf__Struct *s, const char *key);

#endif
