/* src/flows/entities.c: ListConnectorEntities, DescribeConnectorEntity and
 * ResetConnectorMetadataCache, on the memory store, answered from a catalog the test fills: a
 * connector type's default entities reached through a profile (or, for a type that takes none,
 * through the type), a profile's own set, entities nested under entitiesPath, the refusals,
 * pages, the fields as given (copied out of the catalog), and the reloader. */
#include "bridge/catalog_load.h"
#include "flows/catalog.h"
#include "flows/service.h"

#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT(x) APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_##x

/* Two fields of Salesforce's Account, as data/entities.json writes them. */
#define ACCOUNT_FIELDS                                                                             \
  "[{\"identifier\": \"Id\", \"label\": \"Account ID\", \"isPrimaryKey\": true, "                  \
  "\"supportedFieldTypeDetails\": {\"v1\": {\"fieldType\": \"id\", \"filterOperators\": "          \
  "[\"EQUAL_TO\"]}}, \"description\": \"Account ID\", \"sourceProperties\": "                      \
  "{\"isRetrievable\": true, \"isQueryable\": true}, \"destinationProperties\": "                  \
  "{\"isCreatable\": false, \"isNullable\": false, \"isUpsertable\": false, "                      \
  "\"isUpdatable\": false, \"supportedWriteOperations\": [\"UPDATE\", \"UPSERT\"]}}, "             \
  "{\"identifier\": \"Name\", \"label\": \"Account Name\", \"supportedFieldTypeDetails\": "        \
  "{\"v1\": {\"fieldType\": \"string\", \"filterOperators\": [\"CONTAINS\", \"EQUAL_TO\"], "       \
  "\"fieldLengthRange\": {\"minimum\": 0, \"maximum\": 255}}}, \"defaultValue\": \"none\", "       \
  "\"customProperties\": {\"precision\": \"0\"}}]"

/* Salesforce's default: five entities in two groups. */
static const char SALESFORCE[] =
    "{\"Objects\": [{\"name\": \"Account\", \"label\": \"Account\", \"fields\": " ACCOUNT_FIELDS
    "}, {\"name\": \"Contact\", \"label\": \"Contact\"}, {\"name\": \"Lead\"}], "
    "\"Custom\": [{\"name\": \"Invoice__c\", \"label\": \"Invoice\"}, {\"name\": \"Payment__c\"}]}";
/* The order those five come in, as "group/name". */
static const char *const SALESFORCE_ALL[] = {"Objects/Account", "Objects/Contact", "Objects/Lead",
                                             "Custom/Invoice__c", "Custom/Payment__c"};

/* S3 takes no profile; a bucket holds prefixes, one of them a deeper one. */
static const char S3[] =
    "{\"Objects\": [{\"name\": \"bucket\", \"label\": \"Bucket\", \"entities\": {\"Prefixes\": ["
    "{\"name\": \"bucket/orders\", \"fields\": [{\"identifier\": \"order_id\"}], \"entities\": "
    "{\"Files\": [{\"name\": \"bucket/orders/2024\", \"label\": \"2024\"}]}}, "
    "{\"name\": \"bucket/customers\"}]}}]}";

/* sf-own's own set. */
static const char OWN[] = "{\"Objects\": [{\"name\": \"Own__c\", \"label\": \"Own\", \"fields\": "
                          "[{\"identifier\": \"OwnField\"}]}]}";

static af_catalog *cat;
static af_flows *svc;
static af_store *store;
static af_arena arena;

/* Sets type's default (profile NULL) or profile's own entities from a groups object in JSON. */
static void set_entities(int type, const char *profile, const char *groups) {
  json_error_t je;
  json_t *j = json_loads(groups, JSON_REJECT_DUPLICATES, &je);
  cr_assert_not_null(j, "%s", je.text);
  char msg[1024];
  cr_assert_eq(af_catalog_set_entities_json(cat, type, profile, j, "test", msg, sizeof msg), 0,
               "%s", msg);
  json_decref(j);
}

