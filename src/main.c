/* appflowd: flags, configuration, signals and wiring. Everything else lives in the modules
 * under src/flows (the service) and src/grpc (the gRPC door). */
#include "bridge/http.h"
#include "common/listen.h"
#include "flows/log.h"
#include "flows/seed.h"
#include "flows/service.h"
#include "grpc/server.h"

#include <getopt.h>
#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AF_VERSION
#define AF_VERSION "0"
#endif

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1

typedef struct options {
  const char *grpc_listen;
  const char *http_listen; /* NULL: no AWS REST-JSON door */
  const char *flows;
  const char *region;
  const char *account;
  int threads;
  int http_threads;
  double grace;
  af_log_level log_level;
} options;

static void usage(FILE *out) {
  fprintf(out, "usage: appflowd [options]\n"
               "Serves Amazon AppFlow's flow-control API (StopFlow) over gRPC\n"
               "(appflow.v1.AppFlowService).\n"
               "\n"
               "  --grpc-listen ADDR   gRPC address, HOST:PORT (default 127.0.0.1:50051;\n"
               "                       port 0 picks a free port, printed at start-up)\n"
               "  --flows FILE         seed the flow table from FILE (JSON array; see README)\n"
               "  --region R           region in flow ARNs (default us-east-1)\n"
               "  --account A          12-digit account id in flow ARNs (default 000000000000)\n"
               "  --threads N          gRPC completion-queue threads (default: number of cores)\n"
               "  --shutdown-grace S   seconds in-flight calls get to finish on SIGINT/SIGTERM\n"
               "                       (default 5)\n"
               "  --log-level L        error, warn, info or debug (default info)\n"
               "  --help               show this help and exit\n"
               "  --version            show the version and exit\n");
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

enum {
  OPT_GRPC_LISTEN = 256,
  OPT_HTTP_LISTEN,
  OPT_HTTP_THREADS,
  OPT_FLOWS,
  OPT_REGION,
  OPT_ACCOUNT,
  OPT_THREADS,
  OPT_GRACE,
  OPT_LOG_LEVEL,
  OPT_HELP,
  OPT_VERSION
};

static const struct option long_options[] = {
    {"grpc-listen", required_argument, NULL, OPT_GRPC_LISTEN},
    {"http-listen", required_argument, NULL, OPT_HTTP_LISTEN},
    {"http-threads", required_argument, NULL, OPT_HTTP_THREADS},
    {"flows", required_argument, NULL, OPT_FLOWS},
    {"region", required_argument, NULL, OPT_REGION},
    {"account", required_argument, NULL, OPT_ACCOUNT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"shutdown-grace", required_argument, NULL, OPT_GRACE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

/* gRPC's and libmicrohttpd's own errors for a malformed address are cryptic: check it here. */
static int valid_listen(const char *addr) {
  char host[256];
  int port;
  return af_listen_split(addr, host, sizeof host, &port) == 0;
}

/* Returns -1 to go on, or an exit status. */
static int apply_option(options *o, int c, const char *arg) {
  long v;
  switch (c) {
  case OPT_GRPC_LISTEN:
    if (!valid_listen(arg))
      return bad_usage("--grpc-listen takes HOST:PORT (e.g. 127.0.0.1:50051), not '%s'", arg);
    o->grpc_listen = arg;
    return -1;
  case OPT_HTTP_LISTEN:
    if (!valid_listen(arg))
      return bad_usage("--http-listen takes HOST:PORT (e.g. 127.0.0.1:8080), not '%s'", arg);
    o->http_listen = arg;
    return -1;
  case OPT_HTTP_THREADS:
    if (parse_int(arg, 1, 256, &v) != 0)
      return bad_usage("--http-threads takes a whole number from 1 to 256, not '%s'", arg);
    o->http_threads = (int)v;
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
    if (parse_int(arg, 1, 256, &v) != 0)
      return bad_usage("--threads takes a whole number from 1 to 256, not '%s'", arg);
    o->threads = (int)v;
    return -1;
  case OPT_GRACE:
    if (parse_double(arg, 0, 3600, &o->grace) != 0)
      return bad_usage("--shutdown-grace takes seconds from 0 to 3600, not '%s'", arg);
    return -1;
  case OPT_LOG_LEVEL:
    if (af_log_level_parse(arg, &o->log_level) != 0)
      return bad_usage("--log-level takes error, warn, info or debug, not '%s'", arg);
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

static int parse_options(int argc, char **argv, options *o) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  *o = (options){.grpc_listen = "127.0.0.1:50051",
                 .threads = cores > 0 ? (int)cores : 1,
                 .http_threads = cores > 0 ? (int)cores : 1,
                 .grace = 5,
                 .log_level = AF_LOG_INFO};
  opterr = 1; /* getopt names an unknown flag or missing argument itself */
  int c;
  while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    int rc = apply_option(o, c, optarg);
    if (rc >= 0)
      return rc;
  }
  if (optind < argc)
    return bad_usage("unexpected argument '%s'", argv[optind]);
  return -1;
}

static int load_flows(af_flows *svc, const char *path, size_t *count) {
  af_seed_error e;
  if (af_seed_load_file(svc, path, count, &e) == 0)
    return 0;
  if (e.line > 0)
    fprintf(stderr, "%s:%d:%d: %s\n", path, e.line, e.column, e.message);
  else
    fprintf(stderr, "%s: %s\n", path, e.message);
  return -1;
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
static void announce(const options *o, size_t nflows, const af_grpc_server *grpc,
                     const af_bridge_server *http) {
  char http_part[320] = "";
  if (http != NULL)
    snprintf(http_part, sizeof http_part, " http=%s http_port=%d", o->http_listen,
             af_bridge_server_port(http));
  fprintf(stderr, "appflowd %s listening: grpc=%s port=%d%s flows=%zu threads=%d region=%s\n",
          AF_VERSION, o->grpc_listen, af_grpc_server_port(grpc), http_part, nflows, o->threads,
          o->region ? o->region : "us-east-1");
  fflush(stderr);
}

static int serve(const options *o, af_flows *svc, size_t nflows, const af_log *log,
                 const sigset_t *signals) {
  af_error err;
  af_grpc_config gc = {.listen = o->grpc_listen, .threads = o->threads, .log = log};
  af_grpc_server *grpc = af_grpc_server_start(&gc, svc, &err);
  if (grpc == NULL) {
    fprintf(stderr, "appflowd: %s\n", err.message);
    return EXIT_RUNTIME;
  }
  af_bridge_server *http = NULL;
  if (o->http_listen != NULL) {
    af_bridge_config hc = {.listen = o->http_listen, .threads = o->http_threads, .log = log};
    if ((http = af_bridge_server_start(&hc, svc, &err)) == NULL) {
      fprintf(stderr, "appflowd: %s\n", err.message);
      af_grpc_server_stop(grpc, 0);
      return EXIT_RUNTIME;
    }
  }
  announce(o, nflows, grpc, http);
  int sig = 0;
  sigwait(signals, &sig);
  af_log_printf(log, AF_LOG_INFO, "%s: shutting down (grace %.1fs)", strsignal(sig), o->grace);
  af_bridge_server_stop(http);
  af_grpc_server_stop(grpc, o->grace);
  af_log_printf(log, AF_LOG_INFO, "stopped");
  return 0;
}

int main(int argc, char **argv) {
  options o;
  int rc = parse_options(argc, argv, &o);
  if (rc >= 0)
    return rc;
  af_log log = {o.log_level, stderr};
  af_error err;
  af_flows *svc =
      af_flows_new(&(af_flows_config){.region = o.region, .account = o.account, .log = &log}, &err);
  if (svc == NULL) {
    fprintf(stderr, "appflowd: %s\n", err.message);
    return err.code == AF_ERR_VALIDATION ? EXIT_USAGE : EXIT_RUNTIME;
  }
  size_t nflows = 0;
  if (o.flows != NULL && load_flows(svc, o.flows, &nflows) != 0) {
    af_flows_free(svc);
    return EXIT_USAGE;
  }
  sigset_t signals;
  block_signals(&signals);
  if (o.log_level < AF_LOG_DEBUG)
    gpr_set_log_function(drop_grpc_log);
  grpc_init();
  rc = serve(&o, svc, nflows, &log, &signals);
  grpc_shutdown();
  af_flows_free(svc);
  return rc;
}
