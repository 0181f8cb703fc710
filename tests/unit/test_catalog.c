/* src/flows/catalog.c and src/bridge/catalog_load.c: the connector and entity catalogs. Connector
 * configurations and application types per type; entity sets per type and per profile (a
 * profile's own set wins over its type's default for that type only, NULL removes it, a reload
 * clears them all); readers hold the lock while they look; the reloader. The loader: the
 * compiled-in data holds every connector type but CustomConnector; a bad document fails with a
 * message that names where; applicationType is kept; what is loaded is a deep copy. */
#include "bridge/catalog_load.h"
#include "flows/catalog.h"

#include "request_json.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CT(x) APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_##x

static af_catalog *cat;
static af_arena arena;

static void setup(void) {
  cat = af_catalog_new();
  cr_assert_not_null(cat);
  af_arena_init(&arena);
}

static void teardown(void) {
  af_catalog_free(cat);
  af_arena_destroy(&arena);
}

TestSuite(catalog, .init = setup, .fini = teardown);
TestSuite(catalog_load, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static Appflow__V1__ConnectorConfiguration *config_json(const char *json) {
  return request_from_json(&af_model_ConnectorConfiguration, json, &arena);
}

/* An entity set of one group, its entities named by names (NULL-terminated). */
static Appflowd__Store__V1__EntitySet *set_of(const char *group, const char *const *names) {
  size_t n = 0;
  while (names[n] != NULL)
    n++;
  Appflowd__Store__V1__EntitySet *s = af_arena_alloc(&arena, sizeof *s);
  Appflowd__Store__V1__Entity **v = af_arena_alloc(&arena, (n ? n : 1) * sizeof *v);
  cr_assert(s != NULL && v != NULL);
  appflowd__store__v1__entity_set__init(s);
  for (size_t i = 0; i < n; i++) {
    v[i] = af_arena_alloc(&arena, sizeof *v[i]);
    cr_assert_not_null(v[i]);
    appflowd__store__v1__entity__init(v[i]);
    v[i]->group = (char *)group;
    v[i]->name = (char *)names[i];
    v[i]->label = "";
  }
  s->entities = v;
  s->n_entities = n;
  return s;
}

/* What a reader saw: its entities' names joined by ',' ("(none)" for no set). */
typedef struct seen {
  char names[512];
} seen;

static void collect(const Appflowd__Store__V1__EntitySet *set, void *ctx) {
  seen *s = ctx;
  if (set == NULL) {
    snprintf(s->names, sizeof s->names, "(none)");
    return;
  }
  s->names[0] = '\0';
  for (size_t i = 0; i < set->n_entities; i++) {
    size_t o = strlen(s->names);
    snprintf(s->names + o, sizeof s->names - o, "%s%s", i ? "," : "", set->entities[i]->name);
  }
}

static const char *read_names(int type, const char *profile) {
  static seen s;
  af_catalog_read_entities(cat, type, profile, collect, &s);
  return s.names;
}

/* ---- connectors and application types ---- */

Test(catalog, connectors_are_set_and_read_by_type) {
  cr_expect_null(af_catalog_connector(cat, CT(SALESFORCE)));
  cr_expect_null(af_catalog_application_type(cat, CT(SALESFORCE)));
  Appflow__V1__ConnectorConfiguration *sf = config_json(
      "{\"connectorType\": \"Salesforce\", \"connectorName\": \"Salesforce\", "
      "\"canUseAsSource\": true, \"supportedDestinationConnectors\": [\"S3\", \"Redshift\"]}");
  Appflow__V1__ConnectorConfiguration *zd =
      config_json("{\"connectorType\": \"Zendesk\", \"connectorName\": \"Zendesk\"}");
  cr_assert(af_catalog_set_connector(cat, sf, "SalesforceApp"));
  cr_assert(af_catalog_set_connector(cat, zd, NULL));
  const Appflow__V1__ConnectorConfiguration *got = af_catalog_connector(cat, CT(SALESFORCE));
  cr_assert_not_null(got);
  cr_expect_neq(got, sf, "the catalog keeps a copy");
  cr_expect_eq(got->connector_type, CT(SALESFORCE));
  cr_expect_str_eq(got->connector_name, "Salesforce");
  cr_expect(got->can_use_as_source);
  cr_assert_eq(got->n_supported_destination_connectors, 2);
  cr_expect_eq(got->supported_destination_connectors[0], CT(S3));
  cr_expect_eq(got->supported_destination_connectors[1], CT(REDSHIFT));
  cr_expect_str_eq(af_catalog_application_type(cat, CT(SALESFORCE)), "SalesforceApp");
  cr_expect_str_eq(af_catalog_connector(cat, CT(ZENDESK))->connector_name, "Zendesk");
  cr_expect_null(af_catalog_application_type(cat, CT(ZENDESK)));
  cr_expect_null(af_catalog_connector(cat, CT(S3)), "a type never set");
  cr_expect_null(af_catalog_connector(cat, 0));
  cr_expect_null(af_catalog_connector(cat, -1));
  cr_expect_null(af_catalog_connector(cat, 1000));
  cr_expect_null(af_catalog_application_type(cat, 1000));
  cr_expect_null(af_catalog_connector(NULL, CT(SALESFORCE)));
  cr_expect_null(af_catalog_application_type(NULL, CT(SALESFORCE)));
}

Test(catalog, set_connector_copies_and_replaces) {
  char name[] = "First name";
  char app[] = "FirstApp";
  Appflow__V1__ConnectorConfiguration *sf = config_json("{\"connectorType\": \"Salesforce\"}");
  sf->connector_name = name;
  cr_assert(af_catalog_set_connector(cat, sf, app));
  /* the caller's memory changes (or goes): the catalog's copy does not */
  memset(name, 'x', sizeof name - 1);
  memset(app, 'y', sizeof app - 1);
  cr_expect_str_eq(af_catalog_connector(cat, CT(SALESFORCE))->connector_name, "First name");
  cr_expect_str_eq(af_catalog_application_type(cat, CT(SALESFORCE)), "FirstApp");
  Appflow__V1__ConnectorConfiguration *again =
      config_json("{\"connectorType\": \"Salesforce\", \"connectorName\": \"Second\"}");
  cr_assert(af_catalog_set_connector(cat, again, NULL));
  cr_expect_str_eq(af_catalog_connector(cat, CT(SALESFORCE))->connector_name, "Second");
  cr_expect_null(af_catalog_application_type(cat, CT(SALESFORCE)), "replaced by none");
}

/* ---- entity sets ---- */

Test(catalog, a_profiles_own_set_wins_for_its_type_only) {
  static const char *const sf[] = {"Account", "Contact", NULL};
  static const char *const zd[] = {"tickets", NULL};
  static const char *const own[] = {"Invoice__c", NULL};
  cr_expect_str_eq(read_names(CT(SALESFORCE), NULL), "(none)");
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p1"), "(none)");
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), NULL, set_of("Objects", sf)));
  cr_assert(af_catalog_set_entities(cat, CT(ZENDESK), NULL, set_of("Objects", zd)));
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), "p1", set_of("Objects", own)));
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p1"), "Invoice__c");
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p2"), "Account,Contact", "no set of its own");
  cr_expect_str_eq(read_names(CT(SALESFORCE), NULL), "Account,Contact");
  cr_expect_str_eq(read_names(CT(ZENDESK), "p1"), "tickets", "p1's set is for Salesforce");
  cr_expect_str_eq(read_names(CT(S3), "p1"), "(none)");
  cr_expect_str_eq(read_names(0, "p1"), "(none)");
  /* the same profile given a set for another type: the set moves to that type */
  cr_assert(af_catalog_set_entities(cat, CT(ZENDESK), "p1", set_of("Objects", own)));
  cr_expect_str_eq(read_names(CT(ZENDESK), "p1"), "Invoice__c");
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p1"), "Account,Contact");
}

