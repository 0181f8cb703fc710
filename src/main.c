/* appflowd: flags, configuration, signals and wiring. Everything else lives in the modules
 * under src/flows (the service), src/grpc (the gRPC door) and src/bridge (the AWS door). */
#include "admin/server.h"
#include "bridge/catalog_load.h"
#include "bridge/http.h"
#include "bridge/seed.h"
#include "bridge/sigv4.h"
#include "common/accesslog.h"
#include "common/fdlimit.h"
#include "common/file.h"
#include "common/listen.h"
#include "common/metrics.h"
#include "flows/log.h"
#include "flows/service.h"
#include "grpc/abseil.h"
#include "grpc/protoset.h"
#include "grpc/reflection.h"
#include "grpc/server.h"
#include "grpc/tls.h"

#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VERSION
#define AF_VERSION "0"
#endif

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1
#define PEM_MAX (1 << 20)
/* Descriptors besides the AWS door's connections: listeners, the store's, the gRPC door's
 * own, log and seed files. */
#define FD_RESERVE 256

typedef struct options {
  const char *grpc_listen;
  const char *http_listen;  /* NULL: no AWS REST-JSON door */
  const char *admin_listen; /* NULL: no admin listener (and no emulator control API) */
  const char *flows;
  const char *region;
  const char *account;
  const char *tls_cert, *tls_key, *tls_client_ca; /* file names */
  const char *aws_credentials;                    /* NULL: SigV4 not checked */
  const char *store;                              /* store URL */
  af_store_sync store_sync;
  int store_connections;
  int store_queue;
  double store_timeout;
  double run_duration; /* seconds a run stays InProgress */
  int threads;
  int http_threads;
  int http_timeout;
  int http_max_connections;
  double http_request_timeout;
  int max_request_bytes;
  int max_concurrent_streams;
  double min_ping_seconds;
  int max_ping_strikes;
  double max_idle_seconds;
  double grace;
  af_log_level log_level;
  bool metrics_histograms;     /* --metrics-histograms on (the default) */
  bool metrics_histograms_set; /* given on the command line */
  const char *access_log;      /* --access-log FILE or "-"; NULL: off */
} options;

/* What operators watch, made at start-up and shared by the doors and the admin listener. */
typedef struct observers {
  af_metrics *metrics;       /* with --admin-listen only */
  af_access_log *access_log; /* with --access-log only */
} observers;

