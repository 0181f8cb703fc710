/* Shared by the fuzz targets: invariant checks that stop the run on the first violation, so
 * libFuzzer saves the input, and a UTF-8 check written apart from src/common/utf8.c, so a bug
 * there cannot hide the same bug in the code under test; the state every service starts with
 * (connector profiles, a custom connector, flows) and the built-in catalogs; and the check that
 * no answer shows a profile's credentials. */
#ifndef AF_FUZZ_H
#define AF_FUZZ_H

#include "bridge/catalog_load.h"
#include "flows/catalog.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() rather than assert(): NDEBUG must not switch the oracle off. */
#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);                 \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* Unicode table 3-7, byte by byte: no overlongs, no surrogates, nothing past U+10FFFF. */
static inline int fuzz_utf8_ok(const unsigned char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    size_t n = c < 0x80                 ? 1
               : c >= 0xC2 && c <= 0xDF ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (n == 0 || n > len - i)
      return 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
    for (size_t k = 1; k < n; k++) {
      unsigned char b = s[i + k];
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
        return 0;
    }
    i += n;
  }
  return 1;
}

/* ---- connector profiles, a custom connector and a flow that uses a profile ----
 *
 * What every target's service holds besides its flows, so the profile, registration and entity
 * operations meet existing state: sf_prof (Salesforce, with entities of its own), the custom
 * connector fuzz_crm and its profile crm_prof, and sf_flow, an on-demand flow reading from
 * sf_prof (so deleting sf_prof without forceDelete is refused). fuzz_http makes them with the
 * RPCs, fuzz_decode and fuzz_transcode load them as a seed file (FUZZ_SEED_FLOWS). */

/* The profiles' credentials: no answer may show them (fuzz_leaks). Each distinctive, so that
 * no request holds 8 bytes of one in a row by chance. */
static const char *const fuzz_secrets[] = {"fuzz-secret-token-4e1d", "sf-refresh-9b27-Qx",
                                           "crm-apikey-7c55-Lw", "crm-apisecret-d01f-Zk"};
#define FUZZ_NSECRETS (sizeof fuzz_secrets / sizeof fuzz_secrets[0])

/* CreateConnectorProfile's request for sf_prof, without its braces (the seed adds "entities"). */
#define FUZZ_SF_PROFILE_MEMBERS                                                                    \
  "\"connectorProfileName\": \"sf_prof\", \"connectorType\": \"Salesforce\","                      \
  " \"connectionMode\": \"Public\", \"connectorProfileConfig\": {"                                 \
  " \"connectorProfileProperties\": {\"Salesforce\":"                                              \
  " {\"instanceUrl\": \"https://fuzz.my.salesforce.com\"}},"                                       \
  " \"connectorProfileCredentials\": {\"Salesforce\":"                                             \
  " {\"accessToken\": \"fuzz-secret-token-4e1d\", \"refreshToken\": \"sf-refresh-9b27-Qx\"}}}"
#define FUZZ_SF_PROFILE "{" FUZZ_SF_PROFILE_MEMBERS "}"
/* What sf_prof's connector contains (data/entities.json's form): an entity with fields and one
 * with nested entities, in place of Salesforce's default. */
#define FUZZ_SF_ENTITIES                                                                           \
  "{\"Objects\": [{\"name\": \"Widget\", \"label\": \"Widget\", \"fields\": [{\"identifier\":"     \
  " \"Id\", \"label\": \"Id\", \"isPrimaryKey\": true, \"supportedFieldTypeDetails\": {\"v1\":"    \
  " {\"fieldType\": \"id\", \"filterOperators\": [\"PROJECTION\", \"EQUAL_TO\"]}}}]},"             \
  " {\"name\": \"Catalog\", \"label\": \"Catalog\", \"fields\": [], \"entities\": {\"Parts\":"     \
  " [{\"name\": \"Bolt\", \"label\": \"Bolt\", \"fields\": []}]}}]}"
#define FUZZ_CRM_CONNECTOR                                                                         \
  "{\"connectorLabel\": \"fuzz_crm\", \"description\": \"a fuzzed CRM\","                          \
  " \"connectorProvisioningType\": \"LAMBDA\", \"connectorProvisioningConfig\": {\"lambda\":"      \
  " {\"lambdaArn\": \"arn:aws:lambda:us-east-1:000000000000:function:fuzz-crm\"}}}"
