/* src/flows/list.c: ListFlows paging and its nextToken (every flow once however the store
 * changes between pages, tokens checked, shared by services on one store), the FlowDefinition
 * it lists, and TagResource, UntagResource and ListTagsForResource - on the store AF_TEST_STORE
 * names (store_under_test.h). */
#include "common/latch.h"
#include "flows/internal.h"
#include "flows/service.h"

#include "request_json.h"
#include "store_under_test.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T(x) APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_##x
#define S(x) APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_##x

#define T0 1700000000123LL
#define ROOT "arn:aws:iam::000000000000:root"
/* Room for any token: a 256-byte name and its 16-byte seal in base64 take 363 characters. */
#define TOKEN_MAX 512

static af_flows *svc;
static af_store *store;

/* A service of its own on a store of its own; *st gets the store. */
static af_flows *new_service(af_store **st) {
  return test_service_new(&(af_flows_config){.clock = &(af_clock){fake_clock, NULL}}, st);
}

static void setup(void) {
  fake_now = T0;
  svc = new_service(&store);
  test_salesforce_profile(svc, "sf");
  test_profile(svc, "zd", "Zendesk", "{\"instanceUrl\": \"https://example.zendesk.com\"}",
               "{\"clientId\": \"id\", \"clientSecret\": \"secret\"}");
  test_profile(svc, "snow", "Snowflake",
               "{\"warehouse\": \"WH\", \"stage\": \"db.schema.stage\", \"bucketName\": "
               "\"stage-bucket\"}",
               "{\"username\": \"user\", \"password\": \"secret\"}");
}

static void teardown(void) { test_service_free(svc, store); }

TestSuite(list, .init = setup, .fini = teardown);
TestSuite(tags, .init = setup, .fini = teardown);

static void add_to(af_flows *s, const char *name) {
  test_seed_flow(s, name, T(SCHEDULED), S(ACTIVE));
}

/* Adds the flow named letter followed by i in four digits, e.g. f0042. */
static void add(char letter, int i) {
  char name[32];
  snprintf(name, sizeof name, "%c%04d", letter, i);
  add_to(svc, name);
}

static af_err delete_flow(const char *name, af_error *err) {
  return test_delete_flow(svc, name, true, err);
}

static void remove_flow(const char *name) {
  af_error err;
  cr_assert_eq(delete_flow(name, &err), AF_OK, "%s", err.message);
}

/* ---- one ListFlows page, copied out of its arena ---- */

struct page {
  af_err rc;
  af_error err;
  size_t n;
  char names[100][AF_FLOW_NAME_MAX + 1];
  char token[TOKEN_MAX]; /* "" when the response had none */
};

/* One page; maxResults is absent unless has_max, nextToken when token is NULL. */
static void list_page_max(af_flows *s, bool has_max, int32_t max, const char *token,
                          struct page *p) {
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__ListFlowsRequest req = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  req.has_max_results = has_max;
  req.max_results = max;
  req.next_token = (char *)token;
  Appflow__V1__ListFlowsResponse resp = APPFLOW__V1__LIST_FLOWS_RESPONSE__INIT;
  p->rc = af_flows_list_flows(s, &req, &resp, &arena, &p->err);
  p->n = resp.n_flows;
  for (size_t i = 0; i < resp.n_flows && i < 100; i++)
    snprintf(p->names[i], sizeof p->names[i], "%s", resp.flows[i]->flow_name);
  snprintf(p->token, sizeof p->token, "%s", resp.next_token ? resp.next_token : "");
  af_arena_destroy(&arena);
}

/* One page with maxResults max (0: absent, the default of 100). */
static void list_page(af_flows *s, int32_t max, const char *token, struct page *p) {
  list_page_max(s, max != 0, max, token, p);
}

/* The number in a name "<letter>NNNN", or -1 for other names. */
static int index_of(const char *name, char letter) {
  int i;
  char end;
  return name[0] == letter && sscanf(name + 1, "%d%c", &i, &end) == 1 ? i : -1;
}

/* More pages than any test's flows fill: a scan that stops advancing fails, not hangs. */
#define MAX_PAGES 5000

static long others_seen; /* names walk saw that it does not count */

/* Lists every page with maxResults max from token (NULL: the start), counting the names
 * "fNNNN" in seen[]. Checks each page is full exactly when a token follows it. Returns the
 * number of pages. */
static int walk(int32_t max, const char *token, int *seen, int nseen) {
  static struct page p;
  size_t full = max ? (size_t)max : 100;
  char next[TOKEN_MAX];
  snprintf(next, sizeof next, "%s", token ? token : "");
  int pages = 0;
  do {
    list_page(svc, max, next[0] != '\0' ? next : NULL, &p);
    cr_assert_eq(p.rc, AF_OK, "page %d: %s", pages, p.err.message);
    pages++;
    for (size_t i = 0; i < p.n; i++) {
      int k = index_of(p.names[i], 'f');
      if (k >= 0 && k < nseen)
        seen[k]++;
      else
        others_seen++;
    }
    if (p.token[0] != '\0')
      cr_assert_eq(p.n, full, "a page with a token must be full (page %d)", pages);
    else
      cr_assert_leq(p.n, full);
    snprintf(next, sizeof next, "%s", p.token);
    cr_assert_lt(pages, MAX_PAGES, "paging does not end");
  } while (next[0] != '\0');
  return pages;
}

/* ---- paging ---- */

/* Page tokens are sealed with the key's padded blocks hashed once: the same MAC as OpenSSL's
 * one-shot HMAC-SHA256, so tokens issued before still verify, for messages of every length
 * around SHA-256's block and for keys of every length up to it. */
Test(list, token_mac_is_hmac_sha256) {
  uint8_t key[64], msg[300];
  for (size_t i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(i * 7 + 1);
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)(i * 13 + 5);
  static const size_t key_lens[] = {0, 1, 32, 63, 64};
  for (size_t k = 0; k < sizeof key_lens / sizeof key_lens[0]; k++) {
    af_token_mac *m = af__token_mac_new(key, key_lens[k]);
    cr_assert_not_null(m);
    for (size_t n = 0; n <= sizeof msg; n += n < 130 ? 1 : 17) {
      uint8_t got[AF_SHA256_LEN], want[EVP_MAX_MD_SIZE];
      unsigned want_len = 0;
      cr_assert(af__token_mac(m, msg, n, got));
      cr_assert_not_null(HMAC(EVP_sha256(), key, (int)key_lens[k], msg, n, want, &want_len));
      cr_assert_eq(want_len, AF_SHA256_LEN);
      cr_expect_eq(memcmp(got, want, AF_SHA256_LEN), 0, "key %zu bytes, message %zu bytes",
                   key_lens[k], n);
    }
    af__token_mac_free(m);
  }
  cr_expect_null(af__token_mac_new(key, 65), "a key longer than a block is not taken");
  af__token_mac_free(NULL);
}

Test(list, empty_table) {
  struct page p;
  list_page(svc, 0, NULL, &p);
  cr_expect_eq(p.rc, AF_OK);
  cr_expect_eq(p.n, 0);
  cr_expect_str_empty(p.token);
}