Test(catalog, setting_null_removes_a_profiles_set) {
  static const char *const sf[] = {"Account", NULL};
  static const char *const own[] = {"Own", NULL};
  static const char *const other[] = {"Other", NULL};
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), NULL, set_of("Objects", sf)));
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), "p1", set_of("Objects", own)));
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), "p2", set_of("Objects", other)));
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), "p1", NULL));
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p1"), "Account", "back to the type's default");
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p2"), "Other", "others keep theirs");
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), "never-set", NULL), "nothing to do");
  cr_expect_str_eq(read_names(CT(SALESFORCE), "never-set"), "Account");
  /* the default too */
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), NULL, NULL));
  cr_expect_str_eq(read_names(CT(SALESFORCE), NULL), "(none)");
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p2"), "Other");
  /* a type the catalog cannot hold is ignored */
  cr_expect(af_catalog_set_entities(cat, 0, NULL, set_of("Objects", sf)));
  cr_expect(af_catalog_set_entities(cat, 1000, "p9", set_of("Objects", sf)));
  cr_expect_str_eq(read_names(1000, "p9"), "(none)");
}

Test(catalog, clear_profile_entities_keeps_the_defaults) {
  static const char *const sf[] = {"Account", NULL};
  static const char *const own[] = {"Own", NULL};
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), NULL, set_of("Objects", sf)));
  char name[16];
  for (int i = 0; i < 20; i++) { /* more than the first allocation holds */
    snprintf(name, sizeof name, "p%d", i);
    cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), name, set_of("Objects", own)));
  }
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p19"), "Own");
  af_catalog_clear_profile_entities(cat);
  for (int i = 0; i < 20; i++) {
    snprintf(name, sizeof name, "p%d", i);
    cr_expect_str_eq(read_names(CT(SALESFORCE), name), "Account", "%s", name);
  }
  /* and profiles may be given sets again after */
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), "p3", set_of("Objects", own)));
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p3"), "Own");
}