#define FUZZ_CRM_PROFILE                                                                           \
  "{\"connectorProfileName\": \"crm_prof\", \"connectorType\": \"CustomConnector\","               \
  " \"connectorLabel\": \"fuzz_crm\", \"connectionMode\": \"Public\","                             \
  " \"connectorProfileConfig\": {\"connectorProfileProperties\": {\"CustomConnector\":"            \
  " {\"profileProperties\": {\"k\": \"v\"}}},"                                                     \
  " \"connectorProfileCredentials\": {\"CustomConnector\": {\"authenticationType\": \"APIKEY\","   \
  " \"apiKey\": {\"apiKey\": \"crm-apikey-7c55-Lw\","                                              \
  " \"apiSecretKey\": \"crm-apisecret-d01f-Zk\"}}}}}"
#define FUZZ_SF_FLOW                                                                               \
  "{\"flowName\": \"sf_flow\", \"triggerConfig\": {\"triggerType\": \"OnDemand\"},"                \
  " \"sourceFlowConfig\": {\"connectorType\": \"Salesforce\", \"connectorProfileName\":"           \
  " \"sf_prof\", \"sourceConnectorProperties\": {\"Salesforce\": {\"object\": \"Account\"}}},"     \
  " \"destinationFlowConfigList\": [{\"connectorType\": \"S3\","                                   \
  " \"destinationConnectorProperties\": {\"S3\": {\"bucketName\": \"dst-bucket\"}}}],"             \
  " \"tasks\": [{\"sourceFields\": [\"Id\"], \"taskType\": \"Filter\","                            \
  " \"connectorOperator\": {\"Salesforce\": \"PROJECTION\"}}]}"

/* Whether s[0..n) holds w[0..wn). A loop of our own rather than memmem: libFuzzer feeds the
 * needles of memmem and strstr back into its inputs, and would so learn the secrets. */
static inline int fuzz_holds(const void *s, size_t n, const char *w, size_t wn) {
  const unsigned char *p = s;
  for (size_t i = 0; wn <= n && i <= n - wn; i++) {
    size_t k = 0;
    while (k < wn && p[i + k] == (unsigned char)w[k])
      k++;
    if (k == wn)
      return 1;
  }
  return 0;
}

/* Whether out[0..out_len) (an answer: a body, a packed response, a message) shows a seeded
 * credential that the input in[0..in_len) did not itself spell out. A request that names one
 * (a profile called so: "Connector Profile with name ... does not exist") may get it quoted
 * back; it can name one, escaped or not, only by holding 8 of its bytes in a row (one escaped
 * all through is left to chance), so for an input holding none of a secret's 8-byte windows the
 * secret can only have come from the store. */
static inline int fuzz_leaks(const void *in, size_t in_len, const void *out, size_t out_len) {
  enum { WINDOW = 8 };
  for (size_t i = 0; i < FUZZ_NSECRETS; i++) {
    size_t n = strlen(fuzz_secrets[i]);
    int named = 0;
    for (size_t k = 0; !named && k + WINDOW <= n; k++)
      named = fuzz_holds(in, in_len, fuzz_secrets[i] + k, WINDOW);
    if (!named && fuzz_holds(out, out_len, fuzz_secrets[i], n)) {
      fprintf(stderr, "the answer shows the credential %s\n", fuzz_secrets[i]);
      return 1;
    }
  }
  return 0;
}

/* sf_prof's own entities, in the catalog (what the seed reader does with a profile's
 * "entities", and what the reloader does again). */
static inline void fuzz_set_sf_entities(af_catalog *cat) {
  char why[1024];
  json_t *groups = json_loads(FUZZ_SF_ENTITIES, 0, NULL);
  CHECK(groups != NULL);
  if (af_catalog_set_entities_json(cat, APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_SALESFORCE,
                                   "sf_prof", groups, "entities", why, sizeof why) != 0) {
    fprintf(stderr, "sf_prof's entities: %s\n", why);
    abort();
  }
  json_decref(groups);
}

/* ResetConnectorMetadataCache's reloader, as appflowd's with a seed file: every profile's own
 * entities read again, which gives the same ones. */
static inline int fuzz_reload(void *ctx, af_catalog *cat, char *msg, size_t msgsz) {
  (void)ctx, (void)msg, (void)msgsz;
  af_catalog_clear_profile_entities(cat);
  fuzz_set_sf_entities(cat);
  return 0;
}