Test(list, every_flow_once_at_every_page_size) {
  enum { N = 250 };
  for (int i = 0; i < N; i++)
    add('f', i);
  const int32_t sizes[] = {1, 7, 50, 100, 0};
  const int want_pages[] = {250, 36, 5, 3, 3};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    int seen[N] = {0};
    int pages = walk(sizes[s], NULL, seen, N);
    cr_expect_eq(pages, want_pages[s], "maxResults %d: %d pages", sizes[s], pages);
    for (int i = 0; i < N; i++)
      cr_expect_eq(seen[i], 1, "maxResults %d: f%04d seen %d times", sizes[s], i, seen[i]);
  }
}

Test(list, exactly_one_full_page_has_no_token) {
  for (int i = 0; i < 100; i++)
    add('f', i);
  struct page p;
  list_page(svc, 0, NULL, &p);
  cr_expect_eq(p.n, 100);
  cr_expect_str_empty(p.token, "no more flows follow");
  add('f', 100);
  list_page(svc, 100, NULL, &p);
  cr_expect_eq(p.n, 100);
  cr_expect_str_not_empty(p.token);
  list_page(svc, 100, p.token, &p);
  cr_expect_eq(p.n, 1);
  cr_expect_str_empty(p.token);
}

Test(list, the_order_is_fixed) {
  for (int i = 0; i < 40; i++)
    add('f', i);
  static struct page a, b;
  list_page(svc, 0, NULL, &a);
  list_page(svc, 0, NULL, &b);
  cr_assert_eq(a.n, 40);
  cr_assert_eq(b.n, 40);
  for (size_t i = 0; i < 40; i++)
    cr_expect_str_eq(a.names[i], b.names[i]);
}

/* ListFlows with maxResults max (always present) and nextToken token is refused with a
 * message containing fragment. */
static void expect_refused(int32_t max, const char *token, const char *fragment) {
  static struct page p;
  list_page_max(svc, true, max, token, &p);
  cr_expect_eq(p.rc, AF_ERR_VALIDATION, "maxResults %d, nextToken '%s' accepted", max,
               token ? token : "");
  cr_expect(strstr(p.err.message, fragment) != NULL, "'%s' lacks '%s'", p.err.message, fragment);
  cr_expect_eq(p.n, 0);
}

Test(list, max_results_range) {
  add('f', 1);
  expect_refused(-1, NULL, "'maxResults'");
  expect_refused(101, NULL, "'maxResults'");
  expect_refused(-2147483647 - 1, NULL, "'maxResults'");
  expect_refused(0, NULL,
                 "1 validation error detected: Value '0' at 'maxResults' failed to satisfy "
                 "constraint: Member must have value greater than or equal to 1");
  expect_refused(101, NULL,
                 "1 validation error detected: Value '101' at 'maxResults' failed to satisfy "
                 "constraint: Member must have value less than or equal to 100");
  struct page p;
  list_page(svc, 1, NULL, &p);
  cr_expect_eq(p.rc, AF_OK);
  list_page(svc, 100, NULL, &p);
  cr_expect_eq(p.rc, AF_OK);
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding, as the service's tokens are written. */
static void encode(const uint8_t *src, size_t n, char *out) {
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0) |
                 (i + 2 < n ? src[i + 2] : 0);
    size_t chars = n - i >= 3 ? 4 : n - i + 1;
    for (size_t k = 0; k < chars; k++)
      *out++ = b64url[(v >> (18 - 6 * k)) & 63];
  }
  *out = '\0';
}

static int b64_value(char c) { return (int)(strchr(b64url, c) - b64url); }

/* A real token: the one after the first flow. */
static void first_token(af_flows *s, char *token, size_t size) {
  static struct page p;
  list_page(s, 1, NULL, &p);
  cr_assert_eq(p.rc, AF_OK);
  cr_assert_str_not_empty(p.token);
  snprintf(token, size, "%s", p.token);
}

