/* appflowctl: a command-line client for appflowd's gRPC door.
 *
 *   appflowctl --server HOST:PORT stop-flow NAME
 *
 * Prints the response as AWS-style JSON on stdout (what `aws appflow stop-flow` prints), or
 * the AWS error type and message on stderr in the AWS CLI's words, with exit status 1.
 * Exit status 2 is a usage error. */
#include "client/client.h"
#include "common/awsname.h"

#include <getopt.h>
#include <grpc/grpc.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AF_VERSION
#define AF_VERSION "0"
#endif

#define EXIT_SERVICE_ERROR 1
#define EXIT_USAGE 2

static void usage(FILE *out) {
  fprintf(out, "usage: appflowctl [--server HOST:PORT] [--timeout SECONDS] COMMAND ARGS\n"
               "\n"
               "commands:\n"
               "  stop-flow NAME   stop (suspend) a scheduled or event-triggered flow\n"
               "\n"
               "  --server HOST:PORT   appflowd's gRPC address (default 127.0.0.1:50051)\n"
               "  --timeout SECONDS    give up after this long (default 10)\n"
               "  --help, --version\n");
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

static int stop_flow(const char *server, double timeout, const char *name) {
  af_client *c = af_client_new(server);
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
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
  const char *server = "127.0.0.1:50051";
  double timeout = 10;
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
  grpc_init();
  int rc = stop_flow(server, timeout, argv[optind + 1]);
  grpc_shutdown();
  return rc;
}
