#include "flows/table.h"

#include "budget_alloc.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define SCHEDULED APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED
#define ACTIVE APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE
#define SUSPENDED APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_SUSPENDED

static af_err insert(af_table *t, const char *name) {
  af_flow_spec spec = {name, strlen(name), SCHEDULED, ACTIVE, NULL, NULL, 0};
  af_error err;
  return af_table_insert(t, &spec, &err);
}

/* Copies the flow out, so tests can look at it after the lock is gone. */
struct copy {
  char name[300];
  uint8_t trigger, status;
  char description[64];
  size_t ntags;
  char tag0[64];
};

static af_err copy_flow(af_flow *f, void *ctx, af_error *err) {
  (void)err;
  struct copy *c = ctx;
  snprintf(c->name, sizeof c->name, "%s", f->name);
  c->trigger = f->trigger;
  c->status = f->status;
  snprintf(c->description, sizeof c->description, "%s", f->description ? f->description : "-");
  c->ntags = f->tags ? f->tags->n : 0;
  if (c->ntags > 0)
    snprintf(c->tag0, sizeof c->tag0, "%s=%s", f->tags->tags[0].key, f->tags->tags[0].value);
  return AF_OK;
}

Test(table, insert_find_and_duplicate) {
  af_table *t = af_table_new(42, NULL);
  cr_assert_not_null(t);
  cr_expect_eq(insert(t, "alpha"), AF_OK);
  cr_expect_eq(insert(t, "beta"), AF_OK);
  af_error err;
  cr_expect_eq(insert(t, "alpha"), AF_ERR_NAME_TAKEN);
  cr_expect_eq(af_table_count(t), 2);
  struct copy c;
  cr_expect_eq(af_table_update(t, "beta", 4, copy_flow, &c, &err), AF_OK);
  cr_expect_str_eq(c.name, "beta");
  cr_expect_eq(c.status, ACTIVE);
  cr_expect_eq(af_table_update(t, "bet", 3, copy_flow, &c, &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_eq(err.code, AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_str_eq(err.message, "Flow bet does not exist");
  af_table_free(t);
}

Test(table, stores_description_and_tags) {
  af_table *t = af_table_new(1, NULL);
  af_tag tags[] = {{"team", "data"}, {"env", "test"}};
  af_flow_spec spec = {"tagged", 6, SCHEDULED, ACTIVE, "nightly sync", tags, 2};
  af_error err;
  cr_assert_eq(af_table_insert(t, &spec, &err), AF_OK);
  struct copy c;
  cr_assert_eq(af_table_update(t, "tagged", 6, copy_flow, &c, &err), AF_OK);
  cr_expect_str_eq(c.description, "nightly sync");
  cr_expect_eq(c.ntags, 2);
  cr_expect_str_eq(c.tag0, "team=data");
  af_table_free(t);
}

Test(table, name_length_limits) {
  af_table *t = af_table_new(1, NULL);
  af_error err;
  af_flow_spec empty = {"", 0, SCHEDULED, ACTIVE, NULL, NULL, 0};
  cr_expect_eq(af_table_insert(t, &empty, &err), AF_ERR_VALIDATION);
  af_table_free(t);
}

Test(table, grows_to_many_flows) {
  af_table *t = af_table_new(7, NULL);
  char name[32];
  for (int i = 0; i < 100000; i++) {
    snprintf(name, sizeof name, "flow_%d", i);
    cr_assert_eq(insert(t, name), AF_OK);
  }
  cr_expect_eq(af_table_count(t), 100000);
  af_error err;
  struct copy c;
  for (int i = 0; i < 100000; i += 997) {
    snprintf(name, sizeof name, "flow_%d", i);
    cr_assert_eq(af_table_update(t, name, strlen(name), copy_flow, &c, &err), AF_OK);
    cr_expect_str_eq(c.name, name);
  }
  af_table_free(t);
}

/* Concurrent inserts of overlapping names: each name is taken exactly once. */
#define THREADS 8
#define NAMES 2000

struct racer {
  af_table *t;
  int wins;
};

static void *race_insert(void *arg) {
  struct racer *r = arg;
  char name[32];
  for (int i = 0; i < NAMES; i++) {
    snprintf(name, sizeof name, "racer_%d", i);
    if (insert(r->t, name) == AF_OK)
      r->wins++;
  }
  return NULL;
}

Test(table, concurrent_inserts_take_each_name_once) {
  af_table *t = af_table_new(3, NULL);
  pthread_t th[THREADS];
  struct racer r[THREADS];
  for (int i = 0; i < THREADS; i++) {
    r[i] = (struct racer){t, 0};
    pthread_create(&th[i], NULL, race_insert, &r[i]);
  }
  int wins = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    wins += r[i].wins;
  }
  cr_expect_eq(wins, NAMES);
  cr_expect_eq(af_table_count(t), NAMES);
  af_table_free(t);
}

Test(table, free_accepts_null) { af_table_free(NULL); }

/* ---- running out of memory ---- */

Test(table, out_of_memory_is_an_error_and_changes_nothing) {
  struct budget b = {1 + 64 + 3}; /* the table, 64 shards' buckets, then 3 flows */
  af_allocator mem = budget_allocator(&b);
  af_table *t = af_table_new(5, &mem);
  cr_assert_not_null(t);
  cr_expect_eq(insert(t, "one"), AF_OK);
  cr_expect_eq(insert(t, "two"), AF_OK);
  cr_expect_eq(insert(t, "three"), AF_OK);
  af_flow_spec spec = {"four", 4, SCHEDULED, ACTIVE, NULL, NULL, 0};
  af_error err;
  cr_expect_eq(af_table_insert(t, &spec, &err), AF_ERR_INTERNAL_SERVER);
  cr_expect_eq(err.code, AF_ERR_INTERNAL_SERVER);
  cr_expect(strstr(err.message, "out of memory") != NULL, "%s", err.message);
  cr_expect_eq(af_table_count(t), 3);
  struct copy c;
  cr_expect_eq(af_table_update(t, "four", 4, copy_flow, &c, &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_eq(af_table_update(t, "two", 3, copy_flow, &c, &err), AF_OK); /* the rest intact */
  b.left = 1;
  cr_expect_eq(insert(t, "four"), AF_OK); /* memory back: the same insert now works */
  af_table_free(t);
}

Test(table, failing_to_grow_only_lengthens_chains) {
  struct budget b = {1 + 64 + 1000}; /* enough for flows, none left to double buckets */
  af_allocator mem = budget_allocator(&b);
  af_table *t = af_table_new(9, &mem);
  cr_assert_not_null(t);
  char name[32];
  int ok = 0;
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "grow_%d", i);
    ok += insert(t, name) == AF_OK;
  }
  /* Every doubling that failed cost a flow nothing; doublings that happened cost budget, so
   * at most the budget's worth of flows went in, each findable. */
  cr_expect_eq((size_t)ok, af_table_count(t));
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "grow_%d", i);
    af_error err;
    struct copy c;
    af_err rc = af_table_update(t, name, strlen(name), copy_flow, &c, &err);
    cr_expect(rc == AF_OK || rc == AF_ERR_RESOURCE_NOT_FOUND);
  }
  af_table_free(t);
}