Test(catalog, set_entities_keeps_a_deep_copy) {
  char group[] = "Objects";
  char name[] = "Account";
  const char *const names[] = {name, NULL};
  Appflowd__Store__V1__EntitySet *s = set_of(group, names);
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), NULL, s));
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), "p1", s));
  memset(name, 'x', sizeof name - 1);
  memset(group, 'y', sizeof group - 1);
  af_arena_reset(&arena); /* the caller's set is gone */
  cr_expect_str_eq(read_names(CT(SALESFORCE), NULL), "Account");
  cr_expect_str_eq(read_names(CT(SALESFORCE), "p1"), "Account");
}

/* A reader holds the lock while it looks: a writer that starts replacing the set meanwhile
 * waits until the reader is done (else it would free what the reader is reading). */
typedef struct lock_probe {
  atomic_int writer_started, writer_done;
  pthread_t writer;
  char first_name[64];
  bool writer_finished_during_read, writer_ok;
  Appflowd__Store__V1__EntitySet *next;
} lock_probe;

static void *replace_default(void *ctx) {
  lock_probe *p = ctx;
  atomic_store(&p->writer_started, 1);
  p->writer_ok = af_catalog_set_entities(cat, CT(SALESFORCE), NULL, p->next);
  atomic_store(&p->writer_done, 1);
  return NULL;
}

static void read_while_writing(const Appflowd__Store__V1__EntitySet *set, void *ctx) {
  lock_probe *p = ctx;
  cr_assert_not_null(set);
  cr_assert_eq(pthread_create(&p->writer, NULL, replace_default, p), 0);
  while (!atomic_load(&p->writer_started))
    sched_yield();
  /* Ample time for an unhindered writer to finish (it takes microseconds); a held lock
   * keeps it waiting however long this is. */
  for (int i = 0; i < 20000 && !atomic_load(&p->writer_done); i++)
    sched_yield();
  p->writer_finished_during_read = atomic_load(&p->writer_done);
  /* still the set this reader was given, whole */
  snprintf(p->first_name, sizeof p->first_name, "%s", set->entities[0]->name);
}