static void usage(FILE *out) {
  fprintf(out,
          "usage: appflowd [options]\n"
          "Serves Amazon AppFlow's flow lifecycle API over gRPC (appflow.v1.AppFlowService,\n"
          "with health and reflection) and AWS REST-JSON.\n"
          "\n"
          "  --grpc-listen ADDR     gRPC address, HOST:PORT (default 127.0.0.1:50051; port 0\n"
          "                         picks a free port, printed at start-up)\n"
          "  --http-listen ADDR     also serve AWS REST-JSON (POST /stop-flow ...) on HOST:PORT,\n"
          "                         for aws --endpoint-url http://ADDR (default: off)\n"
          "  --admin-listen ADDR    serve the emulator control API (events, run outcomes, the\n"
          "                         clock; see README) as JSON on HOST:PORT, and as the gRPC\n"
          "                         service appflowd.emulator.v1.EmulatorService (default: off)\n"
          "  --aws-credentials FILE check AWS SigV4 signatures on the AWS REST-JSON door against\n"
          "                         the access keys in FILE (see README); default: any accepted\n"
          "  --flows FILE           seed the store from FILE (JSON array; see README): flows\n"
          "                         not in the store yet are added, the others kept\n"
          "  --store URL            where flows are kept (default memory:):\n"
          "                           memory:            this process only\n"
          "                           sqlite:PATH        a database file, created if missing\n"
          "                           postgresql://USER@HOST:PORT/DB\n"
          "                                              shared by any number of replicas\n"
          "  --store-sync S         sqlite: normal (survives a crash of appflowd; default) or\n"
          "                         full (survives power loss)\n"
          "  --store-connections N  postgresql: connections to the database (default 8)\n"
          "  --store-queue N        requests that may wait for the store (default 1024); more\n"
          "                         get ThrottlingException\n"
          "  --store-timeout S      longest a request waits for the store before it gets\n"
          "                         ServiceUnavailableException (default 5)\n"
          "  --region R             region in flow ARNs (default us-east-1)\n"
          "  --account A            12-digit account id in flow ARNs (default 000000000000)\n"
          "  --threads N            gRPC completion-queue threads (default: number of cores)\n"
          "  --http-threads N       HTTP server threads (default: number of cores)\n"
          "  --run-duration S       how long a run stays InProgress before it ends (default 2;\n"
          "                         0: a run has ended by the time StartFlow answers)\n"
          "  --http-timeout S       close HTTP connections whose next request has not arrived\n"
          "                         whole within S seconds, so slow clients cannot hold them\n"
          "                         (default 30)\n"
          "  --http-max-connections N\n"
          "                         HTTP connections served at once (default 10000); a new one\n"
          "                         past them gets 503 ServiceUnavailableException and is closed\n"
          "  --http-request-timeout S\n"
          "                         answer each HTTP request within S seconds of its headers, or\n"
          "                         with 504 RequestTimeoutException (default 30)\n"
          "  --tls-cert FILE        serve gRPC over TLS with this PEM certificate chain\n"
          "  --tls-key FILE         and this PEM private key (both or neither)\n"
          "  --tls-client-ca FILE   require client certificates signed by this PEM CA (mTLS)\n"
          "  --max-request-bytes N  largest request accepted on either door, in bytes (default\n"
          "                         1048576: a flow with 1,000 mapped fields)\n"
          "  --max-concurrent-streams N\n"
          "                         gRPC calls at once on one connection (default 100)\n"
          "  --keepalive-min-ping S clients may ping at most every S seconds while no data\n"
          "                         flows, with or without calls (default 10; 0 = any rate)\n"
          "  --keepalive-max-strikes N\n"
          "                         pings too soon before the connection is closed (default 2;\n"
          "                         0 = no limit)\n"
          "  --max-connection-idle S\n"
          "                         close gRPC connections idle this long (default 1800;\n"
          "                         0 = never)\n"
          "  --shutdown-grace S     seconds in-flight calls get to finish on SIGINT/SIGTERM\n"
          "                         (default 5)\n"
          "  --log-level L          error, warn, info or debug (default info)\n"
          "  --metrics-histograms on|off\n"
          "                         latency histograms in the admin listener's /metrics\n"
          "                         (default on; off saves their cost)\n"
          "  --access-log FILE|-    one JSON line per call on both doors, appended to FILE or\n"
          "                         written to standard output (default: off)\n"
          "  --help                 show this help and exit\n"
          "  --version              show the version and exit\n");
}

__attribute__((format(printf, 1, 2))) static int bad_usage(const char *fmt, ...) {
  va_list ap;
  char msg[512];
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "appflowd: %s\n", msg);
  usage(stderr);
  return EXIT_USAGE;
}

static int parse_int(const char *s, long min, long max, long *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

static int parse_double(const char *s, double min, double max, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || !(v >= min && v <= max))
    return -1;
  *out = v;
  return 0;
}

/* gRPC's and libmicrohttpd's own errors for a malformed address are cryptic: check it here. */
static int valid_listen(const char *addr) {
  char host[256];
  int port;
  return af_listen_split(addr, host, sizeof host, &port) == 0;
}

enum {
  OPT_GRPC_LISTEN = 256,
  OPT_HTTP_LISTEN,
  OPT_ADMIN_LISTEN,
  OPT_AWS_CREDENTIALS,
  OPT_FLOWS,
  OPT_REGION,
  OPT_ACCOUNT,
  OPT_THREADS,
  OPT_HTTP_THREADS,
  OPT_HTTP_TIMEOUT,
  OPT_HTTP_MAX_CONNECTIONS,
  OPT_HTTP_REQUEST_TIMEOUT,
  OPT_RUN_DURATION,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_TLS_CLIENT_CA,
  OPT_MAX_REQUEST,
  OPT_MAX_STREAMS,
  OPT_MIN_PING,
  OPT_PING_STRIKES,
  OPT_MAX_IDLE,
  OPT_GRACE,
  OPT_LOG_LEVEL,
  OPT_STORE,
  OPT_STORE_SYNC,
  OPT_STORE_CONNECTIONS,
  OPT_STORE_QUEUE,
  OPT_STORE_TIMEOUT,
  OPT_METRICS_HISTOGRAMS,
  OPT_ACCESS_LOG,
  OPT_HELP,
  OPT_VERSION
};