/* The connector and entity catalogs compiled in from data/, as appflowd serves them. Loaded
 * once per process (10 ms under the sanitizers, several times the rest of an input's run) and
 * shared by every input's fresh service. Runs stay independent: requests only read it (the
 * reloader restores the state it had, sf_prof's entities and no other profile's), and a target
 * whose inputs set profile entities (a seed file's) calls af_catalog_clear_profile_entities and
 * fuzz_set_sf_entities after each. */
static inline af_catalog *fuzz_catalog(void) {
  static af_catalog *cat;
  if (cat != NULL)
    return cat;
  char why[1024];
  cat = af_catalog_new();
  CHECK(cat != NULL);
  if (af_catalog_load_builtin(cat, why, sizeof why) != 0) {
    fprintf(stderr, "the built-in catalog: %s\n", why);
    abort();
  }
  fuzz_set_sf_entities(cat);
  af_catalog_set_reloader(cat, fuzz_reload, NULL);
  return cat;
}

/* ---- flows ----
 *
 * A flow in every state and trigger the rules tell apart, as a seed file (fuzz_decode and
 * fuzz_transcode load it; names and ARNs in their corpora refer to these). */
/* S3 to S3 with a projection: what every seeded flow moves (a seed entry is a whole CreateFlow
 * request), then one flow in each state a test needs. */
#define FUZZ_S3_FLOW                                                                               \
  "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\":"               \
  " {\"S3\": {\"bucketName\": \"src-bucket\"}}},"                                                  \
  " \"destinationFlowConfigList\": [{\"connectorType\": \"S3\", "                                  \
  "\"destinationConnectorProperties\":"                                                            \
  " {\"S3\": {\"bucketName\": \"dst-bucket\"}}}],"                                                 \
  " \"tasks\": [{\"sourceFields\": [\"id\"], \"taskType\": \"Filter\","                            \
  " \"connectorOperator\": {\"S3\": \"PROJECTION\"}}]"
#define FUZZ_SCHEDULED                                                                             \
  "\"triggerConfig\": {\"triggerType\": \"Scheduled\", \"triggerProperties\":"                     \
  " {\"Scheduled\": {\"scheduleExpression\": \"rate(1days)\"}}}, " FUZZ_S3_FLOW
#define FUZZ_EVENT "\"triggerConfig\": {\"triggerType\": \"Event\"}, " FUZZ_S3_FLOW
#define FUZZ_SEED_FLOWS                                                                            \
  "[{" FUZZ_SF_PROFILE_MEMBERS ", \"entities\": " FUZZ_SF_ENTITIES "},"                            \
  " " FUZZ_CRM_CONNECTOR ", " FUZZ_CRM_PROFILE ", " FUZZ_SF_FLOW ","                               \
  " {\"flowName\": \"sched_active\", \"flowStatus\": \"Active\", " FUZZ_SCHEDULED ","              \
  " \"description\": \"daily\", \"tags\": {\"team\": \"data\", \"env\": \"test\"}},"               \
  " {\"flowName\": \"sched_suspended\", \"flowStatus\": \"Suspended\", " FUZZ_SCHEDULED "},"       \
  " {\"flowName\": \"sched_draft\", \"flowStatus\": \"Draft\", " FUZZ_SCHEDULED "},"               \
  " {\"flowName\": \"event_errored\", \"flowStatus\": \"Errored\", " FUZZ_EVENT "},"               \
  " {\"flowName\": \"event_deprecated\", \"flowStatus\": \"Deprecated\", " FUZZ_EVENT "},"         \
  " {\"flowName\": \"ondemand\", \"flowStatus\": \"Active\","                                      \
  " \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, " FUZZ_S3_FLOW ","                         \
  " \"tags\": {\"env\": \"test\"}}]"

static inline int fuzz_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* names[0..seen) (malloc'd, freed here with the array) must be total names, none twice. */
static inline void fuzz_check_each_once(char **names, size_t seen, size_t total) {
  CHECK(seen == total);
  qsort(names, seen, sizeof *names, fuzz_cmp_str);
  for (size_t i = 1; i < seen; i++)
    CHECK(strcmp(names[i - 1], names[i]) != 0);
  for (size_t i = 0; i < seen; i++)
    free(names[i]);
  free(names);
}

#endif