Test(catalog, a_reader_holds_the_lock_while_it_looks) {
  static const char *const sf[] = {"Account", NULL};
  cr_assert(af_catalog_set_entities(cat, CT(SALESFORCE), NULL, set_of("Objects", sf)));
  static const char *const next[] = {"Replaced", NULL};
  lock_probe p = {.next = set_of("Objects", next)};
  af_catalog_read_entities(cat, CT(SALESFORCE), NULL, read_while_writing, &p);
  cr_assert_eq(pthread_join(p.writer, NULL), 0);
  cr_expect(p.writer_ok);
  cr_expect_not(p.writer_finished_during_read, "a writer replaced the set during a read");
  cr_expect_str_eq(p.first_name, "Account");
  cr_expect_str_eq(read_names(CT(SALESFORCE), NULL), "Replaced", "the writer went on after");
}

/* ---- the reloader ---- */

typedef struct reloads {
  int calls;
  af_catalog *saw;
  bool fail;
} reloads;

static int reloader(void *ctx, af_catalog *c, char *msg, size_t msgsz) {
  reloads *r = ctx;
  r->calls++;
  r->saw = c;
  if (r->fail) {
    snprintf(msg, msgsz, "the seed file is gone");
    return -1;
  }
  return 0;
}

Test(catalog, reload_runs_the_reloader) {
  char msg[128] = "";
  cr_expect_eq(af_catalog_reload(cat, msg, sizeof msg), 0, "no reloader: nothing to do");
  reloads r = {0};
  af_catalog_set_reloader(cat, reloader, &r);
  cr_expect_eq(af_catalog_reload(cat, msg, sizeof msg), 0);
  cr_expect_eq(r.calls, 1);
  cr_expect_eq(r.saw, cat);
  r.fail = true;
  cr_expect_eq(af_catalog_reload(cat, msg, sizeof msg), -1);
  cr_expect_str_eq(msg, "the seed file is gone");
  cr_expect_eq(r.calls, 2);
  af_catalog_set_reloader(cat, NULL, NULL);
  cr_expect_eq(af_catalog_reload(cat, msg, sizeof msg), 0);
  cr_expect_eq(r.calls, 2);
}

/* ---- the loader: the compiled-in data ---- */

Test(catalog_load, builtin_holds_every_connector_type_but_custom) {
  char msg[1024] = "";
  cr_assert_eq(af_catalog_load_builtin(cat, msg, sizeof msg), 0, "%s", msg);
  const ProtobufCEnumDescriptor *d = &appflow__v1__connector_type__descriptor;
  size_t managed = 0;
  for (unsigned i = 0; i < d->n_values; i++) {
    int v = d->values[i].value;
    if (v == 0)
      continue;
    const Appflow__V1__ConnectorConfiguration *c = af_catalog_connector(cat, v);
    if (v == CT(CUSTOM_CONNECTOR)) {
      cr_expect_null(c, "CustomConnector is registered at run time, never in the catalog");
      continue;
    }
    managed++;
    cr_assert_not_null(c, "%s is not in the catalog", d->values[i].name);
    cr_expect_eq(c->connector_type, (Appflow__V1__ConnectorType)v, "%s", d->values[i].name);
    cr_expect(c->has_can_use_as_source && c->has_can_use_as_destination, "%s", d->values[i].name);
    cr_expect_not_null(af_catalog_application_type(cat, v), "%s", d->values[i].name);
  }
  cr_expect_eq(managed, 23, "AppFlow's 24 connector types but CustomConnector");
  cr_expect_str_eq(af_catalog_application_type(cat, CT(SALESFORCE)), "Salesforce");
  cr_expect(af_catalog_connector(cat, CT(S3))->can_use_as_source);
  cr_expect_not(af_catalog_connector(cat, CT(REDSHIFT))->can_use_as_source);
  /* and the default entities */
  cr_expect_str_eq(read_names(CT(SALESFORCE), NULL), "Account,Contact,Opportunity,Lead");
  cr_expect_str_eq(read_names(CT(S3), NULL), "appflowd-example-bucket");
  cr_expect_str_eq(read_names(CT(REDSHIFT), NULL), "(none)");
}