static void setup(void) {
  cat = af_catalog_new();
  cr_assert_not_null(cat);
  set_entities(CT(SALESFORCE), NULL, SALESFORCE);
  set_entities(CT(S3), NULL, S3);
  set_entities(CT(SALESFORCE), "sf-own", OWN);
  svc = test_service_new(&(af_flows_config){.catalog = cat}, &store);
  af_arena_init(&arena);
  test_salesforce_profile(svc, "sf");
  test_salesforce_profile(svc, "sf-own");
  test_profile(svc, "zd", "Zendesk", "{\"instanceUrl\": \"https://example.zendesk.com\"}",
               "{\"clientId\": \"id\", \"clientSecret\": \"secret\"}");
}

static void teardown(void) {
  af_arena_destroy(&arena);
  test_service_free(svc, store);
  af_catalog_free(cat);
}

TestSuite(entities, .init = setup, .fini = teardown);

/* ---- calls ---- */

static af_err list(const char *json, Appflow__V1__ListConnectorEntitiesResponse **resp,
                   af_error *err) {
  return call_json(svc, "ListConnectorEntities", json, &arena, (ProtobufCMessage **)resp, err);
}

static Appflow__V1__ListConnectorEntitiesResponse *listed(const char *json) {
  Appflow__V1__ListConnectorEntitiesResponse *r;
  af_error err;
  cr_assert_eq(list(json, &r, &err), AF_OK, "%s: %s", json, err.message);
  return r;
}

static af_err describe(const char *json, Appflow__V1__DescribeConnectorEntityResponse **resp,
                       af_error *err) {
  return call_json(svc, "DescribeConnectorEntity", json, &arena, (ProtobufCMessage **)resp, err);
}

static Appflow__V1__DescribeConnectorEntityResponse *described(const char *json) {
  Appflow__V1__DescribeConnectorEntityResponse *r;
  af_error err;
  cr_assert_eq(describe(json, &r, &err), AF_OK, "%s: %s", json, err.message);
  return r;
}

static af_err reset(const char *json, af_error *err) {
  return call_json(svc, "ResetConnectorMetadataCache", json, &arena, NULL, err);
}

/* A page as text: "group/name[label]" ("+" after it when it has nested entities), one per
 * entity, joined by ' ', groups in the page's order. */
static const char *page_text(const Appflow__V1__ListConnectorEntitiesResponse *r) {
  static char out[2048];
  out[0] = '\0';
  for (size_t g = 0; g < r->n_connector_entity_map; g++) {
    const Appflow__V1__ListConnectorEntitiesResponse__ConnectorEntityMapEntry *e =
        r->connector_entity_map[g];
    cr_assert_not_null(e->value, "group %s", e->key);
    for (size_t i = 0; i < e->value->n_items; i++) {
      const Appflow__V1__ConnectorEntity *x = e->value->items[i];
      cr_expect(x->has_has_nested_entities, "%s: hasNestedEntities is always given", x->name);
      size_t o = strlen(out);
      snprintf(out + o, sizeof out - o, "%s%s/%s[%s]%s", o ? " " : "", e->key, x->name,
               x->label ? x->label : "", x->has_nested_entities ? "+" : "");
    }
  }
  return out;
}

static void expect_error(af_err got, const af_error *err, af_err want, const char *words) {
  cr_expect_eq(got, want, "%d, not %d: %s", got, want, err->message);
  cr_expect(strstr(err->message, words) != NULL, "'%s' does not say '%s'", err->message, words);
}

/* ---- ListConnectorEntities ---- */

Test(entities, a_profile_lists_its_types_default) {
  Appflow__V1__ListConnectorEntitiesResponse *r = listed("{\"connectorProfileName\": \"sf\"}");
  cr_expect_str_eq(page_text(r), "Objects/Account[Account] Objects/Contact[Contact] Objects/Lead[] "
                                 "Custom/Invoice__c[Invoice] Custom/Payment__c[]");
  cr_expect_null(r->next_token);
  /* the type may be given too, when it is the profile's */
  r = listed("{\"connectorProfileName\": \"sf\", \"connectorType\": \"Salesforce\"}");
  cr_expect_str_eq(page_text(r), "Objects/Account[Account] Objects/Contact[Contact] Objects/Lead[] "
                                 "Custom/Invoice__c[Invoice] Custom/Payment__c[]");
  /* a type the catalog knows nothing of: an empty map */
  r = listed("{\"connectorProfileName\": \"zd\"}");
  cr_expect_eq(r->n_connector_entity_map, 0);
  cr_expect_null(r->next_token);
}