static const struct option long_options[] = {
    {"grpc-listen", required_argument, NULL, OPT_GRPC_LISTEN},
    {"http-listen", required_argument, NULL, OPT_HTTP_LISTEN},
    {"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
    {"aws-credentials", required_argument, NULL, OPT_AWS_CREDENTIALS},
    {"flows", required_argument, NULL, OPT_FLOWS},
    {"region", required_argument, NULL, OPT_REGION},
    {"account", required_argument, NULL, OPT_ACCOUNT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"http-threads", required_argument, NULL, OPT_HTTP_THREADS},
    {"http-timeout", required_argument, NULL, OPT_HTTP_TIMEOUT},
    {"http-max-connections", required_argument, NULL, OPT_HTTP_MAX_CONNECTIONS},
    {"http-request-timeout", required_argument, NULL, OPT_HTTP_REQUEST_TIMEOUT},
    {"run-duration", required_argument, NULL, OPT_RUN_DURATION},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
    {"max-request-bytes", required_argument, NULL, OPT_MAX_REQUEST},
    {"max-concurrent-streams", required_argument, NULL, OPT_MAX_STREAMS},
    {"keepalive-min-ping", required_argument, NULL, OPT_MIN_PING},
    {"keepalive-max-strikes", required_argument, NULL, OPT_PING_STRIKES},
    {"max-connection-idle", required_argument, NULL, OPT_MAX_IDLE},
    {"shutdown-grace", required_argument, NULL, OPT_GRACE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"store", required_argument, NULL, OPT_STORE},
    {"store-sync", required_argument, NULL, OPT_STORE_SYNC},
    {"store-connections", required_argument, NULL, OPT_STORE_CONNECTIONS},
    {"store-queue", required_argument, NULL, OPT_STORE_QUEUE},
    {"store-timeout", required_argument, NULL, OPT_STORE_TIMEOUT},
    {"metrics-histograms", required_argument, NULL, OPT_METRICS_HISTOGRAMS},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

/* A whole-number flag within [min, max]; -1 to go on, or an exit status. */
static int int_flag(const char *flag, const char *arg, long min, long max, int *out) {
  long v;
  if (parse_int(arg, min, max, &v) != 0)
    return bad_usage("%s takes a whole number from %ld to %ld, not '%s'", flag, min, max, arg);
  *out = (int)v;
  return -1;
}

static int seconds_flag(const char *flag, const char *arg, double max, double *out) {
  if (parse_double(arg, 0, max, out) != 0)
    return bad_usage("%s takes seconds from 0 to %.0f, not '%s'", flag, max, arg);
  return -1;
}

static int listen_flag(const char *flag, const char *arg, const char **out) {
  if (!valid_listen(arg))
    return bad_usage("%s takes HOST:PORT (e.g. 127.0.0.1:50051), not '%s'", flag, arg);
  *out = arg;
  return -1;
}

/* Returns -1 to go on, or an exit status. */
static int apply_option(options *o, int c, const char *arg) {
  switch (c) {
  case OPT_GRPC_LISTEN:
    return listen_flag("--grpc-listen", arg, &o->grpc_listen);
  case OPT_HTTP_LISTEN:
    return listen_flag("--http-listen", arg, &o->http_listen);
  case OPT_ADMIN_LISTEN:
    return listen_flag("--admin-listen", arg, &o->admin_listen);
  case OPT_AWS_CREDENTIALS:
    o->aws_credentials = arg;
    return -1;
  case OPT_FLOWS:
    o->flows = arg;
    return -1;
  case OPT_REGION:
    o->region = arg;
    return -1;
  case OPT_ACCOUNT:
    o->account = arg;
    return -1;
  case OPT_THREADS:
    return int_flag("--threads", arg, 1, 256, &o->threads);
  case OPT_HTTP_THREADS:
    return int_flag("--http-threads", arg, 1, 256, &o->http_threads);
  case OPT_HTTP_TIMEOUT:
    return int_flag("--http-timeout", arg, 1, 3600, &o->http_timeout);
  case OPT_HTTP_MAX_CONNECTIONS:
    return int_flag("--http-max-connections", arg, 1, 1000000, &o->http_max_connections);
  case OPT_HTTP_REQUEST_TIMEOUT:
    if (parse_double(arg, 0.05, 3600, &o->http_request_timeout) != 0)
      return bad_usage("--http-request-timeout takes seconds from 0.05 to 3600, not '%s'", arg);
    return -1;
  case OPT_RUN_DURATION:
    if (parse_double(arg, 0, 86400, &o->run_duration) != 0)
      return bad_usage("--run-duration takes seconds from 0 to 86400, not '%s'", arg);
    return -1;
  case OPT_TLS_CERT:
    o->tls_cert = arg;
    return -1;
  case OPT_TLS_KEY:
    o->tls_key = arg;
    return -1;
  case OPT_TLS_CLIENT_CA:
    o->tls_client_ca = arg;
    return -1;
  case OPT_MAX_REQUEST:
    return int_flag("--max-request-bytes", arg, 1024, 64 << 20, &o->max_request_bytes);
  case OPT_MAX_STREAMS:
    return int_flag("--max-concurrent-streams", arg, 1, 100000, &o->max_concurrent_streams);
  case OPT_MIN_PING:
    return seconds_flag("--keepalive-min-ping", arg, 86400, &o->min_ping_seconds);
  case OPT_PING_STRIKES:
    return int_flag("--keepalive-max-strikes", arg, 0, 1000, &o->max_ping_strikes);
  case OPT_MAX_IDLE:
    return seconds_flag("--max-connection-idle", arg, 86400 * 24, &o->max_idle_seconds);
  case OPT_GRACE:
    return seconds_flag("--shutdown-grace", arg, 3600, &o->grace);
  case OPT_LOG_LEVEL:
    if (af_log_level_parse(arg, &o->log_level) != 0)
      return bad_usage("--log-level takes error, warn, info or debug, not '%s'", arg);
    return -1;
  case OPT_STORE:
    o->store = arg;
    return -1;
  case OPT_STORE_SYNC:
    if (strcmp(arg, "normal") != 0 && strcmp(arg, "full") != 0)
      return bad_usage("--store-sync takes normal or full, not '%s'", arg);
    o->store_sync = strcmp(arg, "full") == 0 ? AF_STORE_SYNC_FULL : AF_STORE_SYNC_NORMAL;
    return -1;
  case OPT_STORE_CONNECTIONS:
    return int_flag("--store-connections", arg, 1, 256, &o->store_connections);
  case OPT_STORE_QUEUE:
    return int_flag("--store-queue", arg, 1, 1000000, &o->store_queue);
  case OPT_STORE_TIMEOUT:
    if (parse_double(arg, 0.05, 3600, &o->store_timeout) != 0)
      return bad_usage("--store-timeout takes seconds from 0.05 to 3600, not '%s'", arg);
    return -1;
  case OPT_METRICS_HISTOGRAMS:
    if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
      return bad_usage("--metrics-histograms takes on or off, not '%s'", arg);
    o->metrics_histograms = strcmp(arg, "on") == 0;
    o->metrics_histograms_set = true;
    return -1;
  case OPT_ACCESS_LOG:
    if (arg[0] == '\0')
      return bad_usage("--access-log takes a file name, or - for standard output");
    o->access_log = arg;
    return -1;
  case OPT_HELP:
    usage(stdout);
    return 0;
  case OPT_VERSION:
    printf("appflowd %s\n", AF_VERSION);
    return 0;
  default:
    usage(stderr);
    return EXIT_USAGE;
  }
}

static int check_options(const options *o) {
  if ((o->tls_cert == NULL) != (o->tls_key == NULL))
    return bad_usage("--tls-cert and --tls-key go together: give both or neither");
  if (o->aws_credentials != NULL && o->http_listen == NULL)
    return bad_usage("--aws-credentials needs --http-listen: it guards the AWS REST-JSON door");
  if (o->tls_client_ca != NULL && o->tls_cert == NULL)
    return bad_usage("--tls-client-ca needs --tls-cert and --tls-key: mTLS is TLS first");
  if (o->metrics_histograms_set && o->admin_listen == NULL)
    return bad_usage("--metrics-histograms needs --admin-listen: metrics are served there");
  return -1;
}

static int parse_options(int argc, char **argv, options *o) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int ncores = cores > 0 ? (int)cores : 1;
  *o = (options){.grpc_listen = "127.0.0.1:50051",
                 .threads = ncores,
                 .http_threads = ncores,
                 .http_timeout = AF_BRIDGE_DEFAULT_TIMEOUT,
                 .http_max_connections = AF_BRIDGE_DEFAULT_MAX_CONNECTIONS,
                 .http_request_timeout = AF_BRIDGE_DEFAULT_REQUEST_TIMEOUT,
                 .max_request_bytes = AF_DEFAULT_MAX_REQUEST_BYTES,
                 .max_concurrent_streams = AF_GRPC_DEFAULT_MAX_STREAMS,
                 .min_ping_seconds = AF_GRPC_DEFAULT_MIN_PING_MS / 1000.0,
                 .max_ping_strikes = AF_GRPC_DEFAULT_PING_STRIKES,
                 .max_idle_seconds = AF_GRPC_DEFAULT_MAX_IDLE_MS / 1000.0,
                 .grace = 5,
                 .log_level = AF_LOG_INFO,
                 .store = "memory:",
                 .store_sync = AF_STORE_SYNC_NORMAL,
                 .store_connections = AF_STORE_DEFAULT_CONNECTIONS,
                 .store_queue = AF_STORE_DEFAULT_QUEUE,
                 .store_timeout = AF_STORE_DEFAULT_TIMEOUT_S,
                 .run_duration = 2,
                 .metrics_histograms = true};
  opterr = 1; /* getopt names an unknown flag or missing argument itself */
  int c;
  while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    int rc = apply_option(o, c, optarg);
    if (rc >= 0)
      return rc;
  }
  if (optind < argc)
    return bad_usage("unexpected argument '%s'", argv[optind]);
  return check_options(o);
}