/* ---- the loader: documents ---- */

static int load_connectors(const char *json, char *msg, size_t msgsz) {
  msg[0] = '\0';
  return af_catalog_load_connectors(cat, json, strlen(json), msg, msgsz);
}

static int load_entities(const char *json, char *msg, size_t msgsz) {
  msg[0] = '\0';
  return af_catalog_load_entities(cat, json, strlen(json), msg, msgsz);
}

/* A connectors document fails, its message holding each of the (up to two) words given. */
static void expect_bad_connectors(const char *json, const char *word1, const char *word2) {
  char msg[1024];
  cr_expect_eq(load_connectors(json, msg, sizeof msg), -1, "loaded: %s", json);
  cr_expect(strstr(msg, word1) != NULL, "'%s' does not say '%s'", msg, word1);
  if (word2 != NULL)
    cr_expect(strstr(msg, word2) != NULL, "'%s' does not say '%s'", msg, word2);
}

static void expect_bad_entities(const char *json, const char *word1, const char *word2) {
  char msg[1024];
  cr_expect_eq(load_entities(json, msg, sizeof msg), -1, "loaded: %s", json);
  cr_expect(strstr(msg, word1) != NULL, "'%s' does not say '%s'", msg, word1);
  if (word2 != NULL)
    cr_expect(strstr(msg, word2) != NULL, "'%s' does not say '%s'", msg, word2);
}

Test(catalog_load, bad_connectors_documents_name_the_path) {
  expect_bad_connectors("[]", "must be a JSON object keyed by connector type", NULL);
  expect_bad_connectors("\"Salesforce\"", "line 1, column", NULL);
  expect_bad_connectors("{\"Salesforce\": ", "line 1", NULL);
  expect_bad_connectors("{\"Salesforce\": {\"connectorType\": \"Salesforce\"}, "
                        "\"Salesforce\": {\"connectorType\": \"Salesforce\"}}",
                        "line 1", "duplicate");
  expect_bad_connectors("{\"Salesforse\": {\"connectorType\": \"Salesforce\"}}",
                        "connectors: 'Salesforse' is not an AppFlow connector type", NULL);
  expect_bad_connectors("{\"salesforce\": {\"connectorType\": \"Salesforce\"}}",
                        "'salesforce' is not an AppFlow connector type", NULL);
  expect_bad_connectors("{\"Salesforce\": {\"connectorType\": \"Salesforce\", \"colour\": 1}}",
                        "connectors.Salesforce: ", "colour");
  expect_bad_connectors("{\"Salesforce\": {\"connectorType\": \"Salesforce\", "
                        "\"connectorMetadata\": {\"Salesforce\": {\"oAuthScopes\": [\"api\"], "
                        "\"colour\": 1}}}}",
                        "connectors.Salesforce.connectorMetadata.Salesforce: unknown member "
                        "'colour'",
                        NULL);
  /* the model's constraints: a pattern, a length */
  expect_bad_connectors(
      "{\"Salesforce\": {\"connectorType\": \"Salesforce\", "
      "\"connectorDescription\": \"<b>bold</b>\"}}",
      "connectors.Salesforce: 1 validation error detected: Value '<b>bold</b>' at "
      "'connectorDescription' failed to satisfy constraint",
      NULL);
  expect_bad_connectors("{\"Salesforce\": {\"connectorType\": \"Salesforce\", "
                        "\"connectorArn\": \"not-an-arn\"}}",
                        "connectors.Salesforce: ", "'connectorArn'");
  expect_bad_connectors("{\"Salesforce\": {\"connectorType\": \"Zendesk\"}}",
                        "connectors.Salesforce: connectorType must be Salesforce", NULL);
  expect_bad_connectors("{\"Salesforce\": {\"connectorName\": \"no type\"}}",
                        "connectors.Salesforce: connectorType must be Salesforce", NULL);
  expect_bad_connectors("{\"Salesforce\": {\"connectorType\": \"Salesforce\", "
                        "\"canUseAsSource\": \"yes\"}}",
                        "connectors.Salesforce: ", "canUseAsSource");
  expect_bad_connectors("{\"S3\": {\"connectorType\": \"S3\", "
                        "\"supportedDestinationConnectors\": [\"Nowhere\"]}}",
                        "connectors.S3: ", "supportedDestinationConnectors");
  expect_bad_connectors("{\"S3\": []}", "connectors.S3: ", NULL);
}

