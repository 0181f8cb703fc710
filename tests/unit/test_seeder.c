/* src/flows/seeder.c: many flows seeded with several in flight, on a store whose queue is
 * smaller than the seeder's window (a seed's inserts are taken past it), on a store that turns
 * inserts away BUSY (they go again, none is lost), and again on the same store (every flow kept,
 * none changed). */
#include "flows/service.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLOWS 3000

static char dir[64];

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/appflowd-seeder-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_expect_eq(system(cmd), 0);
}

TestSuite(seeder, .init = setup, .fini = teardown);

static af_store *open_sqlite(size_t queue) {
  char url[128], msg[256];
  snprintf(url, sizeof url, "sqlite:%s/flows.db", dir);
  af_store_open_rc why;
  af_store *s = af_store_open(url, &(af_store_config){.queue = queue}, &why, msg, sizeof msg);
  cr_assert_not_null(s, "%s", msg);
  return s;
}

static void seed_all(af_flows *svc, size_t *added, size_t *kept) {
  af_flows_seeder *sd = af_flows_seed_begin(svc);
  cr_assert_not_null(sd);
  af_tag tags[] = {{"team", "data"}};
  af_error err;
  for (int i = 0; i < FLOWS; i++) {
    char name[32];
    int n = snprintf(name, sizeof name, "seeded_%05d", i);
    af_flow_spec spec = {name,
                         (size_t)n,
                         APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_SCHEDULED,
                         APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_ACTIVE,
                         NULL,
                         tags,
                         1};
    /* 1: the store has already answered that it had the flow, which a database store's
     * thread may do before seed_add returns; only -1 is a failure. */
    cr_assert_geq(af_flows_seed_add(sd, &spec, &err), 0, "%s: %s", name, err.message);
  }
  cr_assert_eq(af_flows_seed_end(sd, added, kept, &err), 0, "%s", err.message);
}

Test(seeder, a_queue_smaller_than_the_window_loses_nothing) {
  af_store *st = open_sqlite(4);
  af_error err;
  af_flows *svc = af_flows_new(&(af_flows_config){.store = st}, &err);
  cr_assert_not_null(svc);
  size_t added, kept;
  seed_all(svc, &added, &kept);
  cr_expect_eq(added, FLOWS);
  cr_expect_eq(kept, 0);
  cr_expect_eq(af_flows_count(svc), FLOWS);
  seed_all(svc, &added, &kept);
  cr_expect_eq(added, 0);
  cr_expect_eq(kept, FLOWS);
  af_flows_free(svc);
  af_store_close(st);
}

/* A store in front of another that answers every third insert BUSY, as a full queue would, and
 * answers later (so the seeder holds and batches, as for a database). */
typedef struct busy_store {
  af_store base;
  af_store *inner;
  int inserts, turned_away;
} busy_store;

static void busy_insert(af_store *st, af_store_op *op) {
  busy_store *s = (busy_store *)st;
  if (++s->inserts % 3 == 0) { /* only the seeding thread submits */
    s->turned_away++;
    op->done(op, AF_STORE_BUSY);
    return;
  }
  af_store_insert(s->inner, op);
}
static void busy_modify(af_store *st, af_store_op *op) {
  af_store_modify(((busy_store *)st)->inner, op);
}
static void busy_scan(af_store *st, af_store_op *op) {
  af_store_scan(((busy_store *)st)->inner, op);
}
static void busy_close(af_store *st) { af__store_fini(st); }

static const af_store_ops busy_ops = {busy_insert, busy_modify, busy_scan, NULL, busy_close};

Test(seeder, inserts_turned_away_go_again_and_none_is_lost) {
  af_store *inner = open_sqlite(0);
  static busy_store busy;
  busy = (busy_store){.inner = inner};
  af__store_init(&busy.base, &busy_ops, "busy", NULL);
  memcpy(busy.base.token_key, inner->token_key, sizeof busy.base.token_key);
  af_error err;
  af_flows *svc = af_flows_new(&(af_flows_config){.store = &busy.base}, &err);
  cr_assert_not_null(svc, "%s", err.message);
  size_t added, kept;
  seed_all(svc, &added, &kept);
  cr_expect_eq(added, FLOWS);
  cr_expect_eq(kept, 0);
  cr_expect_gt(busy.turned_away, FLOWS / 4, "the store turned away only %d", busy.turned_away);
  cr_expect_eq(af_flows_count(svc), FLOWS);
  af_flows_free(svc);
  af_store_close(&busy.base);
  af_store_close(inner);
}

