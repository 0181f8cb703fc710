/* src/common/compiler.h: every function whose result says whether it worked carries
 * AF_MUST_USE, so a caller that drops the result does not build (-Werror). The list is the
 * contract: a function added to it, or an attribute taken off a declaration, fails here. Read
 * with gcc's __builtin_has_attribute; a compiler without it skips the check. */
#include "common/compiler.h"

#include "admin/control.h"
#include "admin/server.h"
#include "bridge/catalog_load.h"
#include "bridge/http.h"
#include "bridge/route.h"
#include "bridge/seed.h"
#include "bridge/sigv4.h"
#include "bridge/transcode.h"
#include "client/client.h"
#include "client/ctljson.h"
#include "common/awsname.h"
#include "common/base64.h"
#include "common/encode.h"
#include "common/file.h"
#include "common/listen.h"
#include "flows/arena.h"
#include "flows/catalog.h"
#include "flows/check.h"
#include "flows/internal.h"
#include "flows/log.h"
#include "flows/rules.h"
#include "flows/schedule.h"
#include "flows/service.h"
#include "flows/store.h"
#include "flows/store_queue.h"
#include "grpc/decode.h"
#include "grpc/health.h"
#include "grpc/reflection.h"
#include "grpc/server.h"
#include "grpc/status.h"
#include "grpc/tls.h"

#include <criterion/criterion.h>

#if defined(__has_builtin)
#if __has_builtin(__builtin_has_attribute)
#define HAS_MUST_USE(f) __builtin_has_attribute(f, warn_unused_result)
#endif
#endif

/* Expects each function named to carry AF_MUST_USE. */
#ifdef HAS_MUST_USE
#define EXPECT_MUST_USE(f) cr_expect(HAS_MUST_USE(f), "%s: its result can be dropped", #f)
#else
#define EXPECT_MUST_USE(f) cr_skip("no __builtin_has_attribute in this compiler")
#endif

Test(must_use, admin_control) {
  EXPECT_MUST_USE(af_control_decode);
  EXPECT_MUST_USE(af_control_encode);
  EXPECT_MUST_USE(af_control_error);
}

Test(must_use, admin_server) { EXPECT_MUST_USE(af_admin_server_start); }

Test(must_use, bridge_catalog_load) {
  EXPECT_MUST_USE(af_catalog_load_connectors);
  EXPECT_MUST_USE(af_catalog_load_entities);
  EXPECT_MUST_USE(af_catalog_set_entities_json);
  EXPECT_MUST_USE(af_catalog_load_builtin);
}

Test(must_use, bridge_http) { EXPECT_MUST_USE(af_bridge_server_start); }

Test(must_use, bridge_route) {
  EXPECT_MUST_USE(af_bridge_match_route);
  EXPECT_MUST_USE(af_bridge_percent_decode);
}

Test(must_use, bridge_seed) {
  EXPECT_MUST_USE(af_seed_load_buffer);
  EXPECT_MUST_USE(af_seed_reload_entities);
  EXPECT_MUST_USE(af_seed_load_file);
}

Test(must_use, bridge_sigv4) {
  EXPECT_MUST_USE(af_sigv4_creds_load);
  EXPECT_MUST_USE(af_sigv4_creds_parse);
  EXPECT_MUST_USE(af_sigv4_creds_set_region);
  EXPECT_MUST_USE(af_sigv4_verify);
  EXPECT_MUST_USE(af_sigv4_canonical_request);
  EXPECT_MUST_USE(af_sigv4_sign);
  EXPECT_MUST_USE(af_sigv4_signing_key);
}

Test(must_use, bridge_transcode) {
  EXPECT_MUST_USE(af_bridge_json_to_message);
  EXPECT_MUST_USE(af_bridge_json_tree_to_message);
  EXPECT_MUST_USE(af_bridge_message_to_json);
  EXPECT_MUST_USE(af_bridge_bind_members);
}

Test(must_use, client_client) {
  EXPECT_MUST_USE(af_client_new);
  EXPECT_MUST_USE(af_client_call);
  EXPECT_MUST_USE(af_client_stop_flow);
}

Test(must_use, client_ctljson) {
  EXPECT_MUST_USE(af_ctl_codec_new);
  EXPECT_MUST_USE(af_ctl_fill);
  EXPECT_MUST_USE(af_ctl_prepare);
  EXPECT_MUST_USE(af_ctl_to_json);
  EXPECT_MUST_USE(af_ctl_cli_name);
}

Test(must_use, common_awsname) { EXPECT_MUST_USE(af_aws_enum_string); }

Test(must_use, common_base64) { EXPECT_MUST_USE(af_base64_decode); }

Test(must_use, common_file) { EXPECT_MUST_USE(af_read_file); }

Test(must_use, common_listen) {
  EXPECT_MUST_USE(af_listen_split);
  EXPECT_MUST_USE(af_listen_resolve);
}

Test(must_use, flows_arena) {
  EXPECT_MUST_USE(af_arena_alloc);
  EXPECT_MUST_USE(af_arena_strndup);
  EXPECT_MUST_USE(af_arena_printf);
  EXPECT_MUST_USE(af_arena_vprintf);
}

