/* What every store shares: opening by URL, waiting for one op, health watchers. */
#include "flows/store.h"

#include "common/latch.h"
#include "common/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t af_store_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool has_prefix(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

af_store *af_store_open(const char *url, const af_store_config *cfg, af_store_open_rc *why,
                        char *msg, size_t msgsz) {
  af_store_config none = {0};
  cfg = cfg ? cfg : &none;
  *why = AF_STORE_OPENED;
  msg[0] = '\0';
  if (url == NULL || strcmp(url, "memory:") == 0 || strcmp(url, "memory") == 0) {
    af_store *s = af_store_memory_new(cfg);
    if (s == NULL) {
      *why = AF_STORE_OPEN_FAILED;
      snprintf(msg, msgsz, "out of memory");
    }
    return s;
  }
  if (has_prefix(url, "sqlite:"))
    return af__store_sqlite_open(url + strlen("sqlite:"), cfg, why, msg, msgsz);
  if (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://"))
    return af__store_pg_open(url, cfg, why, msg, msgsz);
  *why = AF_STORE_BAD_URL;
  snprintf(msg, msgsz,
           "unknown store '%.64s': use memory:, sqlite:PATH or postgresql://USER@HOST:PORT/DB",
           url);
  return NULL;
}

void af_store_close(af_store *s) {
  if (s != NULL)
    s->ops->close(s);
}

/* ---- waiting for one op ---- */

typedef struct wait_op {
  af_store_op op;      /* first: done gets this pointer back */
  af_store_op *theirs; /* the caller's, whose done this replaces */
  af_latch latch;
  af_store_rc rc;
} wait_op;

static void wake(af_store_op *op, af_store_rc rc) {
  wait_op *w = (wait_op *)op;
  w->theirs->verdict = op->verdict;
  w->rc = rc;
  af_latch_open(&w->latch);
}

af_store_rc af_store_run(af_store *s, void (*kind)(af_store *, af_store_op *), af_store_op *op) {
  wait_op w = {.op = *op, .theirs = op};
  w.op.done = wake;
  af_latch_init(&w.latch);
  kind(s, &w.op);
  af_latch_wait(&w.latch);
  return w.rc;
}

/* ---- timing ---- */

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The op is done: record, then hand it back to its caller's done (which may free or resubmit
 * it, so nothing of op is read after). */
static void timed_done(af_store_op *op, af_store_rc rc) {
  af_store_done done = op->timed_done;
  af_metric_observe_ns(op->timing, op->timing_series, now_ns() - op->submitted_ns);
  op->done = done;
  done(op, rc);
}

void af__store_time(af_store *s, af_store_op *op, size_t series) {
  op->timed_done = op->done;
  op->timing = s->timing;
  op->timing_series = series;
  op->submitted_ns = now_ns();
  op->done = timed_done;
}

/* The store's kind, as its URL begins: "memory", "sqlite", "postgresql". */
static void kind_of(const af_store *s, char *out, size_t n) {
  snprintf(out, n, "%.*s", (int)strcspn(s->display, ":"), s->display);
}

/* From 100 microseconds (the memory store answers in a few) to the longest --store-timeout
 * worth seeing. */
static const double store_buckets[] = {.0001, .00025, .0005, .001, .0025, .005, .01, .025,
                                       .05,   .1,     .25,   .5,   1,     2.5,  5,   10};

bool af_store_time_ops(af_store *s, af_metrics *m) {
  static const char *const labels[] = {"store", "op"};
  static const char *const ops[] = {"insert", "modify", "scan"};
  if (!af_metrics_histograms(m))
    return true; /* the histogram is all there is to record: ops stay untimed */
  af_metric *f =
      af_metric_new(AF_METRIC_HISTOGRAM, "appflowd_store_operation_seconds",
                    "Time from an operation's submission to the store to its answer, "
                    "queueing included.",
                    2, labels, 3, store_buckets, sizeof store_buckets / sizeof store_buckets[0]);
  char kind[32];
  kind_of(s, kind, sizeof kind);
  for (size_t i = 0; f != NULL && i < 3; i++) {
    if (af_metric_label(f, i, (const char *const[]){kind, ops[i]}) != 0) {
      af_metric_free(f);
      f = NULL;
    }
  }
  if (f == NULL)
    return false;
  af_metrics_add(m, f);
  s->timing = f;
  return true;
}

/* ---- health ---- */

bool af_store_watch(af_store *s, af_store_health_fn fn, void *ctx) {
  pthread_mutex_lock(&s->watch_lock);
  bool ok = s->nwatchers < AF_STORE_WATCHERS;
  if (ok) {
    s->watchers[s->nwatchers].fn = fn;
    s->watchers[s->nwatchers].ctx = ctx;
    s->nwatchers++;
  }
  pthread_mutex_unlock(&s->watch_lock);
  return ok;
}

