/* The seed-file loader (src/flows/seed.h): a hand-written streaming JSON reader, the kind of
 * parser that overreads. Input: the whole file, into a fresh service each run (the loader
 * fills a table, and a table carried over would turn every name into a duplicate).
 *
 * Oracle: success loads exactly *count flows, and ListFlows, paged 7 at a time, then lists each
 * of them exactly once (so what the loader stored is what the service serves, and a page
 * boundary falls inside any table of more than 7); failure points at a line and column inside
 * the input (line 0 is only for I/O errors, which a buffer cannot have) with a
 * NUL-terminated, non-empty message. err starts as garbage so a field left unset shows. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  af_error e;
  af_flows *svc = af_flows_new(&(af_flows_config){0}, &e);
  CHECK(svc != NULL);
  af_seed_error err;
  memset(&err, 0xAA, sizeof err);
  af_seed_result res;
  memset(&res, 0xAA, sizeof res);
  int rc = af_seed_load_buffer(svc, (const char *)data, size, &res, &err);
  size_t loaded = af_flows_count(svc);
  if (rc == 0) {
    CHECK(res.flows == loaded && res.added == loaded && res.kept == 0);
    check_listing(svc, loaded);
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
  return 0;
}