Test(table, no_memory_at_all) {
  struct budget b = {0};
  af_allocator mem = budget_allocator(&b);
  cr_expect_null(af_table_new(1, &mem));
  b.left = 10; /* the table but not all 64 shards: undone, nothing leaked */
  cr_expect_null(af_table_new(1, &mem));
}

/* ---- order, scans and deletes ---- */

struct names {
  char (*v)[16];
  size_t n, cap;
  size_t stop_after; /* 0: never stop */
};

static bool collect(const af_flow *f, void *ctx) {
  struct names *c = ctx;
  cr_assert_lt(c->n, c->cap, "scan visited more flows than exist");
  snprintf(c->v[c->n++], sizeof c->v[0], "%s", f->name);
  return c->stop_after == 0 || c->n < c->stop_after;
}

static size_t index_of(const struct names *c, const char *name) {
  for (size_t i = 0; i < c->n; i++) {
    if (strcmp(c->v[i], name) == 0)
      return i;
  }
  return c->n;
}

#define SCAN_FLOWS 3000

/* A full scan visits each flow once; resuming after the k-th name visits exactly the rest, in
 * the same order, including after the table grew in between. */
Test(table, scan_order_is_total_and_resumable) {
  af_table *t = af_table_new(99, NULL);
  char name[16];
  for (int i = 0; i < SCAN_FLOWS; i++) {
    snprintf(name, sizeof name, "f%d", i);
    cr_assert_eq(insert(t, name), AF_OK);
  }
  struct names all = {calloc(SCAN_FLOWS, 16), 0, SCAN_FLOWS, 0};
  af_table_scan(t, NULL, 0, collect, &all);
  cr_assert_eq(all.n, SCAN_FLOWS);
  for (size_t i = 0; i < all.n; i++)
    cr_assert_eq(index_of(&all, all.v[i]), i, "%s visited twice", all.v[i]);
  for (size_t k = 0; k < SCAN_FLOWS; k += 487) {
    struct names rest = {calloc(SCAN_FLOWS, 16), 0, SCAN_FLOWS, 0};
    af_table_scan(t, all.v[k], strlen(all.v[k]), collect, &rest);
    cr_assert_eq(rest.n, SCAN_FLOWS - k - 1, "after #%zu", k);
    for (size_t i = 0; i < rest.n; i++)
      cr_assert_str_eq(rest.v[i], all.v[k + 1 + i]);
    free(rest.v);
  }
  free(all.v);
  af_table_free(t);
}