/* Reads a PEM file for a TLS flag; NULL (after saying why) when it cannot be used. */
static char *read_pem(const char *flag, const char *path) {
  char *buf;
  size_t len;
  int e = af_read_file(path, PEM_MAX, &buf, &len, NULL);
  if (e != 0) {
    fprintf(stderr, "appflowd: %s %s: %s\n", flag, path,
            e == EFBIG ? "over 1 MiB: not a PEM file" : strerror(e));
    return NULL;
  }
  if (strstr(buf, "-----BEGIN ") == NULL) {
    fprintf(stderr, "appflowd: %s %s: not a PEM file (no -----BEGIN line)\n", flag, path);
    free(buf);
    return NULL;
  }
  return buf;
}

typedef struct pems {
  char *cert, *key, *ca;
} pems;

static void free_pems(pems *p) {
  free(p->cert);
  free(p->key);
  free(p->ca);
}

/* Says which file is wrong, rather than have every handshake fail later. */
static bool tls_usable(const options *o, const pems *p) {
  char why[256];
  switch (af_tls_check(p->cert, p->key, p->ca, why, sizeof why)) {
  case AF_TLS_OK:
    return true;
  case AF_TLS_CERT:
    fprintf(stderr, "appflowd: --tls-cert %s %s\n", o->tls_cert, why);
    break;
  case AF_TLS_KEY:
    fprintf(stderr, "appflowd: --tls-key %s %s\n", o->tls_key, why);
    break;
  case AF_TLS_CLIENT_CA:
    fprintf(stderr, "appflowd: --tls-client-ca %s %s\n", o->tls_client_ca, why);
    break;
  }
  return false;
}

