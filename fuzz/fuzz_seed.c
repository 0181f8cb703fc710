/* The seed-file loader (src/flows/seed.h): a hand-written streaming JSON reader, the kind of
 * parser that overreads. Input: the whole file, into a fresh service each run (the loader
 * fills a table, and a table carried over would turn every name into a duplicate), with the
 * built-in catalogs as appflowd has them (so flows are checked against the connector pairs);
 * the profile entities a seed sets in the shared catalog are removed after each run.
 *
 * Oracle: success loads exactly *count flows, and ListFlows, paged 7 at a time, then lists each
 * of them exactly once (so what the loader stored is what the service serves, and a page
 * boundary falls inside any table of more than 7); likewise the connector profiles added
 * (DescribeConnectorProfiles, 7 at a time) and the custom connectors added (the
 * CustomConnector entries of ListConnectors); failure points at a line and column inside the
 * input (line 0 is only for I/O errors, which a buffer cannot have) with a NUL-terminated,
 * non-empty message. err starts as garbage so a field left unset shows. */
#include "fuzz.h"

#include "bridge/seed.h"

#include <string.h>

#define PAGE 7

/* One page into names[*seen..]; returns the next token (malloc'd, "" at the end). */
static char *list_page(af_flows *svc, const char *token, char **names, size_t *seen, size_t total) {
  static af_arena a;
  af_arena_init(&a);
  Appflow__V1__ListFlowsRequest req = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  req.max_results = PAGE;
  req.has_max_results = true;
  req.next_token = token[0] != '\0' ? (char *)token : NULL;
  Appflow__V1__ListFlowsResponse resp;
  af_error err;
  CHECK(af_flows_list_flows(svc, &req, &resp, &a, &err) == AF_OK);
  const char *token_out = resp.next_token != NULL ? resp.next_token : "";
  CHECK(resp.n_flows <= PAGE && *seen + resp.n_flows <= total);
  CHECK(token_out[0] == '\0' || resp.n_flows > 0); /* else paging never ends */
  for (size_t i = 0; i < resp.n_flows; i++)
    CHECK((names[(*seen)++] = strdup(resp.flows[i]->flow_name)) != NULL);
  char *next = strdup(token_out);
  CHECK(next != NULL);
  af_arena_destroy(&a);
  return next;
}

static void check_listing(af_flows *svc, size_t total) {
  char **names = calloc(total + 1, sizeof *names), *token = strdup("");
  size_t seen = 0;
  CHECK(names != NULL && token != NULL);
  do {
    char *next = list_page(svc, token, names, &seen, total);
    free(token);
    token = next;
  } while (token[0] != '\0');
  free(token);
  fuzz_check_each_once(names, seen, total);
}

/* One page of an RPC whose request has maxResults and nextToken, as the door runs it. */
static ProtobufCMessage *call_page(af_flows *svc, const char *op, const char *token, af_arena *a) {
  const af_rpc *rpc = af_flows_rpc_named(svc, op);
  CHECK(rpc != NULL);
  ProtobufCMessage *req = af_arena_alloc(a, rpc->input->sizeof_message);
  ProtobufCMessage *resp = af_arena_alloc(a, rpc->output->sizeof_message);
  CHECK(req != NULL && resp != NULL);
  protobuf_c_message_init(rpc->input, req);
  protobuf_c_message_init(rpc->output, resp);
  if (rpc->input == &appflow__v1__describe_connector_profiles_request__descriptor) {
    Appflow__V1__DescribeConnectorProfilesRequest *q = (void *)req;
    q->max_results = PAGE;
    q->has_max_results = true;
    q->next_token = token[0] != '\0' ? (char *)token : NULL;
  } else {
    Appflow__V1__ListConnectorsRequest *q = (void *)req;
    q->max_results = PAGE;
    q->has_max_results = true;
    q->next_token = token[0] != '\0' ? (char *)token : NULL;
  }
  af_error err;
  af_err rc = af_flows_call_sync(svc, rpc, req, resp, a, &err);
  if (rc != AF_OK)
    fprintf(stderr, "fuzz_seed: %s: %s\n", op, err.message);
  CHECK(rc == AF_OK);
  return resp;
}

/* The profiles (DescribeConnectorProfiles) and custom connectors (ListConnectors) stored: each
 * once, as many as the load added. */
static void check_connector_listing(af_flows *svc, size_t profiles, size_t connectors) {
  for (int pass = 0; pass < 2; pass++) {
    size_t total = pass == 0 ? profiles : connectors, seen = 0;
    char **names = calloc(total + 1, sizeof *names), *token = strdup("");
    CHECK(names != NULL && token != NULL);
    do {
      static af_arena a;
      af_arena_init(&a);
      size_t n;
      const char *next;
      if (pass == 0) {
        Appflow__V1__DescribeConnectorProfilesResponse *r =
            (void *)call_page(svc, "DescribeConnectorProfiles", token, &a);
        n = r->n_connector_profile_details;
        CHECK(n <= PAGE && seen + n <= total);
        for (size_t i = 0; i < n; i++)
          CHECK((names[seen++] = strdup(r->connector_profile_details[i]->connector_profile_name)) !=
                NULL);
        next = r->next_token;
      } else {
        Appflow__V1__ListConnectorsResponse *r =
            (void *)call_page(svc, "ListConnectors", token, &a);
        n = r->n_connectors;
        CHECK(n <= PAGE);
        for (size_t i = 0; i < n; i++) {
          if (r->connectors[i]->connector_type !=
              APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_CUSTOM_CONNECTOR)
            continue;
          CHECK(seen < total && r->connectors[i]->connector_label != NULL);
          CHECK((names[seen++] = strdup(r->connectors[i]->connector_label)) != NULL);
        }
        next = r->next_token;
      }
      CHECK(next == NULL || next[0] == '\0' || n > 0); /* else paging never ends */
      free(token);
      token = strdup(next != NULL ? next : "");
      CHECK(token != NULL);
      af_arena_destroy(&a);
    } while (token[0] != '\0');
    free(token);
    fuzz_check_each_once(names, seen, total);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  af_error e;
  af_flows *svc = af_flows_new(&(af_flows_config){.catalog = fuzz_catalog()}, &e);
  CHECK(svc != NULL);
  af_seed_error err;
  memset(&err, 0xAA, sizeof err);
  af_seed_result res;
  memset(&res, 0xAA, sizeof res);
  int rc = af_seed_load_buffer(svc, (const char *)data, size, &res, &err);
  size_t loaded = af_flows_count(svc);
  if (rc == 0) {
    CHECK(res.flows == loaded && res.added == loaded && res.kept == 0);
    CHECK(res.profiles_added <= res.profiles && res.connectors_added <= res.connectors);
    check_listing(svc, loaded);
    check_connector_listing(svc, res.profiles_added, res.connectors_added);
  } else {
    CHECK(rc == -1);
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
      lines += data[i] == '\n';
    CHECK(err.line >= 1 && (size_t)err.line <= lines);
    CHECK(err.column >= 1 && (size_t)err.column <= size + 1);
    CHECK(memchr(err.message, 0, sizeof err.message) != NULL && err.message[0] != '\0');
  }
  af_flows_free(svc);
  /* the catalog as it was before this input's profiles set their entities */
  af_catalog_clear_profile_entities(fuzz_catalog());
  fuzz_set_sf_entities(fuzz_catalog());
  return 0;
}