Test(table, scan_resumes_after_a_deleted_or_unknown_name) {
  af_table *t = af_table_new(7, NULL);
  char name[16];
  for (int i = 0; i < 200; i++) {
    snprintf(name, sizeof name, "g%d", i);
    cr_assert_eq(insert(t, name), AF_OK);
  }
  struct names first = {calloc(200, 16), 0, 200, 50};
  af_table_scan(t, NULL, 0, collect, &first);
  cr_assert_eq(first.n, 50);
  af_error err;
  cr_assert_eq(af_table_delete(t, first.v[49], strlen(first.v[49]), NULL, NULL, &err), AF_OK);
  for (int i = 0; i < 500; i++) { /* grow every shard while "paging" */
    snprintf(name, sizeof name, "new%d", i);
    cr_assert_eq(insert(t, name), AF_OK);
  }
  struct names rest = {calloc(700, 16), 0, 700, 0};
  af_table_scan(t, first.v[49], strlen(first.v[49]), collect, &rest);
  size_t old = 0;
  for (size_t i = 0; i < rest.n; i++) {
    cr_expect_eq(index_of(&first, rest.v[i]), first.n, "%s listed twice", rest.v[i]);
    old += rest.v[i][0] == 'g';
  }
  cr_expect_eq(old, 150, "every old flow after the token is visited once");
  struct names none = {calloc(1, 16), 0, 1, 1};
  af_table_scan(t, "never-there", 11, collect, &none); /* any name is a position */
  cr_expect_eq(none.n, 1);
  free(first.v);
  free(rest.v);
  free(none.v);
  af_table_free(t);
}

static af_err refuse(af_flow *f, void *ctx, af_error *err) {
  (void)f;
  (void)ctx;
  return af_error_set(err, AF_ERR_CONFLICT, "no");
}

Test(table, delete_asks_first_and_frees_the_name) {
  af_table *t = af_table_new(1, NULL);
  af_error err;
  cr_assert_eq(insert(t, "gone"), AF_OK);
  cr_expect_eq(af_table_delete(t, "gone", 4, refuse, NULL, &err), AF_ERR_CONFLICT);
  cr_expect_eq(af_table_count(t), 1);
  cr_expect_eq(af_table_delete(t, "gone", 4, NULL, NULL, &err), AF_OK);
  cr_expect_eq(af_table_count(t), 0);
  cr_expect_eq(af_table_delete(t, "gone", 4, NULL, NULL, &err), AF_ERR_RESOURCE_NOT_FOUND);
  cr_expect_str_eq(err.message, "Flow gone does not exist");
  cr_expect_eq(insert(t, "gone"), AF_OK, "the name is free again");
  af_table_free(t);
}

struct retag {
  af_table *t;
  af_tag tags[2];
};

static af_err retag(af_flow *f, void *ctx, af_error *err) {
  struct retag *r = ctx;
  return af_table_set_tags(r->t, f, r->tags, 2, err);
}

Test(table, set_tags_replaces_and_fails_cleanly) {
  struct budget b = {100};
  af_allocator mem = budget_allocator(&b);
  af_table *t = af_table_new(1, &mem);
  af_error err;
  cr_assert_eq(insert(t, "tagged"), AF_OK);
  struct retag r = {t, {{"a", "1"}, {"b", "2"}}};
  cr_assert_eq(af_table_update(t, "tagged", 6, retag, &r, &err), AF_OK);
  struct copy c;
  af_table_update(t, "tagged", 6, copy_flow, &c, &err);
  cr_expect_eq(c.ntags, 2);
  cr_expect_str_eq(c.tag0, "a=1");
  b.left = 0;
  r.tags[0] = (af_tag){"z", "9"};
  cr_expect_eq(af_table_update(t, "tagged", 6, retag, &r, &err), AF_ERR_INTERNAL_SERVER);
  af_table_update(t, "tagged", 6, copy_flow, &c, &err);
  cr_expect_str_eq(c.tag0, "a=1", "failed replacement leaves the old tags");
  af_table_free(t);
}