Test(seeder, one_flow_at_a_time) {
  af_error err;
  af_flows *svc = af_flows_new(&(af_flows_config){0}, &err);
  af_flow_spec spec = {"one",
                       3,
                       APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_EVENT,
                       APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DRAFT,
                       "d",
                       NULL,
                       0};
  bool added = false;
  cr_expect_eq(af_flows_seed_one(svc, &spec, &added, &err), AF_OK);
  cr_expect(added);
  cr_expect_eq(af_flows_seed_one(svc, &spec, &added, &err), AF_OK);
  cr_expect_not(added, "kept the second time");
  cr_expect_eq(af_flows_count(svc), 1);
  af_flows_free(svc);
}

/* The seeder checks no names (the seed file's reader does): a name longer than any store's key
 * is the store's refusal, told as a ValidationException naming the limit, and nothing is
 * stored; the longest key is stored whole. On memory and SQLite. */
Test(seeder, a_name_longer_than_a_store_keeps_is_refused_whole) {
  static char name[AF_STORE_KEY_MAX + 1];
  memset(name, 'n', sizeof name);
  for (int sqlite = 0; sqlite < 2; sqlite++) {
    af_store *st = sqlite ? open_sqlite(0) : NULL;
    af_error err;
    af_flows *svc = af_flows_new(&(af_flows_config){.store = st}, &err);
    cr_assert_not_null(svc);
    af_flow_spec spec = {.name = name,
                         .name_len = sizeof name,
                         .trigger = APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_EVENT,
                         .status = APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DRAFT};
    bool added = true;
    cr_expect_eq(af_flows_seed_one(svc, &spec, &added, &err), AF_ERR_VALIDATION);
    cr_expect_str_eq(err.message, "a seeded flow's name is too long for the flow store, whose "
                                  "keys hold at most 512 bytes");
    cr_expect_eq(af_flows_count(svc), 0, "nothing stored");
    spec.name_len = AF_STORE_KEY_MAX;
    cr_expect_eq(af_flows_seed_one(svc, &spec, &added, &err), AF_OK, "%s", err.message);
    cr_expect(added);
    cr_expect_eq(af_flows_count(svc), 1);
    af_flows_free(svc);
    af_store_close(st);
    if (sqlite) {
      char path[128];
      snprintf(path, sizeof path, "%s/flows.db", dir);
      cr_expect_eq(unlink(path), 0);
    }
  }
}

/* A store is empty for a seed only when nothing is in it in any account and region: a flow of
 * another account alone makes it not empty (its scope's row is in the scheduler's table). On
 * memory and SQLite. */
Test(seeder, a_store_with_another_accounts_flow_is_not_empty) {
  for (int sqlite = 0; sqlite < 2; sqlite++) {
    for (int other = 0; other < 2; other++) {
      af_store *st = sqlite ? open_sqlite(0) : NULL;
      af_error err;
      af_flows *svc = af_flows_new(&(af_flows_config){.store = st}, &err);
      cr_assert_not_null(svc, "%s", err.message);
      cr_expect(af_flows_store_empty(svc), "a new %s store is empty", sqlite ? "SQLite" : "memory");
      af_flow_spec spec = {.name = "f",
                           .name_len = 1,
                           .trigger = APPFLOW__V1__TRIGGER_TYPE__TRIGGER_TYPE_EVENT,
                           .status = APPFLOW__V1__FLOW_STATUS__FLOW_STATUS_DRAFT,
                           .account = other ? "222222222222" : NULL,
                           .region = other ? "eu-west-1" : NULL};
      cr_assert_eq(af_flows_seed_one(svc, &spec, NULL, &err), AF_OK, "%s", err.message);
      cr_expect_eq(af_flows_count(svc), other ? 0 : 1, "the default account's flows");
      cr_expect(!af_flows_store_empty(svc), "%s store, a flow of %s account",
                sqlite ? "SQLite" : "memory", other ? "another" : "the default");
      af_flows_free(svc);
      af_store_close(st);
      if (sqlite) {
        char path[128];
        snprintf(path, sizeof path, "%s/flows.db*", dir);
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -f %s", path);
        cr_expect_eq(system(cmd), 0);
      }
    }
  }
}
