#include "common/awsname.h"

#include <criterion/criterion.h>

static const char *aws(const char *prefix, const char *value) {
  static char buf[64];
  return af_aws_enum_string(prefix, value, buf, sizeof buf) == 0 ? buf : "(error)";
}

Test(awsname, enum_values_in_pascal_case) {
  cr_expect_str_eq(aws("FLOW_STATUS_", "FLOW_STATUS_SUSPENDED"), "Suspended");
  cr_expect_str_eq(aws("FLOW_STATUS_", "FLOW_STATUS_ACTIVE"), "Active");
  cr_expect_str_eq(aws("TRIGGER_TYPE_", "TRIGGER_TYPE_ON_DEMAND"), "OnDemand");
  cr_expect_str_eq(aws("TRIGGER_TYPE_", "TRIGGER_TYPE_SCHEDULED"), "Scheduled");
}

Test(awsname, refuses_wrong_prefix_or_small_buffer) {
  char small[6];
  cr_expect_eq(af_aws_enum_string("FLOW_STATUS_", "TRIGGER_TYPE_EVENT", small, sizeof small), -1);
  cr_expect_eq(af_aws_enum_string("FLOW_STATUS_", "FLOW_STATUS_", small, sizeof small), -1);
  cr_expect_eq(af_aws_enum_string("FLOW_STATUS_", "FLOW_STATUS_ACTIVE", small, sizeof small), -1);
  cr_expect_eq(af_aws_enum_string("FLOW_STATUS_", "FLOW_STATUS_DRAFT", small, 6), 0);
  cr_expect_str_eq(small, "Draft");
}

Test(awsname, rpc_code_names) {
  cr_expect_str_eq(af_rpc_code_name(0), "OK");
  cr_expect_str_eq(af_rpc_code_name(5), "NOT_FOUND");
  cr_expect_str_eq(af_rpc_code_name(16), "UNAUTHENTICATED");
  cr_expect_str_eq(af_rpc_code_name(17), "UNKNOWN");
  cr_expect_str_eq(af_rpc_code_name(-1), "UNKNOWN");
}