Test(must_use, flows_catalog) {
  EXPECT_MUST_USE(af_catalog_new);
  EXPECT_MUST_USE(af_catalog_set_connector);
  EXPECT_MUST_USE(af_catalog_set_entities);
  EXPECT_MUST_USE(af_catalog_reload);
}

Test(must_use, flows_check) {
  EXPECT_MUST_USE(af_checker_new);
  EXPECT_MUST_USE(af_check_message);
}

Test(must_use, flows_internal) {
  EXPECT_MUST_USE(af__call_new);
  EXPECT_MUST_USE(af__call_check_name);
  EXPECT_MUST_USE(af__store_error);
  EXPECT_MUST_USE(af__wait);
  EXPECT_MUST_USE(af__page_token);
  EXPECT_MUST_USE(af__page_token_read);
  EXPECT_MUST_USE(af__pack_sorted);
  EXPECT_MUST_USE(af__pack_definition);
  EXPECT_MUST_USE(af__changeable);
  EXPECT_MUST_USE(af__pack);
  EXPECT_MUST_USE(af_flows_arn_dup);
  EXPECT_MUST_USE(af_flows_timestamp);
  EXPECT_MUST_USE(af_flows_tag_entries);
  EXPECT_MUST_USE(af_flows_pack_tags);
  EXPECT_MUST_USE(af_flows_runs);
  EXPECT_MUST_USE(af__start_run);
  EXPECT_MUST_USE(af__catalog_details);
  EXPECT_MUST_USE(af__check_flow_connectors);
  EXPECT_MUST_USE(af__profile_type);
  EXPECT_MUST_USE(af__profile_arn);
  EXPECT_MUST_USE(af__connector_arn);
}

Test(must_use, flows_log) { EXPECT_MUST_USE(af_log_level_parse); }

Test(must_use, flows_rules) {
  EXPECT_MUST_USE(af_check_flow_rules);
  EXPECT_MUST_USE(af_check_profile_rules);
  EXPECT_MUST_USE(af_schedule_expression_error);
}

Test(must_use, flows_schedule) { EXPECT_MUST_USE(af_schedule_parse); }

Test(must_use, flows_service) {
  EXPECT_MUST_USE(af_flows_new);
  EXPECT_MUST_USE(af_flows_scheduler_start);
  EXPECT_MUST_USE(af_flows_call_sync);
  EXPECT_MUST_USE(af_flows_stop_flow);
  EXPECT_MUST_USE(af_flows_create_flow);
  EXPECT_MUST_USE(af_flows_describe_flow);
  EXPECT_MUST_USE(af_flows_list_flows);
  EXPECT_MUST_USE(af_flows_start_flow);
  EXPECT_MUST_USE(af_flows_delete_flow);
  EXPECT_MUST_USE(af_flows_tag_resource);
  EXPECT_MUST_USE(af_flows_untag_resource);
  EXPECT_MUST_USE(af_flows_list_tags);
  EXPECT_MUST_USE(af_flows_check_create);
  EXPECT_MUST_USE(af_flows_seed_begin);
  EXPECT_MUST_USE(af_flows_seed_add);
  EXPECT_MUST_USE(af_flows_seed_end);
  EXPECT_MUST_USE(af_flows_seed_check_profiles);
  EXPECT_MUST_USE(af_flows_seed_one);
}

Test(must_use, flows_store) {
  EXPECT_MUST_USE(af_store_open);
  EXPECT_MUST_USE(af_store_memory_new);
  EXPECT_MUST_USE(af_store_run);
  EXPECT_MUST_USE(af_store_watch);
  EXPECT_MUST_USE(af__store_sql_for);
  EXPECT_MUST_USE(af__store_random);
  EXPECT_MUST_USE(af__store_sqlite_open);
  EXPECT_MUST_USE(af__store_pg_open);
}

Test(must_use, flows_store_queue) { EXPECT_MUST_USE(af__queue_push); }

Test(must_use, grpc_decode) { EXPECT_MUST_USE(af_grpc_decode); }

Test(must_use, grpc_encode) { EXPECT_MUST_USE(af_encode_size); }

Test(must_use, grpc_health) {
  EXPECT_MUST_USE(af_health_status);
  EXPECT_MUST_USE(af_health_response);
}

Test(must_use, grpc_reflection) {
  EXPECT_MUST_USE(af_reflection_new);
  EXPECT_MUST_USE(af_reflection_answer);
}

Test(must_use, grpc_server) { EXPECT_MUST_USE(af_grpc_server_start); }

Test(must_use, grpc_status) { EXPECT_MUST_USE(af_grpc_status_details); }

Test(must_use, grpc_tls) { EXPECT_MUST_USE(af_tls_check); }

/* AF_IGNORE drops a result on purpose, and says so: the call still happens, once. */
static int calls;
static int counted(void) AF_MUST_USE;
static int counted(void) { return ++calls; }

Test(must_use, ignore_still_calls) {
  AF_IGNORE(counted());
  cr_expect_eq(calls, 1);
#ifdef HAS_MUST_USE
  cr_expect(HAS_MUST_USE(counted));
#endif
}