static int load_pems(const options *o, pems *p) {
  *p = (pems){NULL, NULL, NULL};
  if (o->tls_cert == NULL)
    return 0;
  p->cert = read_pem("--tls-cert", o->tls_cert);
  p->key = p->cert ? read_pem("--tls-key", o->tls_key) : NULL;
  p->ca = p->key && o->tls_client_ca ? read_pem("--tls-client-ca", o->tls_client_ca) : NULL;
  if (p->cert && p->key && (p->ca || !o->tls_client_ca) && tls_usable(o, p))
    return 0;
  free_pems(p);
  return -1;
}

/* The access keys of --aws-credentials (a request signed for any region is taken, and acts in
 * that region); 0, or -1 after saying which line of the file is wrong. */
static int load_creds(const options *o, af_sigv4_creds **out) {
  *out = NULL;
  if (o->aws_credentials == NULL)
    return 0;
  af_error err;
  *out = af_sigv4_creds_load(o->aws_credentials, &err);
  if (*out == NULL)
    fprintf(stderr, "appflowd: --aws-credentials %s\n", err.message);
  return *out ? 0 : -1;
}

/* The connector and entity catalogs compiled in from data/; NULL after saying why. */
static af_catalog *load_catalog(void) {
  char why[1024];
  af_catalog *cat = af_catalog_new();
  if (cat == NULL || af_catalog_load_builtin(cat, why, sizeof why) != 0) {
    fprintf(stderr, "appflowd: the connector catalog: %s\n", cat ? why : "out of memory");
    af_catalog_free(cat);
    return NULL;
  }
  return cat;
}

/* ResetConnectorMetadataCache reads the seed file's profile entities again. */
typedef struct reload_ctx {
  af_flows *svc;
  const char *path;
} reload_ctx;

static int reload_entities(void *ctx, af_catalog *cat, char *msg, size_t msgsz) {
  (void)cat;
  const reload_ctx *r = ctx;
  return af_seed_reload_entities(r->svc, r->path, msg, msgsz);
}

