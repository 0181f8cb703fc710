/* src/flows/connectors.c: RegisterConnector, UpdateConnectorRegistration, UnregisterConnector,
 * DescribeConnector, DescribeConnectors and ListConnectors, on the store AF_TEST_STORE names
 * (store_under_test.h), with the compiled-in catalog: registrations and their refusals, a
 * registration a profile names, the catalog's types and the registrations in pages that hold
 * each exactly once, and page tokens that only their own operation takes. */
#include "bridge/catalog_load.h"
#include "flows/service.h"

#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT(x) APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_##x

#define T0 1700000000123LL
#define ACCOUNT "000000000000"
#define ROOT "arn:aws:iam::" ACCOUNT ":root"
#define CONNECTOR_ARN(label) "arn:aws:appflow:us-east-1:" ACCOUNT ":connector/" label
#define LAMBDA "arn:aws:lambda:us-east-1:" ACCOUNT ":function:acme"
#define LAMBDA2 "arn:aws:lambda:us-east-1:" ACCOUNT ":function:acme-v2"
/* The catalog's connector types: every ConnectorType but CustomConnector. */
#define MANAGED 23

static af_catalog *cat;
static af_flows *svc;
static af_store *store;
static af_arena arena;

static void setup(void) {
  fake_now = T0;
  cat = test_catalog_builtin();
  svc = test_service_new(&(af_flows_config){.clock = &(af_clock){fake_clock, NULL}, .catalog = cat},
                         &store);
  af_arena_init(&arena);
}

static void teardown(void) {
  af_arena_destroy(&arena);
  test_service_free(svc, store);
  af_catalog_free(cat);
}

TestSuite(registrations, .init = setup, .fini = teardown);
TestSuite(connectors, .init = setup, .fini = teardown);

/* ---- calls ---- */

static af_err call(const char *op, const char *json, void *resp, af_error *err) {
  memset(err, 0, sizeof *err);
  return call_json(svc, op, json, &arena, (ProtobufCMessage **)resp, err);
}

static void *called(const char *op, const char *json) {
  void *resp;
  af_error err;
  cr_assert_eq(call(op, json, &resp, &err), AF_OK, "%s %s: %s", op, json, err.message);
  return resp;
}

static void expect_error(af_err got, const af_error *err, af_err want, const char *words) {
  cr_expect_eq(got, want, "%d, not %d: %s", got, want, err->message);
  cr_expect(strstr(err->message, words) != NULL, "'%s' does not say '%s'", err->message, words);
}

static const char *register_json(const char *label, const char *extra) {
  return arena_printf(&arena,
                      "{\"connectorLabel\": \"%s\", \"description\": \"ACME CRM\", "
                      "\"connectorProvisioningType\": \"LAMBDA\", \"connectorProvisioningConfig\": "
                      "{\"lambda\": {\"lambdaArn\": \"" LAMBDA "\"}}%s}",
                      label, extra ? extra : "");
}

static Appflow__V1__RegisterConnectorResponse *registered(const char *label) {
  return called("RegisterConnector", register_json(label, NULL));
}

/* A CustomConnector profile of the registered connector label. */
static af_err custom_profile(const char *name, const char *label, af_error *err) {
  return call(
      "CreateConnectorProfile",
      arena_printf(&arena,
                   "{\"connectorProfileName\": \"%s\", \"connectorType\": \"CustomConnector\", "
                   "\"connectorLabel\": \"%s\", \"connectionMode\": \"Public\", "
                   "\"connectorProfileConfig\": {\"connectorProfileProperties\": "
                   "{\"CustomConnector\": {\"profileProperties\": {\"region\": \"eu\"}}}, "
                   "\"connectorProfileCredentials\": {\"CustomConnector\": "
                   "{\"authenticationType\": \"APIKEY\", \"apiKey\": {\"apiKey\": \"k\"}}}}}",
                   name, label),
      NULL, err);
}

static af_err unregister(const char *label, bool force, af_error *err) {
  return call("UnregisterConnector",
              arena_printf(&arena, "{\"connectorLabel\": \"%s\", \"forceDelete\": %s}", label,
                           force ? "true" : "false"),
              NULL, err);
}

