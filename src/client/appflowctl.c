/* appflowctl: a command-line client for appflowd's gRPC door.
 *
 *   appflowctl --server HOST:PORT stop-flow NAME
 *
 * Prints the response as AWS-style JSON on stdout (what `aws appflow stop-flow` prints), or
 * the AWS error type and message on stderr in the AWS CLI's words, with exit status 1.
 * Exit status 2 is a usage error. --tls/--tls-ca/--tls-cert/--tls-key speak TLS and mutual TLS. */
#include "client/client.h"
#include "common/awsname.h"
#include "common/file.h"

#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AF_VERSION
#define AF_VERSION "0"
#endif

#define EXIT_SERVICE_ERROR 1
#define EXIT_USAGE 2
#define PEM_MAX (1 << 20)

static void free_tls(af_client_tls *tls) {
  free((char *)tls->root_certs);
  free((char *)tls->cert_chain);
  free((char *)tls->private_key);
}

static void usage(FILE *out) {
  fprintf(out, "usage: appflowctl [options] COMMAND ARGS\n"
               "\n"
               "commands:\n"
               "  stop-flow NAME   stop (suspend) a scheduled or event-triggered flow\n"
               "\n"
               "  --server HOST:PORT   appflowd's gRPC address (default 127.0.0.1:50051)\n"
               "  --timeout SECONDS    give up after this long (default 10)\n"
               "  --tls                use TLS, trusting the system's CAs\n"
               "  --tls-ca FILE        use TLS, trusting the PEM CA certificates in FILE\n"
               "  --tls-cert FILE      client certificate (PEM) for mutual TLS\n"
               "  --tls-key FILE       its private key (PEM)\n"
               "  --help, --version\n");
}

/* The whole of a PEM file, or NULL after saying why. */
static char *read_file(const char *flag, const char *path) {
  char *buf;
  size_t len;
  int e = af_read_file(path, PEM_MAX, &buf, &len, NULL);
  if (e != 0) {
    fprintf(stderr, "appflowctl: %s %s: %s\n", flag, path,
            e == EFBIG ? "over 1 MiB: not a PEM file" : strerror(e));
    return NULL;
  }
  return buf;
}

typedef struct tls_files {
  bool on;
  const char *ca, *cert, *key;
} tls_files;

/* Loads the PEM files named by the TLS flags into tls. Returns 0, or EXIT_USAGE. */
static int load_tls(const tls_files *f, af_client_tls *tls) {
  *tls = (af_client_tls){NULL, NULL, NULL};
  if ((f->cert == NULL) != (f->key == NULL)) {
    fprintf(stderr, "appflowctl: --tls-cert and --tls-key go together\n");
    return EXIT_USAGE;
  }
  if ((f->ca && !(tls->root_certs = read_file("--tls-ca", f->ca))) ||
      (f->cert && !(tls->cert_chain = read_file("--tls-cert", f->cert))) ||
      (f->key && !(tls->private_key = read_file("--tls-key", f->key)))) {
    free_tls(tls);
    return EXIT_USAGE;
  }
  return 0;
}

/* {"flowArn": ..., "flowStatus": "Suspended"}, indented as the AWS CLI prints it. */
static int print_stop_flow(const appflow_v1_StopFlowResponse *resp) {
  char status[64];
  const char *name = appflow_v1_FlowStatus_name(resp->flow_status);
  if (name == NULL || af_aws_enum_string("FLOW_STATUS_", name, status, sizeof status) != 0)
    snprintf(status, sizeof status, "%d", (int)resp->flow_status);
  json_t *o = json_pack("{s:s, s:s}", "flowArn", resp->flow_arn, "flowStatus", status);
  if (o == NULL)
    return -1;
  int rc = json_dumpf(o, stdout, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
  fputc('\n', stdout);
  json_decref(o);
  return rc;
}

static void print_error(const char *operation, const af_client_error *err) {
  const char *type = err->type[0] ? err->type : NULL;
  if (type != NULL)
    fprintf(stderr, "An error occurred (%s) when calling the %s operation: %s\n", type, operation,
            err->message);
  else
    fprintf(stderr, "gRPC error %s when calling the %s operation: %s\n",
            af_rpc_code_name(err->grpc_code), operation, err->message);
}

static int stop_flow(const char *server, const af_client_tls *tls, double timeout,
                     const char *name) {
  af_client *c = af_client_new(server, tls);
  if (c == NULL) {
    fprintf(stderr, "appflowctl: out of memory\n");
    return EXIT_SERVICE_ERROR;
  }
  appflow_v1_StopFlowResponse resp;
  af_client_error err;
  int rc = 0;
  if (af_client_stop_flow(c, name, timeout, &resp, &err) != 0) {
    print_error("StopFlow", &err);
    rc = EXIT_SERVICE_ERROR;
  } else if (print_stop_flow(&resp) != 0) {
    fprintf(stderr, "appflowctl: cannot print the response\n");
    rc = EXIT_SERVICE_ERROR;
  }
  af_client_free(c);
  return rc;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"server", required_argument, NULL, 's'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"tls", no_argument, NULL, 'T'},
                                       {"tls-ca", required_argument, NULL, 'A'},
                                       {"tls-cert", required_argument, NULL, 'C'},
                                       {"tls-key", required_argument, NULL, 'K'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
  const char *server = "127.0.0.1:50051";
  double timeout = 10;
  tls_files tf = {false, NULL, NULL, NULL};
  int c;
  char *end;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
    case 's':
      server = optarg;
      break;
    case 't':
      timeout = strtod(optarg, &end);
      if (*optarg == '\0' || *end != '\0' || !(timeout > 0 && timeout <= 3600)) {
        fprintf(stderr, "appflowctl: --timeout takes seconds from 0 to 3600, not '%s'\n", optarg);
        return EXIT_USAGE;
      }
      break;
    case 'T':
      tf.on = true;
      break;
    case 'A':
      tf.on = true;
      tf.ca = optarg;
      break;
    case 'C':
      tf.on = true;
      tf.cert = optarg;
      break;
    case 'K':
      tf.on = true;
      tf.key = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    case 'V':
      printf("appflowctl %s\n", AF_VERSION);
      return 0;
    default:
      usage(stderr);
      return EXIT_USAGE;
    }
  }
  if (argc - optind != 2 || strcmp(argv[optind], "stop-flow") != 0) {
    usage(stderr);
    return EXIT_USAGE;
  }
  af_client_tls tls;
  int rc = load_tls(&tf, &tls);
  if (rc != 0)
    return rc;
  grpc_init();
  rc = stop_flow(server, tf.on ? &tls : NULL, timeout, argv[optind + 1]);
  grpc_shutdown();
  free_tls(&tls);
  return rc;
}