static int load_flows(af_flows *svc, const char *path, af_seed_result *res, const af_log *log) {
  af_seed_error e;
  if (af_seed_load_file_alone(svc, path, res, &e) == 0) {
    af_log_printf(log, AF_LOG_INFO,
                  "seed %s: %zu flows, %zu added, %zu kept (already stored); %zu connector "
                  "profiles, %zu added; %zu custom connectors, %zu added",
                  path, res->flows, res->added, res->kept, res->profiles, res->profiles_added,
                  res->connectors, res->connectors_added);
    return 0;
  }
  if (e.line > 0)
    fprintf(stderr, "%s:%d:%d: %s\n", path, e.line, e.column, e.message);
  else
    fprintf(stderr, "%s: %s\n", path, e.message);
  return -1;
}

/* The store --store names; NULL (after saying why, with the exit status in *status) when it
 * cannot be used: 2 for a URL or database this appflowd cannot use, 1 for one it cannot reach
 * now. */
static af_store *open_store(const options *o, const af_log *log, int *status) {
  af_store_config cfg = {.log = log,
                         .sync = o->store_sync,
                         .connections = o->store_connections,
                         .queue = (size_t)o->store_queue,
                         .timeout_seconds = o->store_timeout};
  af_store_open_rc why;
  char msg[1024];
  af_store *s = af_store_open(o->store, &cfg, &why, msg, sizeof msg);
  if (s != NULL)
    return s;
  fprintf(stderr, "appflowd: --store: %s\n", msg);
  *status = why == AF_STORE_UNREACHABLE || why == AF_STORE_OPEN_FAILED ? EXIT_RUNTIME : EXIT_USAGE;
  return NULL;
}

/* Every connection holds a descriptor: the soft limit goes as far as the hard one allows, and
 * when that is short of what the AWS door's limit needs, the log says what there is. */
static void raise_fd_limit(const options *o, const af_log *log) {
  af_fd_limit lim;
  af_fd_limit_raise(&lim);
  unsigned long long need =
      FD_RESERVE + af_bridge_connection_slots((unsigned)o->http_max_connections);
  if (o->http_listen != NULL && lim.soft < need)
    af_log_printf(
        log, AF_LOG_WARN,
        "open files: the limit could be raised to %llu only, below the %llu the AWS door's "
        "--http-max-connections %d needs with the rest: new connections past it wait "
        "unanswered; raise the hard limit on open files or lower "
        "--http-max-connections",
        lim.soft, need, o->http_max_connections);
}

/* gRPC's own log lines are for debugging gRPC: appflowd reports what they mean itself. */
static void drop_grpc_log(gpr_log_func_args *args) { (void)args; }

/* Blocks the shutdown signals in every thread (gRPC's included, which inherit the mask) so
 * only the main thread's sigwait sees them. */
static void block_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, set, NULL);
  signal(SIGPIPE, SIG_IGN);
}

/* The start-up line, printed whatever the log level: tests and scripts read ports from it. */
static void announce(const options *o, const af_seed_result *seed, af_store *store,
                     const af_grpc_server *grpc, const af_bridge_server *http,
                     const af_admin_server *admin) {
  char http_part[640] = "", seed_part[96] = "";
  if (http != NULL)
    snprintf(http_part, sizeof http_part, " http=%s http_port=%d sigv4=%s", o->http_listen,
             af_bridge_server_port(http), o->aws_credentials ? "on" : "off");
  if (admin != NULL) {
    size_t n = strlen(http_part);
    snprintf(http_part + n, sizeof http_part - n, " admin=%s admin_port=%d", o->admin_listen,
             af_admin_server_port(admin));
  }
  if (o->flows != NULL)
    snprintf(seed_part, sizeof seed_part, " seed_added=%zu seed_kept=%zu", seed->added, seed->kept);
  fprintf(stderr,
          "appflowd %s listening: grpc=%s port=%d%s flows=%zu threads=%d region=%s store=%s%s%s\n",
          AF_VERSION, o->grpc_listen, af_grpc_server_port(grpc), http_part, seed->flows, o->threads,
          o->region ? o->region : "us-east-1", store->display, seed_part,
          o->tls_client_ca ? " tls=mutual" : (o->tls_cert ? " tls=on" : ""));
  fflush(stderr);
}