Test(catalog_load, a_bad_entry_leaves_the_ones_before_it) {
  char msg[1024];
  cr_expect_eq(load_connectors("{\"Salesforce\": {\"connectorType\": \"Salesforce\"}, "
                               "\"Zendesk\": {\"connectorType\": \"Slack\"}}",
                               msg, sizeof msg),
               -1);
  cr_expect(strstr(msg, "connectors.Zendesk") != NULL, "%s", msg);
  cr_expect_not_null(af_catalog_connector(cat, CT(SALESFORCE)));
  cr_expect_null(af_catalog_connector(cat, CT(ZENDESK)));
}

Test(catalog_load, bad_entities_documents_name_the_path) {
  expect_bad_entities("[]", "must be a JSON object keyed by connector type", NULL);
  expect_bad_entities("{", "line 1", NULL);
  expect_bad_entities("{\"Nope\": {\"Objects\": []}}",
                      "entities: 'Nope' is not an AppFlow connector type", NULL);
  expect_bad_entities("{\"Salesforce\": [\"Account\"]}",
                      "entities.Salesforce: entities must be an object of groups", NULL);
  expect_bad_entities("{\"Salesforce\": {\"Objects\": {\"name\": \"Account\"}}}",
                      "entities.Salesforce.Objects: a group must be an array of entities", NULL);
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [\"Account\"]}}",
                      "entities.Salesforce.Objects[0]: an entity must be an object", NULL);
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"A\"}, {\"label\": \"B\"}]}}",
                      "entities.Salesforce.Objects[1]: an entity needs a name", NULL);
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"\"}]}}",
                      "entities.Salesforce.Objects[0]: an entity needs a name", NULL);
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": 7}]}}",
                      "entities.Salesforce.Objects[0]: an entity needs a name", NULL);
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"A\", \"label\": 3}]}}",
                      "entities.Salesforce.Objects[0]: ", "label is a string");
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"A\", \"fields\": {}}]}}",
                      "entities.Salesforce.Objects[0]: ", "fields an array");
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"A\", \"colour\": \"red\"}]}}",
                      "entities.Salesforce.Objects[0]: unknown member 'colour'", NULL);
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"A\", \"hasNestedEntities\": "
                      "true}]}}",
                      "unknown member 'hasNestedEntities'", NULL);
}