static const Appflow__V1__ConnectorConfiguration *custom(const char *label) {
  Appflow__V1__DescribeConnectorResponse *r = called(
      "DescribeConnector",
      arena_printf(&arena, "{\"connectorType\": \"CustomConnector\", \"connectorLabel\": \"%s\"}",
                   label));
  cr_assert_not_null(r->connector_configuration, "%s", label);
  return r->connector_configuration;
}

static bool same_message(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  size_t na = protobuf_c_message_get_packed_size(a), nb = protobuf_c_message_get_packed_size(b);
  uint8_t *pa = af_arena_alloc(&arena, na + 1), *pb = af_arena_alloc(&arena, nb + 1);
  cr_assert(pa != NULL && pb != NULL);
  protobuf_c_message_pack(a, pa);
  protobuf_c_message_pack(b, pb);
  return na == nb && memcmp(pa, pb, na) == 0;
}

/* ==== registrations ==== */

Test(registrations, register_and_its_refusals) {
  cr_expect_str_eq(registered("acme")->connector_arn, CONNECTOR_ARN("acme"));
  af_error err;
  expect_error(call("RegisterConnector", register_json("acme", NULL), NULL, &err), &err,
               AF_ERR_NAME_TAKEN, "A connector with label acme is already registered");
  cr_expect_eq(af_err_rpc_code(err.code), AF_RPC_ALREADY_EXISTS);
  cr_expect_str_eq(af_err_type(err.code), "ConflictException");
  /* a retry with the same clientToken and request gets the first answer; another is taken */
  Appflow__V1__RegisterConnectorResponse *r =
      called("RegisterConnector", register_json("tok", ", \"clientToken\": \"t-1\""));
  cr_expect_str_eq(r->connector_arn, CONNECTOR_ARN("tok"));
  r = called("RegisterConnector", register_json("tok", ", \"clientToken\": \"t-1\""));
  cr_expect_str_eq(r->connector_arn, CONNECTOR_ARN("tok"));
  expect_error(
      call("RegisterConnector",
           arena_printf(&arena, "{\"connectorLabel\": \"tok\", \"connectorProvisioningType\": "
                                "\"LAMBDA\", \"connectorProvisioningConfig\": {\"lambda\": "
                                "{\"lambdaArn\": \"" LAMBDA2 "\"}}, \"clientToken\": \"t-1\"}"),
           NULL, &err),
      &err, AF_ERR_NAME_TAKEN, "A connector with label tok is already registered");
  expect_error(
      call("RegisterConnector", register_json("tok", ", \"clientToken\": \"t-2\""), NULL, &err),
      &err, AF_ERR_NAME_TAKEN, "tok");
  /* what a LAMBDA connector needs */
  expect_error(call("RegisterConnector",
                    "{\"connectorLabel\": \"nolambda\", \"connectorProvisioningType\": "
                    "\"LAMBDA\"}",
                    NULL, &err),
               &err, AF_ERR_VALIDATION,
               "'connectorProvisioningConfig.lambda.lambdaArn' is required: a LAMBDA connector is "
               "the Lambda function that implements it");
  expect_error(call("RegisterConnector",
                    "{\"connectorLabel\": \"nolambda\", \"connectorProvisioningType\": "
                    "\"LAMBDA\", \"connectorProvisioningConfig\": {}}",
                    NULL, &err),
               &err, AF_ERR_VALIDATION,
               "'connectorProvisioningConfig.lambda.lambdaArn' is required");
  expect_error(call("RegisterConnector",
                    "{\"connectorLabel\": \"nolambda\", \"connectorProvisioningType\": "
                    "\"LAMBDA\", \"connectorProvisioningConfig\": {\"lambda\": {}}}",
                    NULL, &err),
               &err, AF_ERR_VALIDATION, "lambdaArn");
  expect_error(call("RegisterConnector",
                    "{\"connectorProvisioningType\": \"LAMBDA\", \"connectorProvisioningConfig\": "
                    "{\"lambda\": {\"lambdaArn\": \"" LAMBDA "\"}}}",
                    NULL, &err),
               &err, AF_ERR_VALIDATION, "Value null at 'connectorLabel'");
  expect_error(call("RegisterConnector",
                    "{\"connectorLabel\": \"notype\", \"connectorProvisioningConfig\": "
                    "{\"lambda\": {\"lambdaArn\": \"" LAMBDA "\"}}}",
                    NULL, &err),
               &err, AF_ERR_VALIDATION, "Value null at 'connectorProvisioningType'");
  Appflow__V1__DescribeConnectorResponse *d;
  expect_error(call("DescribeConnector",
                    "{\"connectorType\": \"CustomConnector\", \"connectorLabel\": \"nolambda\"}",
                    &d, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "Connector:nolambda is not registered.");
}

Test(registrations, describe_a_registration) {
  registered("acme");
  const Appflow__V1__ConnectorConfiguration *c = custom("acme");
  cr_expect(c->has_connector_type);
  cr_expect_eq(c->connector_type, CT(CUSTOM_CONNECTOR));
  cr_expect_str_eq(c->connector_label, "acme");
  cr_expect_str_eq(c->connector_name, "acme");
  cr_expect_str_eq(c->connector_description, "ACME CRM");
  cr_expect_str_eq(c->connector_arn, CONNECTOR_ARN("acme"));
  cr_expect(c->has_connector_provisioning_type);
  cr_expect_eq(c->connector_provisioning_type,
               APPFLOW__V1__CONNECTOR_PROVISIONING_TYPE__CONNECTOR_PROVISIONING_TYPE_LAMBDA);
  cr_assert(c->connector_provisioning_config != NULL &&
            c->connector_provisioning_config->lambda != NULL);
  cr_expect_str_eq(c->connector_provisioning_config->lambda->lambda_arn, LAMBDA);
  cr_assert_not_null(c->registered_at);
  cr_expect_eq(c->registered_at->seconds, T0 / 1000);
  cr_expect_eq(c->registered_at->nanos, (T0 % 1000) * 1000000);
  cr_expect_str_eq(c->registered_by, ROOT);
  cr_expect(c->can_use_as_source && c->can_use_as_destination);
  cr_assert_eq(c->n_supported_trigger_types, 2);
  cr_expect_eq(c->supported_trigger_types[0], APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED);
  cr_expect_eq(c->supported_trigger_types[1], APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND);
  /* the label is what names it */
  af_error err;
  Appflow__V1__DescribeConnectorResponse *d;
  expect_error(call("DescribeConnector", "{\"connectorType\": \"CustomConnector\"}", &d, &err),
               &err, AF_ERR_VALIDATION,
               "'connectorLabel' is required when connectorType is CustomConnector: it names the "
               "registered connector");
  expect_error(call("DescribeConnector",
                    "{\"connectorType\": \"CustomConnector\", \"connectorLabel\": \"ghost\"}", &d,
                    &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "");
  cr_expect_str_eq(err.message, "Connector:ghost is not registered.");
}

Test(registrations, update_a_registration) {
  registered("acme");
  fake_now = T0 + 5000;
  Appflow__V1__UpdateConnectorRegistrationResponse *u =
      called("UpdateConnectorRegistration",
             "{\"connectorLabel\": \"acme\", \"description\": \"ACME CRM v2\"}");
  cr_expect_str_eq(u->connector_arn, CONNECTOR_ARN("acme"));
  const Appflow__V1__ConnectorConfiguration *c = custom("acme");
  cr_expect_str_eq(c->connector_description, "ACME CRM v2");
  cr_expect_str_eq(c->connector_provisioning_config->lambda->lambda_arn, LAMBDA, "kept");
  cr_expect_eq(c->registered_at->seconds, T0 / 1000, "registeredAt is the registration's");
  called("UpdateConnectorRegistration",
         "{\"connectorLabel\": \"acme\", \"connectorProvisioningConfig\": {\"lambda\": "
         "{\"lambdaArn\": \"" LAMBDA2 "\"}}}");
  c = custom("acme");
  cr_expect_str_eq(c->connector_provisioning_config->lambda->lambda_arn, LAMBDA2);
  cr_expect_str_eq(c->connector_description, "ACME CRM v2", "kept");
  af_error err;
  expect_error(
      call("UpdateConnectorRegistration",
           "{\"connectorLabel\": \"acme\", \"connectorProvisioningConfig\": {}}", NULL, &err),
      &err, AF_ERR_VALIDATION, "'connectorProvisioningConfig.lambda.lambdaArn' is required");
  cr_expect_str_eq(custom("acme")->connector_provisioning_config->lambda->lambda_arn, LAMBDA2);
  expect_error(call("UpdateConnectorRegistration",
                    "{\"connectorLabel\": \"nope\", \"description\": \"x\"}", NULL, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "");
  cr_expect_str_eq(err.message, "Connector:nope is not registered.");
}

Test(registrations, unregister_is_refused_while_a_profile_names_the_connector) {
  registered("acme");
  registered("other");
  af_error err;
  cr_assert_eq(custom_profile("acme-prof", "acme", &err), AF_OK, "%s", err.message);
  cr_assert_eq(custom_profile("other-prof", "other", &err), AF_OK, "%s", err.message);
  test_salesforce_profile(svc, "sf");
  expect_error(unregister("acme", false, &err), &err, AF_ERR_CONFLICT,
               "Connector acme is in use by connector profile acme-prof: delete its profiles "
               "first, or set forceDelete");
  cr_expect_str_eq(af_err_type(err.code), "ConflictException");
  cr_expect_str_eq(custom("acme")->connector_label, "acme", "refused: still registered");
  /* forceDelete: the registration goes, the profile stays */
  cr_expect_eq(unregister("acme", true, &err), AF_OK, "%s", err.message);
  Appflow__V1__DescribeConnectorResponse *d;
  expect_error(call("DescribeConnector",
                    "{\"connectorType\": \"CustomConnector\", \"connectorLabel\": \"acme\"}", &d,
                    &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "Connector:acme is not registered.");
  Appflow__V1__DescribeConnectorProfilesResponse *p =
      called("DescribeConnectorProfiles", "{\"connectorLabel\": \"acme\"}");
  cr_assert_eq(p->n_connector_profile_details, 1);
  cr_expect_str_eq(p->connector_profile_details[0]->connector_profile_name, "acme-prof");
  /* gone is gone, even while a profile still names it */
  expect_error(unregister("acme", false, &err), &err, AF_ERR_RESOURCE_NOT_FOUND, "");
  cr_expect_str_eq(err.message, "Connector:acme is not registered.");
  expect_error(unregister("acme", true, &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Connector:acme is not registered.");
  expect_error(unregister("nope", false, &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Connector:nope is not registered.");
  /* a profile made for it again needs it registered again */
  expect_error(custom_profile("acme-prof-2", "acme", &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Connector:acme is not registered. Please register it first");
  /* once its profiles are gone, a connector unregisters without force */
  registered("acme");
  cr_assert_eq(
      call("DeleteConnectorProfile", "{\"connectorProfileName\": \"acme-prof\"}", NULL, &err),
      AF_OK, "%s", err.message);
  cr_expect_eq(unregister("acme", false, &err), AF_OK, "%s", err.message);
  expect_error(unregister("other", false, &err), &err, AF_ERR_CONFLICT, "other-prof");
}

/* ==== DescribeConnector ==== */

Test(connectors, describe_a_managed_connector) {
  static const int types[] = {CT(SALESFORCE), CT(S3), CT(REDSHIFT), CT(SAPO_DATA), CT(PARDOT)};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    Appflow__V1__DescribeConnectorResponse *r = called(
        "DescribeConnector",
        arena_printf(
            &arena, "{\"connectorType\": \"%s\"}",
            af_model_enum_string(
                af_model_member_named(&af_model_DescribeConnectorRequest, "connectorType")->shape,
                types[i])));
    cr_assert_not_null(r->connector_configuration);
    cr_expect(
        same_message(&r->connector_configuration->base, &af_catalog_connector(cat, types[i])->base),
        "%d: not the catalog's", types[i]);
  }
  Appflow__V1__DescribeConnectorResponse *r =
      called("DescribeConnector", "{\"connectorType\": \"Redshift\"}");
  cr_expect_not(r->connector_configuration->can_use_as_source);
  cr_expect(r->connector_configuration->can_use_as_destination);
  /* a service whose catalog is empty knows no type */
  af_store *other_store;
  af_flows *other = test_service_new(NULL, &other_store);
  af_error err;
  cr_expect_eq(call_json(other, "DescribeConnector", "{\"connectorType\": \"Salesforce\"}", &arena,
                         NULL, &err),
               AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_str_eq(err.message, "Connector type Salesforce is not in appflowd's catalog");
  test_service_free(other, other_store);
}

/* ==== DescribeConnectors and ListConnectors ==== */

/* What identifies a detail: its type's name, or "custom:" and its label. */
static const char *id_of(const Appflow__V1__ConnectorDetail *d) {
  if (d->connector_type == CT(CUSTOM_CONNECTOR))
    return arena_printf(&arena, "custom:%s", d->connector_label ? d->connector_label : "(none)");
  return af_model_enum_string(
      af_model_member_named(&af_model_ConnectorDetail, "connectorType")->shape,
      (int)d->connector_type);
}

/* Seen ids: each must come once. */
typedef struct seen {
  const char *ids[256];
  size_t n;
  int pages;
} seen;

static void see(seen *s, const char *id) {
  for (size_t i = 0; i < s->n; i++)
    cr_expect_str_neq(s->ids[i], id, "%s twice", id);
  cr_assert_lt(s->n, 256);
  s->ids[s->n++] = id;
}

static bool has(const seen *s, const char *id) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->ids[i], id) == 0)
      return true;
  return false;
}

/* The custom connectors the tests below register. */
static const char *const labels[] = {"acme", "beta", "gamma"};

static void register_three(void) {
  for (size_t i = 0; i < 3; i++)
    registered(labels[i]);
}

/* Every catalog type (but those a filter leaves out) and every registration, once each. */
static void expect_all(const seen *s, bool managed, bool customs, const char *what) {
  size_t want = (size_t)(managed ? MANAGED : 0) + (customs ? 3 : 0);
  cr_expect_eq(s->n, want, "%s: %zu seen, not %zu", what, s->n, want);
  const ProtobufCEnumDescriptor *d = &appflow__v1__connector_type__descriptor;
  for (unsigned i = 0; managed && i < d->n_values; i++) {
    int v = d->values[i].value;
    if (v == 0 || v == CT(CUSTOM_CONNECTOR))
      continue;
    const char *name = af_model_enum_string(
        af_model_member_named(&af_model_ConnectorDetail, "connectorType")->shape, v);
    cr_expect(has(s, name), "%s: %s missing", what, name);
  }
  for (size_t i = 0; customs && i < 3; i++)
    cr_expect(has(s, arena_printf(&arena, "custom:%s", labels[i])), "%s: %s missing", what,
              labels[i]);
}

/* Every page of DescribeConnectors with members (inside a JSON object, may be empty) and
 * maxResults max (0: none given); each page's configurations are its managed details'. */
static seen describe_pages(const char *members, int max) {
  seen s = {0};
  const char *token = NULL;
  do {
    char more[600] = "";
    size_t o = 0;
    if (max > 0)
      o += (size_t)snprintf(more + o, sizeof more - o, "%s\"maxResults\": %d", *members ? ", " : "",
                            max);
    if (token != NULL)
      snprintf(more + o, sizeof more - o, "%s\"nextToken\": \"%s\"", *members || o ? ", " : "",
               token);
    Appflow__V1__DescribeConnectorsResponse *r =
        called("DescribeConnectors", arena_printf(&arena, "{%s%s}", members, more));
    size_t page_max = max > 0 ? (size_t)max : 20;
    cr_expect_leq(r->n_connectors, page_max);
    cr_expect(r->next_token == NULL || r->n_connectors == page_max, "a short page before the end");
    size_t managed = 0;
    for (size_t i = 0; i < r->n_connectors; i++) {
      const Appflow__V1__ConnectorDetail *d = r->connectors[i];
      see(&s, id_of(d));
      if (d->connector_type == CT(CUSTOM_CONNECTOR))
        continue;
      /* its configuration is in the map under its type's name */
      const char *key = id_of(d);
      const Appflow__V1__ConnectorConfiguration *cfg = NULL;
      for (size_t k = 0; k < r->n_connector_configurations; k++)
        if (strcmp(r->connector_configurations[k]->key, key) == 0)
          cfg = r->connector_configurations[k]->value;
      cr_assert_not_null(cfg, "%s has no configuration", key);
      cr_expect(same_message(&cfg->base, &af_catalog_connector(cat, (int)d->connector_type)->base),
                "%s: not the catalog's", key);
      cr_expect_str_eq(d->application_type,
                       af_catalog_application_type(cat, (int)d->connector_type));
      managed++;
    }
    cr_expect_eq(r->n_connector_configurations, managed, "one configuration per managed type");
    token = r->next_token;
    cr_assert_lt(++s.pages, 200, "pages do not end");
  } while (token != NULL);
  return s;
}

Test(connectors, describe_connectors_pages_hold_every_type_and_registration_once) {
  register_three();
  static const int maxes[] = {0, 1, 2, 5, 22, 23, 24, 25, 26, 27, 100};
  for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
    seen s = describe_pages("", maxes[i]);
    const char *what = arena_printf(&arena, "maxResults %d", maxes[i]);
    expect_all(&s, true, true, what);
    int per = maxes[i] ? maxes[i] : 20;
    cr_expect_eq(s.pages, (MANAGED + 3 + per - 1) / per, "%s", what);
  }
}

/* The response's JSON as the AWS door writes it with the packed parts' kept texts, twice (the
 * first fills the catalog's slots, the second reads them), against the JSON written without. */
static void expect_same_json(const char *op, const ProtobufCMessage *resp, const af_pbc_ready *r) {
  const af_model_struct *shape = af_flows_rpc_named(svc, op)->op->output;
  char *plain, *kept;
  size_t plain_len, kept_len;
  af_error err;
  cr_assert_eq(af_bridge_message_to_json(shape, resp, &arena, &plain, &plain_len, &err), AF_OK);
  for (int pass = 0; pass < 2; pass++) {
    cr_assert_eq(af_bridge_message_to_json_kept(shape, resp, r, &arena, &kept, &kept_len, &err),
                 AF_OK);
    cr_expect_str_eq(kept, plain, "%s, pass %d", op, pass);
  }
}

/* Each packed part is the response's own configuration, in the order the encoders meet them,
 * and its bytes are what packing that configuration gives. */
static void expect_packed_configs(const af_pbc_ready *r, const ProtobufCMessage *const *configs,
                                  size_t n) {
  cr_assert_eq(r->n, n);
  for (size_t i = 0; i < n; i++) {
    size_t len = protobuf_c_message_get_packed_size(configs[i]);
    uint8_t *buf = af_arena_alloc(&arena, len + 1);
    cr_assert_eq(protobuf_c_message_pack(configs[i], buf), len);
    cr_expect_eq(r->items[i].msg, configs[i], "part %zu is the response's configuration", i);
    cr_assert_eq(r->items[i].len, len);
    cr_expect_arr_eq(r->items[i].data, buf, len);
    cr_expect_not_null(r->items[i].text);
  }
}

/* DescribeConnectors and DescribeConnector send the catalog's configurations packed once, with
 * their JSON kept after the first response that writes it; what the doors send is the same. */
Test(connectors, configurations_come_packed_from_the_catalog) {
  register_three();
  af_pbc_ready r;
  Appflow__V1__DescribeConnectorsRequest *q = request_from_json(
      &af_model_DescribeConnectorsRequest,
      "{\"connectorTypes\": [\"Salesforce\", \"S3\", \"CustomConnector\"]}", &arena);
  Appflow__V1__DescribeConnectorsResponse *resp = af_arena_alloc(&arena, sizeof *resp);
  appflow__v1__describe_connectors_response__init(resp);
  test_call_ready(svc, "DescribeConnectors", &q->base, &resp->base, &r, &arena);
  cr_assert_eq(resp->n_connector_configurations, 2);
  cr_expect_eq(resp->n_connectors, 5, "two managed types and three registrations");
  const ProtobufCMessage *configs[2];
  for (size_t i = 0; i < 2; i++)
    configs[i] = &resp->connector_configurations[i]->value->base;
  expect_packed_configs(&r, configs, 2);
  expect_same_json("DescribeConnectors", &resp->base, &r);

  Appflow__V1__DescribeConnectorRequest *one =
      request_from_json(&af_model_DescribeConnectorRequest, "{\"connectorType\": \"S3\"}", &arena);
  Appflow__V1__DescribeConnectorResponse *d = af_arena_alloc(&arena, sizeof *d);
  appflow__v1__describe_connector_response__init(d);
  test_call_ready(svc, "DescribeConnector", &one->base, &d->base, &r, &arena);
  configs[0] = &d->connector_configuration->base;
  expect_packed_configs(&r, configs, 1);
  expect_same_json("DescribeConnector", &d->base, &r);
}

Test(connectors, describe_connectors_filters_by_type) {
  register_three();
  seen s = describe_pages("\"connectorTypes\": [\"S3\", \"Zendesk\"]", 0);
  cr_expect_eq(s.n, 2);
  cr_expect(has(&s, "S3") && has(&s, "Zendesk"));
  s = describe_pages("\"connectorTypes\": [\"Zendesk\", \"S3\"]", 1);
  cr_expect_eq(s.n, 2);
  cr_expect_eq(s.pages, 2);
  s = describe_pages("\"connectorTypes\": [\"CustomConnector\"]", 0);
  expect_all(&s, false, true, "CustomConnector");
  s = describe_pages("\"connectorTypes\": [\"CustomConnector\"]", 1);
  expect_all(&s, false, true, "CustomConnector, maxResults 1");
  cr_expect_eq(s.pages, 3);
  s = describe_pages("\"connectorTypes\": [\"S3\", \"CustomConnector\"]", 2);
  cr_expect_eq(s.n, 4);
  cr_expect(has(&s, "S3"));
  cr_expect_eq(s.pages, 2);
  s = describe_pages("\"connectorTypes\": [\"Salesforce\", \"Salesforce\"]", 0);
  cr_expect_eq(s.n, 1, "a type named twice is listed once");
  s = describe_pages("\"connectorTypes\": []", 0);
  expect_all(&s, true, true, "an empty list: every type");
}

/* Every page of ListConnectors with maxResults max (0: none given). */
static seen list_pages(int max) {
  seen s = {0};
  const char *token = NULL;
  do {
    const char *req =
        max > 0
            ? (token
                   ? arena_printf(&arena, "{\"maxResults\": %d, \"nextToken\": \"%s\"}", max, token)
                   : arena_printf(&arena, "{\"maxResults\": %d}", max))
            : (token ? arena_printf(&arena, "{\"nextToken\": \"%s\"}", token) : "{}");
    Appflow__V1__ListConnectorsResponse *r = called("ListConnectors", req);
    size_t page_max = max > 0 ? (size_t)max : 20;
    cr_expect_leq(r->n_connectors, page_max, "maxResults %d", max);
    cr_expect(r->next_token == NULL || r->n_connectors == page_max,
              "maxResults %d: a short page before the end", max);
    for (size_t i = 0; i < r->n_connectors; i++) {
      const Appflow__V1__ConnectorDetail *d = r->connectors[i];
      see(&s, id_of(d));
      if (d->connector_type == CT(CUSTOM_CONNECTOR)) {
        cr_expect_str_eq(d->registered_by, ROOT);
        cr_expect_not_null(d->registered_at);
        cr_expect_eq(d->connector_provisioning_type,
                     APPFLOW__V1__CONNECTOR_PROVISIONING_TYPE__CONNECTOR_PROVISIONING_TYPE_LAMBDA);
      } else {
        cr_expect_str_eq(d->application_type,
                         af_catalog_application_type(cat, (int)d->connector_type));
        cr_expect_str_eq(d->connector_name,
                         af_catalog_connector(cat, (int)d->connector_type)->connector_name);
      }
    }
    token = r->next_token;
    cr_assert_lt(++s.pages, 200, "pages do not end");
  } while (token != NULL);
  return s;
}

Test(connectors, list_connectors_pages_miss_nothing_and_repeat_nothing, .timeout = 600) {
  register_three();
  for (int max = 0; max <= 100; max++) {
    seen s = list_pages(max);
    const char *what = arena_printf(&arena, "maxResults %d", max);
    expect_all(&s, true, true, what);
    int per = max ? max : 20;
    cr_expect_eq(s.pages, (MANAGED + 3 + per - 1) / per, "%s", what);
  }
  /* and without registrations */
  for (size_t i = 0; i < 3; i++) {
    af_error err;
    cr_assert_eq(unregister(labels[i], false, &err), AF_OK, "%s", err.message);
  }
  static const int maxes[] = {1, 22, 23, 24};
  for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
    seen s = list_pages(maxes[i]);
    expect_all(&s, true, false, arena_printf(&arena, "no registrations, maxResults %d", maxes[i]));
    cr_expect_eq(s.pages, (MANAGED + maxes[i] - 1) / maxes[i], "maxResults %d", maxes[i]);
  }
}

/* ==== tokens ==== */

static const char *token_of(const char *op, const char *json) {
  ProtobufCMessage *r = called(op, json);
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(r->descriptor, "next_token");
  cr_assert_not_null(f, "%s has no next_token", op);
  const char *token = *(const char *const *)(const void *)((const char *)r + f->offset);
  cr_assert_not_null(token, "%s %s gave no token", op, json);
  return token;
}

static void expect_refused(const char *op, const char *token, const char *from) {
  af_error err;
  af_err rc = call(op, arena_printf(&arena, "{\"nextToken\": \"%s\"}", token), NULL, &err);
  cr_expect_eq(rc, AF_ERR_VALIDATION, "%s took a %s token: %s", op, from, err.message);
  cr_expect(
      strstr(err.message, arena_printf(&arena,
                                       "Invalid nextToken: pass the nextToken of a previous %s "
                                       "response unchanged",
                                       op)) != NULL,
      "%s", err.message);
}

Test(connectors, a_token_works_only_for_its_own_operation) {
  register_three();
  test_salesforce_profile(svc, "sf-1");
  test_salesforce_profile(svc, "sf-2");
  test_seed_flow(svc, "f1", APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND, 0);
  test_seed_flow(svc, "f2", APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND, 0);
  const char *describe = token_of("DescribeConnectors", "{\"maxResults\": 1}");
  const char *list = token_of("ListConnectors", "{\"maxResults\": 1}");
  const char *flows = token_of("ListFlows", "{\"maxResults\": 1}");
  const char *profiles = token_of("DescribeConnectorProfiles", "{\"maxResults\": 1}");
  /* each works where it came from */
  called("DescribeConnectors", arena_printf(&arena, "{\"nextToken\": \"%s\"}", describe));
  called("ListConnectors", arena_printf(&arena, "{\"nextToken\": \"%s\"}", list));
  /* and nowhere else */
  expect_refused("ListConnectors", describe, "DescribeConnectors");
  expect_refused("DescribeConnectors", list, "ListConnectors");
  expect_refused("ListConnectors", flows, "ListFlows");
  expect_refused("DescribeConnectors", flows, "ListFlows");
  expect_refused("ListConnectors", profiles, "DescribeConnectorProfiles");
  expect_refused("DescribeConnectors", profiles, "DescribeConnectorProfiles");
  expect_refused("ListFlows", list, "ListConnectors");
  expect_refused("ListFlows", describe, "DescribeConnectors");
  expect_refused("DescribeConnectorProfiles", list, "ListConnectors");
  expect_refused("DescribeConnectorProfiles", describe, "DescribeConnectors");
  expect_refused("ListConnectors", "bm90LWEtdG9rZW4", "made-up");
  /* a token of the registrations' part of the pages too */
  const char *custom = token_of("DescribeConnectors",
                                "{\"connectorTypes\": [\"CustomConnector\"], \"maxResults\": 1}");
  expect_refused("ListConnectors", custom, "DescribeConnectors");
}