static af_grpc_config grpc_config(const options *o, const pems *p, const af_reflection *refl,
                                  const af_log *log, const observers *obs) {
  return (af_grpc_config){
      .listen = o->grpc_listen,
      .threads = o->threads,
      .max_receive_bytes = o->max_request_bytes,
      .max_concurrent_streams = o->max_concurrent_streams,
      .min_ping_interval_ms = o->min_ping_seconds == 0 ? -1 : (int)(o->min_ping_seconds * 1000),
      .max_ping_strikes = o->max_ping_strikes == 0 ? -1 : o->max_ping_strikes,
      .max_connection_idle_ms = o->max_idle_seconds == 0 ? -1 : (int)(o->max_idle_seconds * 1000),
      .tls = {p->cert, p->key, p->ca},
      .reflection = refl,
      .log = log,
      .emulator = o->admin_listen != NULL,
      .metrics = obs->metrics,
      .access_log = obs->access_log};
}

static int serve(const options *o, const pems *p, const af_sigv4_creds *creds, af_flows *svc,
                 const af_seed_result *seed, const af_log *log, const sigset_t *signals,
                 const observers *obs) {
  /* the emulator's service last, listed only when served */
  static const char *const services[] = {"appflow.v1.AppFlowService",
                                         "grpc.health.v1.Health",
                                         "grpc.reflection.v1.ServerReflection",
                                         "grpc.reflection.v1alpha.ServerReflection",
                                         "appflowd.emulator.v1.EmulatorService",
                                         NULL};
  const char *listed[sizeof services / sizeof services[0]];
  memcpy(listed, services, sizeof services);
  if (o->admin_listen == NULL)
    listed[4] = NULL;
  af_error err;
  af_reflection *refl = af_reflection_new(af_protoset, af_protoset_len, listed, &err);
  if (refl == NULL) {
    fprintf(stderr, "appflowd: reflection: %s\n", err.message);
    return EXIT_RUNTIME;
  }
  af_grpc_config gc = grpc_config(o, p, refl, log, obs);
  af_grpc_server *grpc = af_grpc_server_start(&gc, svc, &err);
  af_bridge_server *http = NULL;
  if (grpc != NULL && o->http_listen != NULL) {
    af_bridge_config hc = {.listen = o->http_listen,
                           .max_body = (size_t)o->max_request_bytes,
                           .threads = o->http_threads,
                           .timeout_seconds = (unsigned)o->http_timeout,
                           .max_connections = (unsigned)o->http_max_connections,
                           .request_timeout = o->http_request_timeout,
                           .log = log,
                           .creds = creds,
                           .metrics = obs->metrics,
                           .access_log = obs->access_log};
    http = af_bridge_server_start(&hc, svc, &err);
  }
  af_admin_server *admin = NULL;
  bool http_ok = o->http_listen == NULL || http != NULL;
  if (grpc != NULL && http_ok && o->admin_listen != NULL) {
    af_admin_config ac = {.listen = o->admin_listen,
                          .max_body = (size_t)o->max_request_bytes,
                          .log = log,
                          .metrics = obs->metrics,
                          .access_log = obs->access_log,
                          .seed_path = o->flows};
    admin = af_admin_server_start(&ac, svc, &err);
  }
  if (grpc == NULL || !http_ok || (o->admin_listen != NULL && admin == NULL)) {
    fprintf(stderr, "appflowd: %s\n", err.message);
    af_admin_server_stop(admin);
    af_bridge_server_stop(http, 0);
    af_grpc_server_stop(grpc, 0);
    af_reflection_free(refl);
    return EXIT_RUNTIME;
  }
  announce(o, seed, af_flows_store(svc), grpc, http, admin);
  int sig = 0;
  sigwait(signals, &sig);
  af_log_printf(log, AF_LOG_INFO, "%s: shutting down (grace %.1fs)", strsignal(sig), o->grace);
  af_admin_server_drain(admin); /* /readyz: 503 from now on */
  /* Both doors drain at once: the AWS door refuses new work at once, the gRPC door's stop
   * waits out its grace, then whatever HTTP requests are left get what remains of it. */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  af_bridge_server_drain(http);
  af_grpc_server_stop(grpc, o->grace);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double spent = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  af_bridge_server_stop(http, spent < o->grace ? o->grace - spent : 0);
  af_admin_server_stop(admin);
  af_reflection_free(refl);
  af_log_printf(log, AF_LOG_INFO, "stopped");
  return 0;
}

/* The registry (with --admin-listen) and the access log (with --access-log); -1 to go on, or
 * an exit status after saying why. */