Test(catalog_load, a_field_must_meet_the_model) {
  /* fieldType is required in FieldTypeDetails */
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"Account\", \"fields\": ["
                      "{\"identifier\": \"Id\", \"supportedFieldTypeDetails\": {\"v1\": "
                      "{\"fieldType\": \"id\", \"filterOperators\": []}}}, "
                      "{\"identifier\": \"Name\", \"supportedFieldTypeDetails\": {\"v1\": "
                      "{\"filterOperators\": [\"EQUAL_TO\"]}}}]}]}}",
                      "entities.Salesforce.Objects[0].fields[1]: 1 validation error detected: "
                      "Value null at 'supportedFieldTypeDetails.v1.fieldType'",
                      NULL);
  /* a string its pattern does not match */
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"Account\", \"fields\": ["
                      "{\"identifier\": \"has space\"}]}]}}",
                      "entities.Salesforce.Objects[0].fields[0]: 1 validation error detected: "
                      "Value 'has space' at 'identifier'",
                      NULL);
  /* a member ConnectorEntityField does not have, at the top and deeper */
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"Account\", \"fields\": ["
                      "{\"identifier\": \"Id\", \"colour\": \"red\"}]}]}}",
                      "entities.Salesforce.Objects[0].fields[0]: unknown member 'colour'", NULL);
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"Account\", \"fields\": ["
                      "{\"identifier\": \"Id\", \"supportedFieldTypeDetails\": {\"v1\": "
                      "{\"fieldType\": \"id\", \"filterOperators\": [], \"colour\": 1}}}]}]}}",
                      "entities.Salesforce.Objects[0].fields[0].supportedFieldTypeDetails.v1: "
                      "unknown member 'colour'",
                      NULL);
  /* an enum value the model does not have */
  expect_bad_entities("{\"Salesforce\": {\"Objects\": [{\"name\": \"Account\", \"fields\": ["
                      "{\"identifier\": \"Id\", \"supportedFieldTypeDetails\": {\"v1\": "
                      "{\"fieldType\": \"id\", \"filterOperators\": [\"ROUGHLY\"]}}}]}]}}",
                      "entities.Salesforce.Objects[0].fields[0]: ", "filterOperators");
  /* a field deep in a nested entity is named by its whole path */
  expect_bad_entities("{\"S3\": {\"Objects\": [{\"name\": \"bucket\", \"entities\": {\"Prefixes\": "
                      "[{\"name\": \"bucket/a\"}, {\"name\": \"bucket/b\", \"fields\": "
                      "[{\"label\": \"no identifier\", \"colour\": 1}]}]}}]}}",
                      "entities.S3.Objects[0].Prefixes[1].fields[0]: ", "'identifier'");
}

/* An entities document with entities nested depth levels under the top one. */
static char *nested_document(int depth) {
  size_t cap = 64 + (size_t)depth * 64;
  char *s = af_arena_alloc(&arena, cap);
  cr_assert_not_null(s);
  size_t o = (size_t)snprintf(s, cap, "{\"S3\": {\"Objects\": [{\"name\": \"e0\"");
  for (int i = 1; i <= depth; i++)
    o += (size_t)snprintf(s + o, cap - o, ", \"entities\": {\"G\": [{\"name\": \"e%d\"", i);
  for (int i = 1; i <= depth; i++)
    o += (size_t)snprintf(s + o, cap - o, "}]}");
  snprintf(s + o, cap - o, "}]}}");
  return s;
}

Test(catalog_load, nesting_is_bounded) {
  char msg[1024];
  cr_expect_eq(load_entities(nested_document(16), msg, sizeof msg), 0, "16 deep: %s", msg);
  expect_bad_entities(nested_document(17), "entities nest deeper than 16",
                      "entities.S3.Objects[0]");
  expect_bad_entities(nested_document(200), "entities nest deeper than 16", NULL);
}

Test(catalog_load, application_type_is_kept_apart_from_the_configuration) {
  char msg[1024];
  cr_assert_eq(load_connectors("{\"Salesforce\": {\"connectorType\": \"Salesforce\", "
                               "\"connectorName\": \"SF\", \"applicationType\": \"SFDC\"}, "
                               "\"Zendesk\": {\"connectorType\": \"Zendesk\"}}",
                               msg, sizeof msg),
               0, "%s", msg);
  cr_expect_str_eq(af_catalog_application_type(cat, CT(SALESFORCE)), "SFDC");
  cr_expect_str_eq(af_catalog_connector(cat, CT(SALESFORCE))->connector_name, "SF");
  cr_expect_null(af_catalog_application_type(cat, CT(ZENDESK)), "none given");
  /* the configuration is what DescribeConnector answers: no applicationType in its JSON */
  const char *json = message_json(&af_model_ConnectorConfiguration,
                                  af_catalog_connector(cat, CT(SALESFORCE)), &arena);
  cr_expect(strstr(json, "applicationType") == NULL, "%s", json);
  cr_expect(strstr(json, "SFDC") == NULL, "%s", json);
}