Test(list, garbage_tokens) {
  for (int i = 0; i < 5; i++)
    add('f', i);
  const char *bad[] = {"!!!!", "A", "AAAA", "abc", "eyJuYW1lIjoiZjAwMDEifQ==", "f0001", "%%%%"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    expect_refused(2, bad[i], "nextToken");
  expect_refused(2, "abc def", "'nextToken'");
  expect_refused(2, "",
                 "1 validation error detected: Value '' at 'nextToken' failed to satisfy "
                 "constraint: Member must satisfy regular expression pattern: \\S+");
  static char long_token[3000];
  memset(long_token, 'A', 2049);
  expect_refused(2, long_token, "'nextToken'");
  long_token[400] = '\0'; /* decodes to more than a name and its check */
  expect_refused(2, long_token, "nextToken");
}

Test(list, a_token_of_the_right_shape_with_a_wrong_check) {
  for (int i = 0; i < 5; i++)
    add('f', i);
  uint8_t raw[5 + 8] = {'f', '0', '0', '0', '1'};
  char token[64];
  for (int fill = 0; fill < 256; fill += 85) {
    memset(raw + 5, fill, 8);
    encode(raw, sizeof raw, token);
    expect_refused(2, token, "nextToken");
  }
  /* The right length for the check alone, with no name before it. */
  memset(raw, 0, 8);
  encode(raw, 8, token);
  expect_refused(2, token, "nextToken");
}

Test(list, a_changed_character_spoils_a_token) {
  for (int i = 0; i < 5; i++)
    add('f', i);
  char token[TOKEN_MAX], changed[TOKEN_MAX + 1];
  first_token(svc, token, sizeof token);
  for (size_t i = 0; token[i] != '\0'; i++) {
    snprintf(changed, sizeof changed, "%s", token);
    changed[i] = b64url[b64_value(token[i]) ^ 32]; /* a bit every decoding keeps */
    expect_refused(2, changed, "nextToken");
  }
  snprintf(changed, sizeof changed, "%sA", token);
  expect_refused(2, changed, "nextToken");
  snprintf(changed, sizeof changed, "%s", token);
  changed[strlen(changed) - 1] = '\0';
  expect_refused(2, changed, "nextToken");
}

/* base64 leaves 2 or 4 bits of the last character unused; a token whose last character was
 * changed only there is still a changed token, and one only a client could have made. */
Test(list, a_token_with_changed_spare_bits_is_refused) {
  for (int i = 0; i < 5; i++) {
    char name[16];
    snprintf(name, sizeof name, "f%05d", i);
    add_to(svc, name);
  }
  char token[TOKEN_MAX], changed[TOKEN_MAX];
  first_token(svc, token, sizeof token);
  size_t n = strlen(token);
  cr_assert_eq(n, 30, "6 name bytes and 16 seal bytes: 4 spare bits in the last character");
  int accepted = 0;
  static struct page p;
  for (int bits = 1; bits < 64; bits++) {
    snprintf(changed, sizeof changed, "%s", token);
    changed[n - 1] = b64url[b64_value(token[n - 1]) ^ bits];
    list_page(svc, 2, changed, &p);
    accepted += p.rc != AF_ERR_VALIDATION;
  }
  cr_expect_eq(accepted, 0, "%d of 63 changes to the last character of %s accepted", accepted,
               token);
}

Test(list, a_token_from_another_store_is_refused) {
  af_store *other_store;
  af_flows *other = new_service(&other_store);
  for (int i = 0; i < 5; i++) {
    add('f', i);
    char name[16];
    snprintf(name, sizeof name, "f%04d", i);
    add_to(other, name);
  }
  char token[TOKEN_MAX];
  first_token(other, token, sizeof token);
  expect_refused(2, token, "nextToken");
  struct page p;
  list_page(other, 2, token, &p);
  cr_expect_eq(p.rc, AF_OK, "%s", p.err.message);
  test_service_free(other, other_store);
}

/* af__page_token copies the last listed name into a buffer of its own before sealing it: a name
 * over AF_FLOW_NAME_MAX bytes, however long, is refused (NULL), never copied past the buffer;
 * the longest name makes a token that reads back whole. */
Test(list, a_page_token_refuses_a_name_over_the_longest) {
  static char name[65535];
  memset(name, 'n', sizeof name);
  const char *domain = "appflowd unit test v1";
  af_arena a;
  af_arena_init(&a);
  af_call c = {.svc = svc, .tenant = &svc->home};
  cr_expect_null(af__page_token(&c, domain, name, sizeof name, &a), "a 65,535-byte name");
  cr_expect_null(af__page_token(&c, domain, name, AF_FLOW_NAME_MAX + 1, &a), "one byte over");
  char *token = af__page_token(&c, domain, name, AF_FLOW_NAME_MAX, &a);
  cr_assert_not_null(token, "the longest name");
  char back[AF_FLOW_NAME_MAX + 1];
  size_t len = 0;
  af_error err;
  cr_expect_eq(af__page_token_read(&c, domain, "Test", token, back, &len, &err), AF_OK, "%s",
               err.message);
  cr_expect_eq(len, AF_FLOW_NAME_MAX);
  cr_expect(memcmp(back, name, AF_FLOW_NAME_MAX) == 0 && back[len] == '\0');
  af_arena_destroy(&a);
}

/* A token is sealed for the account and region of the call that made it: another account's, or
 * another region's, call refuses it. */
Test(list, a_page_token_is_refused_in_another_account_or_region) {
  af_arena a;
  af_arena_init(&a);
  af_tenant other_account, other_region;
  af_error err;
  cr_assert_eq(af__tenant(svc, "111111111111", NULL, &other_account, &err), AF_OK);
  cr_assert_eq(af__tenant(svc, NULL, "eu-west-1", &other_region, &err), AF_OK);
  af_call home = {.svc = svc, .tenant = &svc->home};
  af_call acct = {.svc = svc, .tenant = &other_account};
  af_call region = {.svc = svc, .tenant = &other_region};
  char *token = af__page_token(&home, "appflowd unit test v1", "flow", 4, &a);
  cr_assert_not_null(token);
  char back[AF_FLOW_NAME_MAX + 1];
  size_t len = 0;
  cr_expect_eq(af__page_token_read(&home, "appflowd unit test v1", "T", token, back, &len, &err),
               AF_OK);
  cr_expect_eq(af__page_token_read(&acct, "appflowd unit test v1", "T", token, back, &len, &err),
               AF_ERR_VALIDATION);
  cr_expect_eq(af__page_token_read(&region, "appflowd unit test v1", "T", token, back, &len, &err),
               AF_ERR_VALIDATION);
  af_arena_destroy(&a);
}

/* Replicas: two services on one store page through it together, each taking the other's
 * tokens. */
Test(list, services_on_one_store_share_tokens) {
  af_error err;
  af_flows *replica = af_flows_new(
      &(af_flows_config){.store = store, .clock = &(af_clock){fake_clock, NULL}}, &err);
  cr_assert_not_null(replica);
  for (int i = 0; i < 9; i++)
    add('f', i);
  int seen[9] = {0};
  char token[TOKEN_MAX] = "";
  for (int page = 0; page < 5; page++) {
    struct page p;
    list_page(page % 2 ? replica : svc, 2, page ? token : NULL, &p);
    cr_assert_eq(p.rc, AF_OK, "page %d: %s", page, p.err.message);
    for (size_t i = 0; i < p.n; i++)
      seen[atoi(p.names[i] + 1)]++;
    snprintf(token, sizeof token, "%s", p.token);
  }
  cr_expect_str_empty(token, "9 flows in pages of 2 end on the fifth");
  for (int i = 0; i < 9; i++)
    cr_expect_eq(seen[i], 1, "f%04d seen %d times", i, seen[i]);
  af_flows_free(replica);
}

Test(list, a_token_outlives_its_last_flow) {
  enum { N = 250 };
  for (int i = 0; i < N; i++)
    add('f', i);
  static struct page first;
  list_page(svc, 10, NULL, &first);
  cr_assert_eq(first.n, 10);
  int seen[N] = {0}, gone[N] = {0};
  for (size_t i = 0; i < first.n; i++) {
    seen[index_of(first.names[i], 'f')]++;
    gone[index_of(first.names[i], 'f')] = 1;
    remove_flow(first.names[i]); /* the token's own flow among them */
  }
  /* Also some not yet listed: they did not exist throughout, so they need not appear. */
  for (int i = 0; i < N; i += 17) {
    char name[16];
    snprintf(name, sizeof name, "f%04d", i);
    if (!gone[i]) {
      remove_flow(name);
      gone[i] = 2;
    }
  }
  walk(10, first.token, seen, N);
  for (int i = 0; i < N; i++) {
    if (gone[i] == 2)
      cr_expect_eq(seen[i], 0, "deleted f%04d listed", i);
    else
      cr_expect_eq(seen[i], 1, "f%04d seen %d times", i, seen[i]);
  }
}

Test(list, a_token_survives_the_table_growing) {
  enum { N = 250, MORE = 1000 };
  for (int i = 0; i < N; i++)
    add('f', i);
  int seen[N] = {0};
  static struct page p;
  list_page(svc, 7, NULL, &p);
  for (size_t i = 0; i < p.n; i++)
    seen[index_of(p.names[i], 'f')]++;
  for (int i = 0; i < MORE; i++)
    add('g', i);
  /* Count the new flows on the way: none twice. */
  static int seen_new[MORE];
  memset(seen_new, 0, sizeof seen_new);
  char token[TOKEN_MAX];
  snprintf(token, sizeof token, "%s", p.token);
  int pages = 0;
  while (token[0] != '\0') {
    list_page(svc, 7, token, &p);
    cr_assert_eq(p.rc, AF_OK, "%s", p.err.message);
    for (size_t i = 0; i < p.n; i++) {
      int f = index_of(p.names[i], 'f'), g = index_of(p.names[i], 'g');
      if (f >= 0)
        seen[f]++;
      if (g >= 0)
        seen_new[g]++;
    }
    snprintf(token, sizeof token, "%s", p.token);
    cr_assert_lt(++pages, MAX_PAGES, "paging does not end");
  }
  for (int i = 0; i < N; i++)
    cr_expect_eq(seen[i], 1, "f%04d seen %d times", i, seen[i]);
  for (int i = 0; i < MORE; i++)
    cr_expect_leq(seen_new[i], 1, "g%04d seen %d times", i, seen_new[i]);
}

/* ---- paging while other threads insert and delete ---- */

#define STABLE 300
#define CHURN_THREADS 2
#define CHURN_NAMES 200

static atomic_bool stop_churn;

struct churner {
  int id;
  _Atomic long rounds;
  long failures;
};

static void *churn(void *arg) {
  struct churner *c = arg;
  af_error err;
  while (!atomic_load(&stop_churn)) {
    for (int pass = 0; pass < 2; pass++) {
      for (int i = 0; i < CHURN_NAMES; i++) {
        char name[32];
        int len = snprintf(name, sizeof name, "t%d_%04d", c->id, i);
        af_flow_spec spec = {name, (size_t)len, T(EVENT), S(DRAFT), NULL, NULL, 0};
        bool added = false;
        af_err rc =
            pass == 0 ? af_flows_seed_one(svc, &spec, &added, &err) : delete_flow(name, &err);
        c->failures += rc != AF_OK || (pass == 0 && !added);
      }
    }
    atomic_fetch_add(&c->rounds, 1);
  }
  return NULL;
}

Test(list, paging_while_others_insert_and_delete) {
  for (int i = 0; i < STABLE; i++)
    add('f', i);
  atomic_store(&stop_churn, false);
  struct churner c[CHURN_THREADS];
  pthread_t th[CHURN_THREADS];
  for (int t = 0; t < CHURN_THREADS; t++) {
    c[t].id = t;
    atomic_init(&c[t].rounds, 0);
    c[t].failures = 0;
    cr_assert_eq(pthread_create(&th[t], NULL, churn, &c[t]), 0);
  }
  for (int t = 0; t < CHURN_THREADS; t++) { /* page only once the table is changing */
    while (atomic_load(&c[t].rounds) == 0)
      sched_yield();
  }
  others_seen = 0;
  for (int pass = 0; pass < 3; pass++) {
    int seen[STABLE] = {0};
    walk(3, NULL, seen, STABLE);
    for (int i = 0; i < STABLE; i++)
      cr_expect_eq(seen[i], 1, "pass %d: f%04d seen %d times", pass, i, seen[i]);
  }
  atomic_store(&stop_churn, true);
  for (int t = 0; t < CHURN_THREADS; t++) {
    pthread_join(th[t], NULL);
    cr_expect_eq(c[t].failures, 0);
  }
  cr_expect_gt(others_seen, 0, "the pages met the other threads' flows");
  cr_expect_eq(af_flows_count(svc), STABLE);
}

/* ---- FlowDefinition ---- */

static af_arena build; /* requests of the FlowDefinition test */

/* A call waited for, as a given principal. */
typedef struct call_wait {
  af_latch latch;
  af_err rc;
} call_wait;

static void call_done(void *ctx, af_err rc) {
  call_wait *w = ctx;
  w->rc = rc;
  af_latch_open(&w->latch);
}

/* The profile setup() made for a connector type (ignored for the types that take none). */
static const char *profile_of(const char *type) {
  return strcmp(type, "Salesforce") == 0  ? "sf"
         : strcmp(type, "Zendesk") == 0   ? "zd"
         : strcmp(type, "Snowflake") == 0 ? "snow"
                                          : "none";
}

/* Creates a flow from a source connector to one destination (each an AWS connector name and
 * its properties in AWS JSON), with a description (NULL: none) and tags (a JSON object's
 * members, NULL: none). */
static void create(const char *name, Appflow__V1__TriggerType trigger, const char *source,
                   const char *source_properties, const char *destination,
                   const char *destination_properties, const char *description, const char *tags) {
  char desc[128] = "";
  if (description != NULL)
    snprintf(desc, sizeof desc, "\"description\": \"%s\", ", description);
  Appflow__V1__CreateFlowRequest *r = request_from_jsonf(
      &af_model_CreateFlowRequest, &build,
      "{\"flowName\": \"%s\", %s\"triggerConfig\": {\"triggerType\": \"%s\"%s}, "
      "\"sourceFlowConfig\": {\"connectorType\": \"%s\", \"connectorProfileName\": \"%s\", "
      "\"sourceConnectorProperties\": {\"%s\": %s}}, "
      "\"destinationFlowConfigList\": [{\"connectorType\": \"%s\", "
      "\"connectorProfileName\": \"%s\", \"destinationConnectorProperties\": {\"%s\": %s}}], "
      "\"tasks\": [{\"sourceFields\": [], \"taskType\": \"Map_all\"}], \"tags\": {%s}}",
      name, desc,
      trigger == T(SCHEDULED)   ? "Scheduled"
      : trigger == T(ON_DEMAND) ? "OnDemand"
                                : "Event",
      trigger == T(SCHEDULED)
          ? ", \"triggerProperties\": {\"Scheduled\": {\"scheduleExpression\": \"rate(1hours)\"}}"
          : "",
      source, profile_of(source), source, source_properties, destination, profile_of(destination),
      destination, destination_properties, tags ? tags : "");
  Appflow__V1__CreateFlowResponse resp;
  af_error err;
  cr_assert_eq(af_flows_create_flow(svc, r, &resp, &build, &err), AF_OK, "%s: %s", name,
               err.message);
}

static Appflow__V1__StartFlowResponse *start(const char *name) {
  Appflow__V1__StartFlowRequest req = APPFLOW__V1__START_FLOW_REQUEST__INIT;
  req.flow_name = (char *)name;
  Appflow__V1__StartFlowResponse *resp = af_arena_alloc(&build, sizeof *resp);
  cr_assert_not_null(resp);
  af_error err;
  cr_assert_eq(af_flows_start_flow(svc, &req, resp, &build, &err), AF_OK, "%s", err.message);
  return resp;
}

static const Appflow__V1__FlowDefinition *find(const Appflow__V1__ListFlowsResponse *r,
                                               const char *name) {
  for (size_t i = 0; i < r->n_flows; i++) {
    if (strcmp(r->flows[i]->flow_name, name) == 0)
      return r->flows[i];
  }
  cr_assert_fail("%s not listed", name);
  return NULL;
}

static void expect_time(const Google__Protobuf__Timestamp *t, int64_t ms, const char *what) {
  cr_assert_not_null(t, "%s", what);
  cr_expect_eq(t->seconds, ms / 1000, "%s", what);
  cr_expect_eq(t->nanos, (ms % 1000) * 1000000, "%s", what);
}

static const char *def_tag(const Appflow__V1__FlowDefinition *d, const char *key) {
  for (size_t i = 0; i < d->n_tags; i++) {
    if (strcmp(d->tags[i]->key, key) == 0)
      return d->tags[i]->value;
  }
  return NULL;
}

Test(list, flow_definitions) {
  af_arena_init(&build);
  create("sched", T(SCHEDULED), "Salesforce", "{\"object\": \"Account\"}", "S3",
         "{\"bucketName\": \"bucket\"}", "Accounts nightly",
         "\"team\": \"data\", \"env\": \"prod\"");
  fake_now = T0 + 1000;
  create("od", T(ON_DEMAND), "Zendesk", "{\"object\": \"tickets\"}", "Snowflake",
         "{\"object\": \"db.tickets\", \"intermediateBucketName\": \"stage-bucket\"}", NULL, NULL);
  fake_now = T0 - 1;
  test_seed_flow(svc, "seeded", T(EVENT), S(SUSPENDED));
  af_error err;
  fake_now = T0 + 5000;
  Appflow__V1__StartFlowResponse *run = start("od");
  fake_now = T0 + 7000;
  start("sched");

  Appflow__V1__ListFlowsRequest req = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  Appflow__V1__ListFlowsResponse resp = APPFLOW__V1__LIST_FLOWS_RESPONSE__INIT;
  cr_assert_eq(af_flows_list_flows(svc, &req, &resp, &build, &err), AF_OK, "%s", err.message);
  cr_assert_eq(resp.n_flows, 3);

  const Appflow__V1__FlowDefinition *d = find(&resp, "sched");
  cr_expect_str_eq(d->flow_arn, "arn:aws:appflow:us-east-1:000000000000:flow/sched");
  cr_expect_str_eq(d->description, "Accounts nightly");
  cr_expect_eq(d->flow_status, S(ACTIVE));
  cr_expect(d->has_source_connector_type);
  cr_expect_eq(d->source_connector_type, APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_SALESFORCE);
  cr_expect(d->has_destination_connector_type);
  cr_expect_eq(d->destination_connector_type, APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3);
  cr_expect(d->has_trigger_type);
  cr_expect_eq(d->trigger_type, T(SCHEDULED));
  expect_time(d->created_at, T0, "sched createdAt");
  expect_time(d->last_updated_at, T0 + 7000, "sched lastUpdatedAt");
  cr_expect_str_eq(d->created_by, ROOT);
  cr_expect_str_eq(d->last_updated_by, ROOT);
  cr_expect_eq(d->n_tags, 2);
  cr_expect_str_eq(def_tag(d, "team"), "data");
  cr_expect_str_eq(def_tag(d, "env"), "prod");
  cr_expect_null(d->last_run_execution_details, "scheduled starts are not runs");

  d = find(&resp, "od");
  cr_expect_null(d->description);
  cr_expect_eq(d->flow_status, S(ACTIVE));
  cr_expect(d->has_source_connector_type);
  cr_expect_eq(d->source_connector_type, APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_ZENDESK);
  cr_expect(d->has_destination_connector_type);
  cr_expect_eq(d->destination_connector_type,
               APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_SNOWFLAKE);
  cr_expect_eq(d->trigger_type, T(ON_DEMAND));
  expect_time(d->created_at, T0 + 1000, "od createdAt");
  cr_expect_str_eq(d->created_by, ROOT);
  cr_expect_eq(d->n_tags, 0);
  const Appflow__V1__ExecutionDetails *x = d->last_run_execution_details;
  cr_assert_not_null(x, "an on-demand run");
  cr_expect_eq(x->most_recent_execution_status,
               APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_SUCCESSFUL);
  expect_time(x->most_recent_execution_time, T0 + 5000, "mostRecentExecutionTime");
  cr_assert_not_null(run->execution_id);
  cr_expect(strstr(x->most_recent_execution_message, run->execution_id) != NULL, "%s",
            x->most_recent_execution_message);

  d = find(&resp, "seeded");
  cr_expect_eq(d->flow_status, S(SUSPENDED));
  cr_expect_eq(d->trigger_type, T(EVENT));
  cr_expect_not(d->has_source_connector_type, "a seeded flow has no connectors");
  cr_expect_not(d->has_destination_connector_type);
  expect_time(d->created_at, T0 - 1, "seeded createdAt");
  cr_expect_str_eq(d->created_by, ROOT);
  cr_expect_str_eq(d->last_updated_by, ROOT);
  cr_expect_null(d->last_run_execution_details);
  af_arena_destroy(&build);
}

/* UpdateFlow's new connectors and principal show in the listing. */
Test(list, flow_definitions_after_an_update) {
  af_arena_init(&build);
  create("moved", T(EVENT), "Salesforce", "{\"object\": \"Account\"}", "S3",
         "{\"bucketName\": \"bucket\"}", "before", NULL);
  Appflow__V1__UpdateFlowRequest *u = request_from_json(
      &af_model_UpdateFlowRequest,
      "{\"flowName\": \"moved\", \"triggerConfig\": {\"triggerType\": \"OnDemand\"}, "
      "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"sourceConnectorProperties\": "
      "{\"S3\": {\"bucketName\": \"in-bucket\"}}}, \"destinationFlowConfigList\": "
      "[{\"connectorType\": \"EventBridge\", \"destinationConnectorProperties\": "
      "{\"EventBridge\": {\"object\": \"bus\"}}}], "
      "\"tasks\": [{\"sourceFields\": [], \"taskType\": \"Map_all\"}]}",
      &build);
  static const char user[] = "arn:aws:iam::000000000000:user/carol";
  Appflow__V1__UpdateFlowResponse uresp = APPFLOW__V1__UPDATE_FLOW_RESPONSE__INIT;
  af_error err;
  call_wait w = {.rc = AF_OK};
  af_latch_init(&w.latch);
  af_reply_to to = {.arena = &build, .err = &err, .done = call_done, .ctx = &w, .principal = user};
  fake_now = T0 + 9000;
  af_flows_call(svc, af_flows_rpc_named(svc, "UpdateFlow"), &u->base, &uresp.base, &to);
  af_latch_wait(&w.latch);
  cr_assert_eq(w.rc, AF_OK, "%s", err.message);

  Appflow__V1__ListFlowsRequest req = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  Appflow__V1__ListFlowsResponse resp;
  cr_assert_eq(af_flows_list_flows(svc, &req, &resp, &build, &err), AF_OK, "%s", err.message);
  const Appflow__V1__FlowDefinition *d = find(&resp, "moved");
  cr_expect_eq(d->source_connector_type, APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_S3);
  cr_expect_eq(d->destination_connector_type,
               APPFLOW__V1__CONNECTOR_TYPE__CONNECTOR_TYPE_EVENT_BRIDGE);
  cr_expect_eq(d->trigger_type, T(ON_DEMAND));
  cr_expect_eq(d->flow_status, S(ACTIVE));
  cr_expect_null(d->description, "the update had none");
  expect_time(d->created_at, T0, "createdAt");
  expect_time(d->last_updated_at, T0 + 9000, "lastUpdatedAt");
  cr_expect_str_eq(d->created_by, ROOT);
  cr_expect_str_eq(d->last_updated_by, user);
  af_arena_destroy(&build);
}

/* ---- tags ---- */

#define ARN(name) "arn:aws:appflow:us-east-1:000000000000:flow/" name

static af_err tag(const char *arn, const char *const *kv, size_t n, af_error *err) {
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__TagResourceRequest__TagsEntry *entries = calloc(n + 1, sizeof *entries);
  Appflow__V1__TagResourceRequest__TagsEntry **ptrs = calloc(n + 1, sizeof *ptrs);
  cr_assert(entries != NULL && ptrs != NULL);
  for (size_t i = 0; i < n; i++) {
    appflow__v1__tag_resource_request__tags_entry__init(&entries[i]);
    entries[i].key = (char *)kv[2 * i];
    entries[i].value = (char *)kv[2 * i + 1];
    ptrs[i] = &entries[i];
  }
  Appflow__V1__TagResourceRequest req = APPFLOW__V1__TAG_RESOURCE_REQUEST__INIT;
  req.resource_arn = (char *)arn;
  req.n_tags = n;
  req.tags = ptrs;
  Appflow__V1__TagResourceResponse resp = APPFLOW__V1__TAG_RESOURCE_RESPONSE__INIT;
  af_err rc = af_flows_tag_resource(svc, &req, &resp, &arena, err);
  free(entries);
  free(ptrs);
  af_arena_destroy(&arena);
  return rc;
}

static af_err untag(const char *arn, const char *const *keys, size_t n, af_error *err) {
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__UntagResourceRequest req = APPFLOW__V1__UNTAG_RESOURCE_REQUEST__INIT;
  req.resource_arn = (char *)arn;
  req.n_tag_keys = n;
  req.tag_keys = (char **)keys;
  Appflow__V1__UntagResourceResponse resp = APPFLOW__V1__UNTAG_RESOURCE_RESPONSE__INIT;
  af_err rc = af_flows_untag_resource(svc, &req, &resp, &arena, err);
  af_arena_destroy(&arena);
  return rc;
}

static int by_key(const void *a, const void *b) {
  const Appflow__V1__ListTagsForResourceResponse__TagsEntry *const *x = a, *const *y = b;
  return strcmp((*x)->key, (*y)->key);
}

/* The flow's tags as "k=v" lines sorted by key, into out. */
static af_err list_tags(const char *arn, char *out, size_t size, af_error *err) {
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__ListTagsForResourceRequest req = APPFLOW__V1__LIST_TAGS_FOR_RESOURCE_REQUEST__INIT;
  req.resource_arn = (char *)arn;
  Appflow__V1__ListTagsForResourceResponse resp =
      APPFLOW__V1__LIST_TAGS_FOR_RESOURCE_RESPONSE__INIT;
  af_err rc = af_flows_list_tags(svc, &req, &resp, &arena, err);
  out[0] = '\0';
  if (rc == AF_OK && resp.n_tags > 0)
    qsort(resp.tags, resp.n_tags, sizeof *resp.tags, by_key);
  for (size_t i = 0, len = 0; rc == AF_OK && i < resp.n_tags; i++, len = strlen(out))
    snprintf(out + len, size - len, "%s=%s\n", resp.tags[i]->key, resp.tags[i]->value);
  af_arena_destroy(&arena);
  return rc;
}

static void expect_tags(const char *arn, const char *want) {
  static char got[8192];
  af_error err;
  cr_assert_eq(list_tags(arn, got, sizeof got, &err), AF_OK, "%s", err.message);
  cr_expect_str_eq(got, want);
}

Test(tags, tag_merges_and_replaces) {
  add_to(svc, "f1");
  expect_tags(ARN("f1"), "");
  af_error err;
  static const char *const a[] = {"team", "data"}, *const b[] = {"env", "prod", "team", "ops"};
  cr_expect_eq(tag(ARN("f1"), a, 1, &err), AF_OK, "%s", err.message);
  expect_tags(ARN("f1"), "team=data\n");
  cr_expect_eq(tag(ARN("f1"), b, 2, &err), AF_OK, "%s", err.message);
  expect_tags(ARN("f1"), "env=prod\nteam=ops\n");
  static const char *const blank[] = {"note", ""};
  cr_expect_eq(tag(ARN("f1"), blank, 1, &err), AF_OK, "an empty value is a value");
  expect_tags(ARN("f1"), "env=prod\nnote=\nteam=ops\n");
}

Test(tags, untag_removes_only_what_is_named) {
  af_tag initial[] = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
  af_flow_spec spec = {"f1", 2, T(EVENT), S(ACTIVE), NULL, initial, 3};
  af_error err;
  cr_assert_eq(af_flows_seed_one(svc, &spec, NULL, &err), AF_OK);
  expect_tags(ARN("f1"), "a=1\nb=2\nc=3\n");
  static const char *const absent[] = {"zz", "y"};
  cr_expect_eq(untag(ARN("f1"), absent, 2, &err), AF_OK, "absent keys are no error");
  expect_tags(ARN("f1"), "a=1\nb=2\nc=3\n");
  static const char *const some[] = {"b", "zz", "b"};
  cr_expect_eq(untag(ARN("f1"), some, 3, &err), AF_OK, "%s", err.message);
  expect_tags(ARN("f1"), "a=1\nc=3\n");
  static const char *const rest[] = {"a", "c"};
  cr_expect_eq(untag(ARN("f1"), rest, 2, &err), AF_OK);
  expect_tags(ARN("f1"), "");
}

static void key_n(char *buf, size_t size, int i) {
  snprintf(buf, size, "k%c%c", 'a' + i / 26, 'a' + i % 26);
}

Test(tags, at_most_50_on_a_flow) {
  add_to(svc, "f1");
  static char keys[60][8];
  const char *kv[120];
  for (int i = 0; i < 60; i++) {
    key_n(keys[i], sizeof keys[i], i);
    kv[2 * i] = keys[i];
    kv[2 * i + 1] = "v";
  }
  af_error err;
  cr_expect_eq(tag(ARN("f1"), kv, 51, &err), AF_ERR_VALIDATION, "51 in one request");
  cr_expect(strstr(err.message, "'tags'") != NULL, "%s", err.message);
  cr_expect_eq(tag(ARN("f1"), kv, 30, &err), AF_OK, "%s", err.message);
  cr_expect_eq(tag(ARN("f1"), kv + 2 * 30, 21, &err), AF_ERR_VALIDATION, "30 + 21 after merging");
  cr_expect(strstr(err.message, "50") != NULL, "%s", err.message);
  cr_expect_eq(tag(ARN("f1"), kv + 2 * 30, 20, &err), AF_OK, "%s", err.message);
  static char want[2048];
  want[0] = '\0';
  for (int i = 0; i < 50; i++) {
    size_t len = strlen(want);
    snprintf(want + len, sizeof want - len, "%s=v\n", keys[i]);
  }
  expect_tags(ARN("f1"), want);
  cr_expect_eq(tag(ARN("f1"), kv + 2 * 50, 1, &err), AF_ERR_VALIDATION, "a 51st tag");
  expect_tags(ARN("f1"), want);
  static const char *const replace[] = {"kaa", "v"};
  cr_expect_eq(tag(ARN("f1"), replace, 1, &err), AF_OK, "replacing keeps 50: %s", err.message);
  /* Removing and adding in one flow of requests: 50 - 1 + 1. */
  static const char *const one[] = {"kaa"};
  cr_expect_eq(untag(ARN("f1"), one, 1, &err), AF_OK);
  cr_expect_eq(tag(ARN("f1"), kv + 2 * 50, 1, &err), AF_OK, "%s", err.message);
}

Test(tags, empty_or_invalid_requests) {
  add_to(svc, "f1");
  af_error err;
  /* proto2 cannot tell {} from no tags, and AWS takes "tags": {} for the required map: a
   * TagResource that adds nothing. */
  static const char *const one[] = {"k", "v"};
  cr_expect_eq(tag(ARN("f1"), one, 1, &err), AF_OK, "%s", err.message);
  cr_expect_eq(tag(ARN("f1"), NULL, 0, &err), AF_OK, "%s", err.message);
  expect_tags(ARN("f1"), "k=v\n");
  cr_expect_eq(untag(ARN("f1"), NULL, 0, &err), AF_ERR_VALIDATION);
  cr_expect_str_eq(err.message, "1 validation error detected: Value null at 'tagKeys' failed to "
                                "satisfy constraint: Member must not be null");
  static const char *const aws[] = {"aws:owner", "me"}, *const hash[] = {"k", "a#b"};
  cr_expect_eq(tag(ARN("f1"), aws, 1, &err), AF_ERR_VALIDATION);
  cr_expect_eq(tag(ARN("f1"), hash, 1, &err), AF_ERR_VALIDATION);
  cr_expect_str_eq(err.message,
                   "1 validation error detected: Value '{k=a#b}' at 'tags' failed to satisfy "
                   "constraint: Map value must satisfy constraint: [Member must have length less "
                   "than or equal to 256, Member must satisfy regular expression pattern: "
                   "[\\s\\w+-=\\.:/@]*]");
  static const char *const bad_keys[] = {"ok", "aws:x"}, *const empty_key[] = {""};
  cr_expect_eq(untag(ARN("f1"), bad_keys, 2, &err), AF_ERR_VALIDATION);
  cr_expect(strstr(err.message, "'tagKeys'") != NULL, "%s", err.message);
  cr_expect_eq(untag(ARN("f1"), empty_key, 1, &err), AF_ERR_VALIDATION);
  static char many[51][8];
  const char *keys[51];
  for (int i = 0; i < 51; i++) {
    key_n(many[i], sizeof many[i], i);
    keys[i] = many[i];
  }
  cr_expect_eq(untag(ARN("f1"), keys, 51, &err), AF_ERR_VALIDATION, "TagKeyList max 50");
  cr_expect_eq(untag(ARN("f1"), keys, 50, &err), AF_OK, "%s", err.message);
  expect_tags(ARN("f1"), "k=v\n");
}

/* Every tag operation on arn must fail with want. */
static void expect_all_fail(const char *arn, af_err want) {
  static const char *const kv[] = {"k", "v"}, *const keys[] = {"k"};
  static char out[256];
  af_error err;
  cr_expect_eq(tag(arn, kv, 1, &err), want, "TagResource %s", arn ? arn : "NULL");
  cr_expect_eq(untag(arn, keys, 1, &err), want, "UntagResource %s", arn ? arn : "NULL");
  cr_expect_eq(list_tags(arn, out, sizeof out, &err), want, "ListTagsForResource %s",
               arn ? arn : "NULL");
  if (want == AF_ERR_RESOURCE_NOT_FOUND)
    cr_expect(strstr(err.message, arn) != NULL, "'%s' does not name the ARN", err.message);
  else
    cr_expect(strstr(err.message, "'resourceArn'") != NULL, "%s", err.message);
}

Test(tags, arns) {
  add_to(svc, "f1");
  expect_all_fail("arn:aws:appflow", AF_ERR_VALIDATION);
  expect_all_fail("f1", AF_ERR_VALIDATION);
  expect_all_fail("", AF_ERR_VALIDATION);
  expect_all_fail(NULL, AF_ERR_VALIDATION);
  expect_all_fail("arn:aws:appflow:us-east-1:account:flow/f1", AF_ERR_VALIDATION);
  static char long_arn[600];
  snprintf(long_arn, sizeof long_arn, "%s", ARN(""));
  memset(long_arn + strlen(long_arn), 'f', 513 - strlen(long_arn));
  expect_all_fail(long_arn, AF_ERR_VALIDATION);
  long_arn[512] = '\0';
  expect_all_fail(long_arn, AF_ERR_RESOURCE_NOT_FOUND); /* 512 is well-formed, but no flow */
  expect_all_fail("arn:aws:appflow:eu-west-1:000000000000:flow/f1", AF_ERR_RESOURCE_NOT_FOUND);
  expect_all_fail("arn:aws:appflow:us-east-1:111111111111:flow/f1", AF_ERR_RESOURCE_NOT_FOUND);
  expect_all_fail(ARN("f2"), AF_ERR_RESOURCE_NOT_FOUND);
  expect_all_fail(ARN("F1"), AF_ERR_RESOURCE_NOT_FOUND);
  expect_all_fail(ARN("f1/x"), AF_ERR_RESOURCE_NOT_FOUND);
  expect_all_fail(ARN(""), AF_ERR_RESOURCE_NOT_FOUND);
  expect_all_fail("arn:aws:appflow:us-east-1:000000000000:connectorprofile/f1",
                  AF_ERR_RESOURCE_NOT_FOUND);
  expect_all_fail("arn:aws:s3:us-east-1:000000000000:flow/f1", AF_ERR_RESOURCE_NOT_FOUND);
  expect_tags(ARN("f1"), "");
}

Test(tags, other_region_and_account_services_use_their_own_arns) {
  test_service_free(svc, store);
  af_error err;
  svc = test_service_new(&(af_flows_config){.region = "eu-west-2", .account = "123456789012"},
                         &store);
  add_to(svc, "f1");
  static const char *const kv[] = {"k", "v"};
  cr_expect_eq(tag("arn:aws:appflow:eu-west-2:123456789012:flow/f1", kv, 1, &err), AF_OK, "%s",
               err.message);
  expect_tags("arn:aws:appflow:eu-west-2:123456789012:flow/f1", "k=v\n");
  expect_all_fail(ARN("f1"), AF_ERR_RESOURCE_NOT_FOUND);
}

Test(tags, changes_show_in_list_flows) {
  add_to(svc, "f1");
  static const char *const kv[] = {"team", "data"};
  af_error err;
  cr_assert_eq(tag(ARN("f1"), kv, 1, &err), AF_OK);
  af_arena arena;
  af_arena_init(&arena);
  Appflow__V1__ListFlowsRequest req = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  Appflow__V1__ListFlowsResponse resp = APPFLOW__V1__LIST_FLOWS_RESPONSE__INIT;
  cr_assert_eq(af_flows_list_flows(svc, &req, &resp, &arena, &err), AF_OK);
  cr_assert_eq(resp.n_flows, 1);
  cr_expect_str_eq(def_tag(resp.flows[0], "team"), "data");
  af_arena_destroy(&arena);
}

/* ---- entries kept packed (the memory store keeps them with each version of a flow) ---- */

/* A ListFlows page through af_flows_call, as the gRPC door asks for one: with the list of its
 * entries the service had packed. */
static Appflow__V1__ListFlowsResponse *list_ready(af_flows *s, af_pbc_ready *ready, af_arena *a) {
  Appflow__V1__ListFlowsRequest req = APPFLOW__V1__LIST_FLOWS_REQUEST__INIT;
  Appflow__V1__ListFlowsResponse *resp = af_arena_alloc(a, sizeof *resp);
  cr_assert_not_null(resp);
  appflow__v1__list_flows_response__init(resp);
  test_call_ready(s, "ListFlows", &req.base, &resp->base, ready, a);
  return resp;
}

/* Which of the page's entries came packed: each packed one must be the page's own message and
 * pack to the same bytes; marks[i] is 'p' for a packed entry, '-' for one made for the call. */
static void packed_marks(const Appflow__V1__ListFlowsResponse *r, const af_pbc_ready *ready,
                         char *marks) {
  size_t k = 0;
  for (size_t i = 0; i < r->n_flows; i++) {
    marks[i] = '-';
    if (k < ready->n && ready->items[k].msg == &r->flows[i]->base) {
      uint8_t buf[4096];
      size_t len = protobuf_c_message_get_packed_size(&r->flows[i]->base);
      cr_assert_leq(len, sizeof buf);
      cr_assert_eq(protobuf_c_message_pack(&r->flows[i]->base, buf), len);
      cr_assert_eq(ready->items[k].len, len, "%s", r->flows[i]->flow_name);
      cr_assert_arr_eq(ready->items[k].data, buf, len, "%s", r->flows[i]->flow_name);
      marks[i] = 'p';
      k++;
    }
  }
  marks[r->n_flows] = '\0';
  cr_assert_eq(k, ready->n, "every packed entry is one of the page's, in its order");
}

static const Appflow__V1__FlowDefinition *listed(const Appflow__V1__ListFlowsResponse *r,
                                                 const char *name, char *marks, char *mark) {
  for (size_t i = 0; i < r->n_flows; i++) {
    if (strcmp(r->flows[i]->flow_name, name) == 0) {
      *mark = marks[i];
      return r->flows[i];
    }
  }
  cr_assert_fail("%s not listed", name);
  return NULL;
}

static void call_ok(af_flows *s, const char *op, const char *json) {
  af_arena a;
  af_arena_init(&a);
  af_error err;
  cr_assert_eq(call_json(s, op, json, &a, NULL, &err), AF_OK, "%s: %s", op, err.message);
  af_arena_destroy(&a);
}

#define EXEC(x) APPFLOW__V1__EXECUTION_STATUS__EXECUTION_STATUS_##x

/* An entry is made once and listed from then on as it was made (its packed bytes; the message
 * they are, once a second page unpacked it), until its flow changes; an entry
 * whose run is in progress (its status moves with the clock) is made for every page; a page
 * keeps what it listed readable after its flows go (ASan), and the store counts none of it. */
Test(list, entries_are_kept_packed_until_their_flow_changes) {
  af_store *st;
  af_flows *s = test_service_new(
      &(af_flows_config){.clock = &(af_clock){fake_clock, NULL}, .run_duration_ms = 60000}, &st);
  bool keeps = strcmp(test_store_kind(), "memory") == 0; /* the databases keep no memos */
  add_to(s, "f0");
  add_to(s, "f1");
  test_seed_flow(s, "od", T(ON_DEMAND), S(ACTIVE));
  af_arena a1, a2;
  af_arena_init(&a1);
  af_arena_init(&a2);
  af_pbc_ready r1, r2;
  char m1[8], m2[8], mark;
  Appflow__V1__ListFlowsResponse *p1 = list_ready(s, &r1, &a1);
  packed_marks(p1, &r1, m1);
  cr_assert_str_eq(m1, keeps ? "ppp" : "---");
  Appflow__V1__ListFlowsResponse *p2 = list_ready(s, &r2, &a2);
  packed_marks(p2, &r2, m2);
  cr_assert_str_eq(m2, m1);
  af_arena_destroy(&a1);
  af_arena_init(&a1); /* the second page unpacked the entries; from then on they are shared */
  p1 = list_ready(s, &r1, &a1);
  packed_marks(p1, &r1, m1);
  cr_assert_str_eq(m1, m2);
  for (size_t i = 0; keeps && i < 3; i++)
    cr_expect_eq(p2->flows[i], p1->flows[i], "the same entry, not a copy");
  af_arena_destroy(&a1);
  af_arena_destroy(&a2);

  call_ok(s, "StartFlow", "{\"flowName\": \"od\"}"); /* in progress for a minute */
  af_arena_init(&a1);
  p1 = list_ready(s, &r1, &a1);
  packed_marks(p1, &r1, m1);
  const Appflow__V1__FlowDefinition *d = listed(p1, "od", m1, &mark);
  cr_assert_not_null(d->last_run_execution_details);
  cr_expect_eq(d->last_run_execution_details->most_recent_execution_status, EXEC(IN_PROGRESS));
  cr_expect_eq(mark, '-', "a run in progress is listed as it is now");
  fake_now += 60000;
  af_arena_init(&a2);
  p2 = list_ready(s, &r2, &a2);
  packed_marks(p2, &r2, m2);
  d = listed(p2, "od", m2, &mark);
  cr_expect_eq(d->last_run_execution_details->most_recent_execution_status, EXEC(SUCCESSFUL));
  cr_expect_eq(mark, keeps ? 'p' : '-', "an ended run's entry is kept");
  af_arena_destroy(&a1);

  call_ok(s, "StopFlow", "{\"flowName\": \"f1\"}");
  af_arena_init(&a1);
  p1 = list_ready(s, &r1, &a1);
  packed_marks(p1, &r1, m1);
  d = listed(p1, "f1", m1, &mark);
  cr_expect_eq(d->flow_status, S(SUSPENDED), "the change, not the entry kept before it");
  cr_expect_eq(mark, keeps ? 'p' : '-');
  cr_expect_eq(listed(p1, "f0", m1, &mark)->flow_status, S(ACTIVE));
  /* a page still holds the entries of flows that go; the store counts only what it keeps */
  if (keeps)
    cr_expect_gt(atomic_load(&st->memo_bytes), 0);
  for (size_t i = 0; i < 3; i++) {
    af_error err;
    cr_assert_eq(test_delete_flow(s, p1->flows[i]->flow_name, true, &err), AF_OK, "%s",
                 err.message);
  }
  cr_expect_eq(atomic_load(&st->memo_bytes), 0);
  for (size_t i = 0; i < p2->n_flows; i++) { /* what the page holds stays readable (ASan) */
    const char *n = p2->flows[i]->flow_name;
    cr_expect(strcmp(n, "f0") == 0 || strcmp(n, "f1") == 0 || strcmp(n, "od") == 0, "%s", n);
  }
  af_arena_destroy(&a1);
  af_arena_destroy(&a2);
  test_service_free(s, st);
}