Test(entities, a_profiles_own_set_replaces_its_types_default) {
  cr_expect_str_eq(page_text(listed("{\"connectorProfileName\": \"sf-own\"}")),
                   "Objects/Own__c[Own]");
  cr_expect_str_eq(page_text(listed("{\"connectorProfileName\": \"sf\"}")),
                   "Objects/Account[Account] Objects/Contact[Contact] Objects/Lead[] "
                   "Custom/Invoice__c[Invoice] Custom/Payment__c[]");
  Appflow__V1__DescribeConnectorEntityResponse *d;
  af_error err;
  expect_error(describe("{\"connectorProfileName\": \"sf-own\", \"connectorEntityName\": "
                        "\"Account\"}",
                        &d, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Entity Account does not exist in the Salesforce connector of profile sf-own");
  expect_error(
      describe("{\"connectorProfileName\": \"sf\", \"connectorEntityName\": \"Own__c\"}", &d, &err),
      &err, AF_ERR_RESOURCE_NOT_FOUND, "Entity Own__c does not exist");
  cr_expect_str_eq(described("{\"connectorProfileName\": \"sf-own\", \"connectorEntityName\": "
                             "\"Own__c\"}")
                       ->connector_entity_fields[0]
                       ->identifier,
                   "OwnField");
}

Test(entities, entities_path_lists_what_is_nested) {
  cr_expect_str_eq(page_text(listed("{\"connectorType\": \"S3\"}")), "Objects/bucket[Bucket]+");
  cr_expect_str_eq(page_text(listed("{\"connectorType\": \"S3\", \"entitiesPath\": \"\"}")),
                   "Objects/bucket[Bucket]+", "an empty path is the top");
  cr_expect_str_eq(page_text(listed("{\"connectorType\": \"S3\", \"entitiesPath\": \"bucket\"}")),
                   "Prefixes/bucket/orders[]+ Prefixes/bucket/customers[]");
  cr_expect_str_eq(
      page_text(listed("{\"connectorType\": \"S3\", \"entitiesPath\": \"bucket/orders\"}")),
      "Files/bucket/orders/2024[2024]");
  Appflow__V1__ListConnectorEntitiesResponse *leaf =
      listed("{\"connectorType\": \"S3\", \"entitiesPath\": \"bucket/customers\"}");
  cr_expect_eq(leaf->n_connector_entity_map, 0, "an entity with nothing under it");
  /* and nested entities are described by their name */
  Appflow__V1__DescribeConnectorEntityResponse *d =
      described("{\"connectorType\": \"S3\", \"connectorEntityName\": \"bucket/orders\"}");
  cr_assert_eq(d->n_connector_entity_fields, 1);
  cr_expect_str_eq(d->connector_entity_fields[0]->identifier, "order_id");
  d = described("{\"connectorType\": \"S3\", \"connectorEntityName\": \"bucket/orders/2024\"}");
  cr_expect_eq(d->n_connector_entity_fields, 0);
}

Test(entities, unknown_paths_entities_and_profiles_are_not_found) {
  Appflow__V1__ListConnectorEntitiesResponse *l;
  Appflow__V1__DescribeConnectorEntityResponse *d;
  af_error err;
  expect_error(list("{\"connectorType\": \"S3\", \"entitiesPath\": \"no/such/prefix\"}", &l, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Entities path no/such/prefix does not exist in the S3 connector");
  expect_error(list("{\"connectorProfileName\": \"sf\", \"entitiesPath\": \"Nope\"}", &l, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Entities path Nope does not exist in the Salesforce connector of profile sf");
  expect_error(list("{\"connectorProfileName\": \"zd\", \"entitiesPath\": \"tickets\"}", &l, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "Entities path tickets does not exist");
  expect_error(
      describe("{\"connectorProfileName\": \"sf\", \"connectorEntityName\": \"Nope\"}", &d, &err),
      &err, AF_ERR_RESOURCE_NOT_FOUND,
      "Entity Nope does not exist in the Salesforce connector of profile sf");
  expect_error(
      describe("{\"connectorType\": \"S3\", \"connectorEntityName\": \"bucket/x\"}", &d, &err),
      &err, AF_ERR_RESOURCE_NOT_FOUND, "Entity bucket/x does not exist in the S3 connector");
  expect_error(describe("{\"connectorProfileName\": \"zd\", \"connectorEntityName\": \"tickets\"}",
                        &d, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "Entity tickets does not exist");
  expect_error(list("{\"connectorProfileName\": \"nope\"}", &l, &err), &err,
               AF_ERR_RESOURCE_NOT_FOUND, "Connector Profile with name nope does not exist.");
  cr_expect_str_eq(err.message, "Connector Profile with name nope does not exist.");
  expect_error(describe("{\"connectorProfileName\": \"nope\", \"connectorEntityName\": "
                        "\"Account\"}",
                        &d, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "Connector Profile with name nope does not exist.");
  expect_error(reset("{\"connectorProfileName\": \"nope\"}", &err), &err, AF_ERR_RESOURCE_NOT_FOUND,
               "Connector Profile with name nope does not exist.");
}

Test(entities, a_type_that_takes_a_profile_needs_one) {
  Appflow__V1__ListConnectorEntitiesResponse *l;
  Appflow__V1__DescribeConnectorEntityResponse *d;
  af_error err;
  expect_error(list("{\"connectorType\": \"Salesforce\"}", &l, &err), &err, AF_ERR_VALIDATION,
               "'connectorProfileName' is required: connector type Salesforce is reached through "
               "a connector profile");
  expect_error(
      describe("{\"connectorType\": \"Zendesk\", \"connectorEntityName\": \"tickets\"}", &d, &err),
      &err, AF_ERR_VALIDATION,
      "'connectorProfileName' is required: connector type Zendesk is reached");
  expect_error(reset("{\"connectorType\": \"Salesforce\"}", &err), &err, AF_ERR_VALIDATION,
               "'connectorProfileName' is required");
  /* neither a profile nor a type */
  expect_error(list("{}", &l, &err), &err, AF_ERR_VALIDATION, "Give connectorProfileName");
  expect_error(describe("{\"connectorEntityName\": \"Account\"}", &d, &err), &err,
               AF_ERR_VALIDATION, "Give connectorProfileName");
  expect_error(reset("{}", &err), &err, AF_ERR_VALIDATION, "Give connectorProfileName");
}

Test(entities, a_profile_of_another_type_is_refused) {
  Appflow__V1__ListConnectorEntitiesResponse *l;
  Appflow__V1__DescribeConnectorEntityResponse *d;
  af_error err;
  expect_error(list("{\"connectorProfileName\": \"sf\", \"connectorType\": \"Zendesk\"}", &l, &err),
               &err, AF_ERR_VALIDATION,
               "Connector profile sf is for connector type Salesforce, not Zendesk");
  expect_error(describe("{\"connectorProfileName\": \"zd\", \"connectorType\": \"S3\", "
                        "\"connectorEntityName\": \"bucket\"}",
                        &d, &err),
               &err, AF_ERR_VALIDATION,
               "Connector profile zd is for connector type Zendesk, not S3");
  expect_error(reset("{\"connectorProfileName\": \"sf\", \"connectorType\": \"S3\"}", &err), &err,
               AF_ERR_VALIDATION, "Connector profile sf is for connector type Salesforce, not S3");
}

/* Every page of the list json (without its closing brace) with maxResults max, as
 * "group/name" joined by ' '; *pages gets how many pages it took. */
static const char *all_pages(const char *json, int max, int *pages) {
  static char out[4096];
  out[0] = '\0';
  *pages = 0;
  const char *token = NULL;
  do {
    char req[2048];
    if (token != NULL)
      snprintf(req, sizeof req, "%s, \"maxResults\": %d, \"nextToken\": \"%s\"}", json, max, token);
    else
      snprintf(req, sizeof req, "%s, \"maxResults\": %d}", json, max);
    Appflow__V1__ListConnectorEntitiesResponse *r = listed(req);
    size_t n = 0;
    for (size_t g = 0; g < r->n_connector_entity_map; g++) {
      const Appflow__V1__ListConnectorEntitiesResponse__ConnectorEntityMapEntry *e =
          r->connector_entity_map[g];
      for (size_t i = 0; i < e->value->n_items; i++, n++) {
        size_t o = strlen(out);
        snprintf(out + o, sizeof out - o, "%s%s/%s", o ? " " : "", e->key,
                 e->value->items[i]->name);
      }
    }
    cr_expect_leq(n, (size_t)max, "a page of %d held %zu", max, n);
    cr_expect(r->next_token == NULL || n == (size_t)max, "a short page before the end");
    token = r->next_token;
    cr_assert_lt(++*pages, 1000, "pages do not end");
  } while (token != NULL);
  return out;
}

Test(entities, pages_cover_everything_once) {
  char want[512] = "";
  for (size_t i = 0; i < sizeof SALESFORCE_ALL / sizeof SALESFORCE_ALL[0]; i++) {
    size_t o = strlen(want);
    snprintf(want + o, sizeof want - o, "%s%s", i ? " " : "", SALESFORCE_ALL[i]);
  }
  for (int max = 1; max <= 7; max++) {
    int pages;
    cr_expect_str_eq(all_pages("{\"connectorProfileName\": \"sf\"", max, &pages), want,
                     "maxResults %d", max);
    cr_expect_eq(pages, max >= 5 ? 1 : (5 + max - 1) / max, "maxResults %d", max);
  }
  /* a bigger set: 250 entities in three groups */
  char big[16384] = "{";
  size_t o = 1;
  char all[8192] = "";
  for (int g = 0; g < 3; g++) {
    o += (size_t)snprintf(big + o, sizeof big - o, "%s\"G%d\": [", g ? ", " : "", g);
    for (int i = 0; i < (g == 1 ? 50 : 100); i++) {
      o += (size_t)snprintf(big + o, sizeof big - o, "%s{\"name\": \"e%d_%03d\"}", i ? ", " : "", g,
                            i);
      size_t a = strlen(all);
      snprintf(all + a, sizeof all - a, "%sG%d/e%d_%03d", a ? " " : "", g, g, i);
    }
    o += (size_t)snprintf(big + o, sizeof big - o, "]");
  }
  snprintf(big + o, sizeof big - o, "}");
  set_entities(CT(SALESFORCE), "sf", big);
  static const int maxes[] = {1, 7, 49, 50, 51, 100, 249, 250, 251, 10000};
  for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
    int pages;
    cr_expect_str_eq(all_pages("{\"connectorProfileName\": \"sf\"", maxes[i], &pages), all,
                     "maxResults %d", maxes[i]);
    cr_expect_eq(pages, (250 + maxes[i] - 1) / maxes[i], "maxResults %d", maxes[i]);
  }
  /* without maxResults: everything at once */
  Appflow__V1__ListConnectorEntitiesResponse *r = listed("{\"connectorProfileName\": \"sf\"}");
  cr_expect_null(r->next_token);
  cr_expect_eq(r->n_connector_entity_map, 3);
}

Test(entities, a_token_of_another_operation_is_refused) {
  Appflow__V1__ListConnectorEntitiesResponse *l;
  af_error err;
  expect_error(
      list("{\"connectorProfileName\": \"sf\", \"nextToken\": \"bm90LWEtdG9rZW4\"}", &l, &err),
      &err, AF_ERR_VALIDATION,
      "Invalid nextToken: pass the nextToken of a previous ListConnectorEntities "
      "response unchanged");
  /* a ListFlows token */
  test_seed_flow(svc, "f1", APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND, 0);
  test_seed_flow(svc, "f2", APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_ON_DEMAND, 0);
  Appflow__V1__ListFlowsResponse *flows;
  cr_assert_eq(
      call_json(svc, "ListFlows", "{\"maxResults\": 1}", &arena, (ProtobufCMessage **)&flows, &err),
      AF_OK, "%s", err.message);
  cr_assert_not_null(flows->next_token);
  char req[1024];
  snprintf(req, sizeof req, "{\"connectorProfileName\": \"sf\", \"nextToken\": \"%s\"}",
           flows->next_token);
  expect_error(list(req, &l, &err), &err, AF_ERR_VALIDATION, "Invalid nextToken");
  /* and one of its own, changed */
  l = listed("{\"connectorProfileName\": \"sf\", \"maxResults\": 1}");
  cr_assert_not_null(l->next_token);
  snprintf(req, sizeof req, "{\"connectorProfileName\": \"sf\", \"nextToken\": \"%sA\"}",
           l->next_token);
  expect_error(list(req, &l, &err), &err, AF_ERR_VALIDATION, "Invalid nextToken");
}

/* ---- DescribeConnectorEntity ---- */

/* m packed, in the arena. */
static ProtobufCBinaryData packed(const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = af_arena_alloc(&arena, n ? n : 1);
  cr_assert_not_null(buf);
  protobuf_c_message_pack(m, buf);
  return (ProtobufCBinaryData){n, buf};
}

static void expect_account_fields(const Appflow__V1__DescribeConnectorEntityResponse *d) {
  json_error_t je;
  json_t *want = json_loads(ACCOUNT_FIELDS, 0, &je);
  cr_assert_not_null(want, "%s", je.text);
  cr_assert_eq(d->n_connector_entity_fields, json_array_size(want));
  for (size_t i = 0; i < json_array_size(want); i++) {
    char *one = json_dumps(json_array_get(want, i), 0);
    cr_assert_not_null(one);
    ProtobufCMessage *w = request_from_json(&af_model_ConnectorEntityField, one, &arena);
    free(one);
    ProtobufCBinaryData a = packed(w), b = packed(&d->connector_entity_fields[i]->base);
    cr_expect(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, "field %zu is not as given: %s",
              i,
              message_json(&af_model_ConnectorEntityField, d->connector_entity_fields[i], &arena));
  }
  json_decref(want);
}

Test(entities, describe_gives_the_fields_as_given) {
  Appflow__V1__DescribeConnectorEntityResponse *d =
      described("{\"connectorProfileName\": \"sf\", \"connectorEntityName\": \"Account\"}");
  expect_account_fields(d);
  const Appflow__V1__ConnectorEntityField *id = d->connector_entity_fields[0];
  cr_expect_str_eq(id->identifier, "Id");
  cr_expect_str_eq(id->label, "Account ID");
  cr_expect(id->has_is_primary_key && id->is_primary_key);
  cr_assert_not_null(id->supported_field_type_details);
  cr_assert_not_null(id->supported_field_type_details->v1);
  cr_expect_str_eq(id->supported_field_type_details->v1->field_type, "id");
  cr_expect_str_eq(d->connector_entity_fields[1]->default_value, "none");
  /* an entity without fields */
  d = described("{\"connectorProfileName\": \"sf\", \"connectorEntityName\": \"Lead\"}");
  cr_expect_eq(d->n_connector_entity_fields, 0);
}

Test(entities, described_fields_outlive_the_catalogs_set) {
  Appflow__V1__DescribeConnectorEntityResponse *d =
      described("{\"connectorProfileName\": \"sf\", \"connectorEntityName\": \"Account\"}");
  Appflow__V1__DescribeConnectorEntityResponse *own =
      described("{\"connectorProfileName\": \"sf-own\", \"connectorEntityName\": \"Own__c\"}");
  /* the sets the answers came from are replaced (and freed) */
  set_entities(CT(SALESFORCE), NULL,
               "{\"Objects\": [{\"name\": \"Other\", \"fields\": "
               "[{\"identifier\": \"x\", \"label\": \"Other label\"}]}]}");
  set_entities(CT(SALESFORCE), "sf-own", "{\"Objects\": [{\"name\": \"Y\"}]}");
  af_catalog_clear_profile_entities(cat);
  expect_account_fields(d);
  cr_expect_str_eq(own->connector_entity_fields[0]->identifier, "OwnField");
  /* and the answer now is the new set's */
  Appflow__V1__DescribeConnectorEntityResponse *x;
  af_error err;
  expect_error(describe("{\"connectorProfileName\": \"sf\", \"connectorEntityName\": \"Account\"}",
                        &x, &err),
               &err, AF_ERR_RESOURCE_NOT_FOUND, "Entity Account does not exist");
  cr_expect_str_eq(
      described("{\"connectorProfileName\": \"sf-own\", \"connectorEntityName\": \"Other\"}")
          ->connector_entity_fields[0]
          ->label,
      "Other label");
}

Test(entities, listed_entities_outlive_the_catalogs_set) {
  Appflow__V1__ListConnectorEntitiesResponse *r = listed("{\"connectorProfileName\": \"sf-own\"}");
  set_entities(CT(SALESFORCE), "sf-own", "{\"Objects\": [{\"name\": \"Y\", \"label\": \"L\"}]}");
  cr_expect_str_eq(page_text(r), "Objects/Own__c[Own]");
}

/* ---- ResetConnectorMetadataCache ---- */

typedef struct reloads {
  int calls;
  const char *set; /* sf's set after a reload, or NULL to fail */
} reloads;

static int reloader(void *ctx, af_catalog *c, char *msg, size_t msgsz) {
  reloads *r = ctx;
  r->calls++;
  if (r->set == NULL) {
    snprintf(msg, msgsz, "the seed file cannot be read");
    return -1;
  }
  json_t *j = json_loads(r->set, 0, NULL);
  int rc = j != NULL
               ? af_catalog_set_entities_json(c, CT(SALESFORCE), "sf", j, "reload", msg, msgsz)
               : -1;
  json_decref(j);
  return rc;
}

Test(entities, reset_runs_the_reloader) {
  af_error err;
  cr_expect_eq(reset("{\"connectorProfileName\": \"sf\"}", &err), AF_OK, "no reloader: %s",
               err.message);
  reloads r = {0, "{\"Objects\": [{\"name\": \"Reloaded__c\"}]}"};
  af_catalog_set_reloader(cat, reloader, &r);
  cr_assert_eq(reset("{\"connectorProfileName\": \"sf\"}", &err), AF_OK, "%s", err.message);
  cr_expect_eq(r.calls, 1);
  cr_expect_str_eq(page_text(listed("{\"connectorProfileName\": \"sf\"}")),
                   "Objects/Reloaded__c[]");
  cr_expect_str_eq(page_text(listed("{\"connectorProfileName\": \"sf-own\"}")),
                   "Objects/Own__c[Own]", "the reloader changed only sf");
  /* a type that takes no profile resets by its type */
  cr_expect_eq(reset("{\"connectorType\": \"S3\"}", &err), AF_OK, "%s", err.message);
  cr_expect_eq(r.calls, 2);
  cr_expect_eq(reset("{\"connectorProfileName\": \"sf\", \"connectorEntityName\": \"Account\", "
                     "\"entitiesPath\": \"x\", \"apiVersion\": \"58.0\"}",
                     &err),
               AF_OK, "%s", err.message);
  cr_expect_eq(r.calls, 3);
  /* refused requests reload nothing */
  cr_expect_eq(reset("{\"connectorProfileName\": \"nope\"}", &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_eq(reset("{\"connectorType\": \"Salesforce\"}", &err), AF_ERR_VALIDATION);
  cr_expect_eq(reset("{\"connectorProfileName\": \"sf\", \"connectorType\": \"Zendesk\"}", &err),
               AF_ERR_VALIDATION);
  cr_expect_eq(r.calls, 3);
}

Test(entities, a_failed_reload_is_an_internal_error) {
  reloads r = {0, NULL};
  af_catalog_set_reloader(cat, reloader, &r);
  af_error err;
  cr_expect_eq(reset("{\"connectorProfileName\": \"sf\"}", &err), AF_ERR_INTERNAL_SERVER);
  cr_expect_str_eq(err.message,
                   "Could not reload the connector metadata: the seed file cannot be read");
  cr_expect_eq(r.calls, 1);
  /* what was there stays */
  cr_expect_str_eq(page_text(listed("{\"connectorProfileName\": \"sf-own\"}")),
                   "Objects/Own__c[Own]");
}