Test(catalog_load, what_is_loaded_outlives_the_callers_json) {
  static const char connectors[] =
      "{\"Zendesk\": {\"connectorType\": \"Zendesk\", \"connectorName\": \"Zendesk name\", "
      "\"applicationType\": \"ZendeskApp\"}}";
  static const char entities[] =
      "{\"Zendesk\": {\"Objects\": [{\"name\": \"tickets\", \"label\": \"Tickets\", \"fields\": "
      "[{\"identifier\": \"id\", \"label\": \"ID\"}]}]}}";
  char msg[1024];
  char *c = strdup(connectors), *e = strdup(entities);
  cr_assert(c != NULL && e != NULL);
  cr_assert_eq(af_catalog_load_connectors(cat, c, strlen(c), msg, sizeof msg), 0, "%s", msg);
  cr_assert_eq(af_catalog_load_entities(cat, e, strlen(e), msg, sizeof msg), 0, "%s", msg);
  memset(c, ' ', strlen(c));
  memset(e, ' ', strlen(e));
  free(c);
  free(e);
  cr_expect_str_eq(af_catalog_connector(cat, CT(ZENDESK))->connector_name, "Zendesk name");
  cr_expect_str_eq(af_catalog_application_type(cat, CT(ZENDESK)), "ZendeskApp");
  cr_expect_str_eq(read_names(CT(ZENDESK), NULL), "tickets");
  /* a profile's set from a JSON tree the caller frees */
  json_error_t je;
  json_t *groups = json_loads("{\"Objects\": [{\"name\": \"Own\", \"label\": \"Own label\", "
                              "\"fields\": [{\"identifier\": \"f1\"}]}]}",
                              0, &je);
  cr_assert_not_null(groups, "%s", je.text);
  cr_assert_eq(
      af_catalog_set_entities_json(cat, CT(ZENDESK), "zd", groups, "profiles[0]", msg, sizeof msg),
      0, "%s", msg);
  json_decref(groups);
  static seen s;
  af_catalog_read_entities(cat, CT(ZENDESK), "zd", collect, &s);
  cr_expect_str_eq(s.names, "Own");
}

/* What a reader finds of the first entity: its group, label and field identifiers. */
typedef struct first_entity {
  char group[32], label[32], fields[128];
  size_t nested;
} first_entity;

static void read_first(const Appflowd__Store__V1__EntitySet *set, void *ctx) {
  first_entity *f = ctx;
  cr_assert(set != NULL && set->n_entities > 0);
  const Appflowd__Store__V1__Entity *e = set->entities[0];
  snprintf(f->group, sizeof f->group, "%s", e->group);
  snprintf(f->label, sizeof f->label, "%s", e->label);
  f->fields[0] = '\0';
  for (size_t i = 0; i < e->n_fields; i++) {
    size_t o = strlen(f->fields);
    snprintf(f->fields + o, sizeof f->fields - o, "%s%s", i ? "," : "", e->fields[i]->identifier);
  }
  f->nested = e->n_entities;
}

Test(catalog_load, entities_keep_groups_labels_fields_and_nesting) {
  char msg[1024];
  cr_assert_eq(load_entities("{\"S3\": {\"Buckets\": [{\"name\": \"b\", \"label\": \"Bucket\", "
                             "\"fields\": [{\"identifier\": \"key\"}, {\"identifier\": \"size\"}], "
                             "\"entities\": {\"Prefixes\": [{\"name\": \"b/x\"}, "
                             "{\"name\": \"b/y\"}]}}]}}",
                             msg, sizeof msg),
               0, "%s", msg);
  first_entity f;
  af_catalog_read_entities(cat, CT(S3), NULL, read_first, &f);
  cr_expect_str_eq(f.group, "Buckets");
  cr_expect_str_eq(f.label, "Bucket");
  cr_expect_str_eq(f.fields, "key,size");
  cr_expect_eq(f.nested, 2);
  /* loading a type again replaces its default set */
  cr_assert_eq(load_entities("{\"S3\": {\"Objects\": [{\"name\": \"other\"}]}}", msg, sizeof msg),
               0, "%s", msg);
  cr_expect_str_eq(read_names(CT(S3), NULL), "other");
}