static int open_observers(const options *o, observers *obs) {
  *obs = (observers){NULL, NULL};
  char msg[512];
  if (o->access_log != NULL &&
      (obs->access_log = af_access_log_open(o->access_log, msg, sizeof msg)) == NULL) {
    fprintf(stderr, "appflowd: --access-log %s\n", msg);
    return EXIT_USAGE;
  }
  if (o->admin_listen != NULL && (obs->metrics = af_metrics_new(o->metrics_histograms)) == NULL) {
    fprintf(stderr, "appflowd: out of memory\n");
    af_access_log_close(obs->access_log);
    return EXIT_RUNTIME;
  }
  return -1;
}

/* Everything after the flags and the observers (options by value: the body reads o.X). */
static int run(options o, const observers *obs) {
  int rc;
  af_log log = {o.log_level, stderr};
  af_error err;
  /* The shutdown signals are blocked before any thread starts (the store's too), so only
   * sigwait in this thread sees them. */
  sigset_t signals;
  block_signals(&signals);
  raise_fd_limit(&o, &log);
  af_store *store = open_store(&o, &log, &rc);
  if (store == NULL)
    return rc;
  if (obs->metrics != NULL && !af_store_time_ops(store, obs->metrics)) {
    fprintf(stderr, "appflowd: out of memory\n");
    af_store_close(store);
    return EXIT_RUNTIME;
  }
  af_catalog *catalog = load_catalog();
  if (catalog == NULL) {
    af_store_close(store);
    return EXIT_RUNTIME;
  }
  af_flows *svc =
      af_flows_new(&(af_flows_config){.region = o.region,
                                      .account = o.account,
                                      .log = &log,
                                      .store = store,
                                      .catalog = catalog,
                                      .run_duration_ms = (int64_t)(o.run_duration * 1000 + 0.5)},
                   &err);
  if (svc == NULL) {
    fprintf(stderr, "appflowd: %s\n", err.message);
    af_catalog_free(catalog);
    af_store_close(store);
    return err.code == AF_ERR_VALIDATION ? EXIT_USAGE : EXIT_RUNTIME;
  }
  reload_ctx reload = {svc, o.flows};
  if (o.flows != NULL)
    af_catalog_set_reloader(catalog, reload_entities, &reload);
  af_seed_result seed = {0};
  pems p = {NULL, NULL, NULL};
  af_sigv4_creds *creds = NULL;
  if ((o.flows != NULL && load_flows(svc, o.flows, &seed, &log) != 0) ||
      load_creds(&o, &creds) != 0 || load_pems(&o, &p) != 0) {
    af_sigv4_creds_free(creds);
    af_flows_free(svc);
    af_catalog_free(catalog);
    af_store_close(store);
    return EXIT_USAGE;
  }
  /* Scheduled runs fire from now on; a restart first ends the runs a crash left running. */
  size_t interrupted = 0;
  if (af_flows_scheduler_start(svc, 0, &interrupted, &err) != AF_OK) {
    fprintf(stderr, "appflowd: %s\n", err.message);
    af_sigv4_creds_free(creds);
    free_pems(&p);
    af_flows_free(svc);
    af_catalog_free(catalog);
    af_store_close(store);
    return EXIT_RUNTIME;
  }
  if (interrupted > 0)
    af_log_printf(&log, AF_LOG_INFO, "restart: %zu run(s) left in progress ended as interrupted",
                  interrupted);
  if (o.log_level < AF_LOG_DEBUG)
    gpr_set_log_function(drop_grpc_log);
  af_grpc_abseil_production();
  grpc_init();
  rc = serve(&o, &p, creds, svc, &seed, &log, &signals, obs);
  grpc_shutdown();
  free_pems(&p);
  af_sigv4_creds_free(creds);
  af_flows_free(svc);
  af_catalog_free(catalog);
  af_store_close(store);
  return rc;
}

/* glibc hands the top of a heap back to the kernel as soon as 128 KiB of it are free, and
 * takes it back (a page fault per page) on the next malloc that needs it. Every StartFlow
 * replaces its flow's node, 15 KB with a full run log, so calls freed and grew the same pages
 * over and over: at 4x32 that was half a call's CPU (bench/RESULTS.md, "malloc's trim").
 * Setting the thresholds also stops glibc from moving them as big blocks come and go. */
static void tune_malloc(void) {
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

int main(int argc, char **argv) {
  tune_malloc();
  options o;
  int rc = parse_options(argc, argv, &o);
  if (rc >= 0)
    return rc;
  observers obs;
  if ((rc = open_observers(&o, &obs)) >= 0)
    return rc;
  rc = run(o, &obs);
  af_access_log_close(obs.access_log); /* everything that wrote to them has stopped */
  af_metrics_free(obs.metrics);
  return rc;
}
