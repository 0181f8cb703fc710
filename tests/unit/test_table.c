#include "flows/table.h"

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
  c->ntags = f->ntags;
  if (f->ntags > 0)
    snprintf(c->tag0, sizeof c->tag0, "%s=%s", f->tags[0].key, f->tags[0].value);
  return AF_OK;
}

Test(table, insert_find_and_duplicate) {
  af_table *t = af_table_new(42);
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
  af_table *t = af_table_new(1);
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
  af_table *t = af_table_new(1);
  af_error err;
  af_flow_spec empty = {"", 0, SCHEDULED, ACTIVE, NULL, NULL, 0};
  cr_expect_eq(af_table_insert(t, &empty, &err), AF_ERR_VALIDATION);
  af_table_free(t);
}

Test(table, grows_to_many_flows) {
  af_table *t = af_table_new(7);
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
  af_table *t = af_table_new(3);
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