void af_store_unwatch(af_store *s, af_store_health_fn fn, void *ctx) {
  pthread_mutex_lock(&s->watch_lock);
  for (size_t i = 0; i < s->nwatchers; i++) {
    if (s->watchers[i].fn == fn && s->watchers[i].ctx == ctx) {
      s->watchers[i] = s->watchers[--s->nwatchers];
      break;
    }
  }
  pthread_mutex_unlock(&s->watch_lock);
}

void af__store_set_healthy(af_store *s, bool healthy) {
  /* Under the lock, so watchers hear changes in the order they happened. */
  pthread_mutex_lock(&s->watch_lock);
  bool was = atomic_exchange(&s->healthy, healthy);
  if (was != healthy) {
    af_log_printf(s->log, healthy ? AF_LOG_INFO : AF_LOG_WARN, "store %s: %s", s->display,
                  healthy ? "serving again" : "unavailable");
    for (size_t i = 0; i < s->nwatchers; i++)
      s->watchers[i].fn(s->watchers[i].ctx, healthy);
  }
  pthread_mutex_unlock(&s->watch_lock);
}

void af__store_init(af_store *s, const af_store_ops *ops, const char *display,
                    const af_store_config *cfg) {
  s->ops = ops;
  snprintf(s->display, sizeof s->display, "%s", display);
  s->log = cfg ? cfg->log : NULL;
  atomic_init(&s->healthy, true);
  atomic_init(&s->commits, 0);
  atomic_init(&s->fresh, false);
  atomic_init(&s->memo_bytes, 0);
  s->timing = NULL;
  pthread_mutex_init(&s->watch_lock, NULL);
  s->nwatchers = 0;
}

void af__store_fini(af_store *s) { pthread_mutex_destroy(&s->watch_lock); }

void af_store_insert_all(af_store *s, af_store_op **ops, size_t n) {
  if (s->ops->insert_all == NULL) {
    for (size_t i = 0; i < n; i++)
      af_store_insert(s, ops[i]);
    return;
  }
  size_t live = 0; /* the late ones are answered here and dropped from ops */
  for (size_t i = 0; i < n; i++) {
    if (af__store_late(ops[i]))
      continue;
    if (s->timing != NULL)
      af__store_time(s, ops[i], AF_STORE_TIMED_INSERT);
    ops[live++] = ops[i];
  }
  s->ops->insert_all(s, ops, live);
}

bool af__store_late(af_store_op *op) {
  if (op->deadline_ms <= 0 || af_store_now_ms() < op->deadline_ms)
    return false;
  op->done(op, AF_STORE_UNAVAILABLE);
  return true;
}

void af__store_set_deadline(af_store_op *op, double timeout_seconds) {
  double t = timeout_seconds > 0 ? timeout_seconds : AF_STORE_DEFAULT_TIMEOUT_S;
  op->own_deadline_ms = af_store_now_ms() + (int64_t)(t * 1000);
  if (op->deadline_ms <= 0 || op->deadline_ms > op->own_deadline_ms)
    op->deadline_ms = op->own_deadline_ms;
}

const char *af__store_table_name(af_store_table t) {
  switch (t) {
  case AF_TABLE_FLOWS:
    return "appflowd_flows";
  case AF_TABLE_PROFILES:
    return "appflowd_profiles";
  case AF_TABLE_CONNECTORS:
    return "appflowd_connectors";
  case AF_TABLE_TIMERS:
    return "appflowd_timers";
  case AF_STORE_TABLES:
    break;
  }
  return "appflowd_unknown";
}

bool af__store_sql_for(char *out, size_t n, const char *head, af_store_table t, const char *tail) {
  int len = snprintf(out, n, "%s%s%s", head, af__store_table_name(t), tail);
  return len > 0 && (size_t)len < n;
}

bool af__bytes_equal(af_bytes a, af_bytes b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

int af__store_random(uint8_t *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r < 0 && errno != EINTR)
      return -1;
    got += r > 0 ? (size_t)r : 0;
  }
  return 0;
}

/* ---- scopes in a database store's keys ---- */

bool af__db_key(const af_store_op *op, const char *key, size_t len, af_db_key *out) {
  size_t prefix = op->scope_len > 0 ? op->scope_len + 2 : 0;
  if (prefix + len > AF_STORE_DB_KEY_MAX)
    return false;
  if (prefix > 0) {
    out->bytes[0] = '~';
    memcpy(out->bytes + 1, op->scope, op->scope_len);
    out->bytes[prefix - 1] = '/';
  }
  if (len > 0)
    memcpy(out->bytes + prefix, key, len);
  out->len = prefix + len;
  out->bytes[out->len] = '\0';
  out->prefix_len = prefix;
  return true;
}

bool af__db_scan_bounds(const af_store_op *op, af_db_key *lo, af_db_key *hi) {
  if (!af__db_key(op, op->key, op->key != NULL ? op->key_len : 0, lo) ||
      !af__db_key(op, AF_STORE_PRIVATE_KEY, op->scope_len > 0 ? 1 : 0, hi))
    return false;
  if (op->scope_len == 0) { /* the default scope ends where the others begin */
    memcpy(hi->bytes, "~", 2);
    hi->len = 1;
  }
  return true;
}
