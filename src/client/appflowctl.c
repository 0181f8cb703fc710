/* appflowctl: a command-line client for appflowd's gRPC door, in the AWS CLI's words.
 *
 *   appflowctl [--server HOST:PORT] [--timeout S] [tls flags] OPERATION
 *              [--cli-input-json FILE|-] [--MEMBER VALUE | --BOOLEAN | --no-BOOLEAN ...]
 *   appflowctl stop-flow NAME
 *
 * OPERATION is any operation of AppFlow's model (gen/model/) in kebab case (create-flow,
 * describe-flow, list-flows, ...). The request is the AWS JSON of `aws appflow OPERATION
 * --cli-input-json` (a file, or - for stdin), with a flag for each top-level scalar member of the
 * input, named as the AWS CLI names it (flowName -> --flow-name); flags override the JSON.
 * The request is encoded with nanopb from the model's tables (client/ctljson.h) and sent to
 * /appflow.v1.AppFlowService/<Operation>; the reply is printed as AWS JSON on stdout (indented
 * 4, enums as their AWS strings, timestamps as epoch seconds), or the AWS error type and message
 * on stderr in the AWS CLI's words, with exit status 1. Exit status 2 is a usage error: an
 * unknown operation or flag, JSON that does not fit the model, a value over a bound of the
 * client's fixed fields, a missing required member. --tls/--tls-ca/--tls-cert/--tls-key speak
 * TLS and mutual TLS. */
#include "appflow_model.h"
#include "client/client.h"
#include "client/ctljson.h"
#include "common/awsname.h"
#include "common/file.h"

#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <jansson.h>
#include <pb_encode.h>
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
#define NAME_MAX_LEN 128
#define SERVICE_PATH "/appflow.v1.AppFlowService/"

static void free_tls(af_client_tls *tls) {
  free((char *)tls->root_certs);
  free((char *)tls->cert_chain);
  free((char *)tls->private_key);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: appflowctl [options] OPERATION [--cli-input-json FILE|-] [--MEMBER VALUE...]\n"
          "       appflowctl [options] stop-flow NAME\n"
          "\n"
          "  --server HOST:PORT   appflowd's gRPC address (default 127.0.0.1:50051)\n"
          "  --timeout SECONDS    give up after this long (default 10)\n"
          "  --tls                use TLS, trusting the system's CAs\n"
          "  --tls-ca FILE        use TLS, trusting the PEM CA certificates in FILE\n"
          "  --tls-cert FILE      client certificate (PEM) for mutual TLS\n"
          "  --tls-key FILE       its private key (PEM)\n"
          "  --help, --version    (OPERATION --help lists its members and flags)\n"
          "\n"
          "operations:\n");
  char name[NAME_MAX_LEN];
  for (size_t i = 0; i < af_model_operation_count; i++) {
    if (af_ctl_cli_name(af_model_operations[i].name, name, sizeof name) == 0)
      fprintf(out, "  %s\n", name);
  }
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

/* ---- the operation's arguments ---- */

static bool is_scalar(const af_model_shape *shape) {
  switch (shape->type) {
  case AF_MODEL_STRING:
  case AF_MODEL_ENUM:
  case AF_MODEL_BOOLEAN:
  case AF_MODEL_INTEGER:
  case AF_MODEL_LONG:
  case AF_MODEL_DOUBLE:
  case AF_MODEL_TIMESTAMP:
    return true;
  case AF_MODEL_LIST:
  case AF_MODEL_MAP:
  case AF_MODEL_STRUCTURE:
    return false;
  }
  return false;
}

static const af_model_operation *operation_named(const char *cli_name) {
  char name[NAME_MAX_LEN];
  for (size_t i = 0; i < af_model_operation_count; i++) {
    if (af_ctl_cli_name(af_model_operations[i].name, name, sizeof name) == 0 &&
        strcmp(name, cli_name) == 0)
      return &af_model_operations[i];
  }
  return NULL;
}

/* The top-level scalar member of op's input whose flag is flag ("flow-name"); *negated when
 * flag is "no-" and a boolean member's flag. */
static const af_model_member *member_of_flag(const af_model_operation *op, const char *flag,
                                             bool *negated) {
  char name[NAME_MAX_LEN];
  for (size_t i = 0; i < op->input->n_members; i++) {
    const af_model_member *m = &op->input->members[i];
    if (!is_scalar(m->shape) || af_ctl_cli_name(m->name, name, sizeof name) != 0)
      continue;
    *negated = false;
    if (strcmp(name, flag) == 0)
      return m;
    *negated = true;
    if (m->shape->type == AF_MODEL_BOOLEAN && strncmp(flag, "no-", 3) == 0 &&
        strcmp(flag + 3, name) == 0)
      return m;
  }
  return NULL;
}

static void operation_usage(const af_model_operation *op, FILE *out) {
  char name[NAME_MAX_LEN];
  if (af_ctl_cli_name(op->name, name, sizeof name) != 0) /* too long to spell: as AWS spells it */
    snprintf(name, sizeof name, "%s", op->name);
  fprintf(out, "usage: appflowctl [options] %s [--cli-input-json FILE|-]%s\n", name,
          op->input->n_members ? " [flags]" : "");
  fprintf(out, "\nmembers of %s (AWS JSON), with their flags:\n", op->input->name);
  for (size_t i = 0; i < op->input->n_members; i++) {
    const af_model_member *m = &op->input->members[i];
    fprintf(out, "  %-32s", m->name);
    if (is_scalar(m->shape) && af_ctl_cli_name(m->name, name, sizeof name) == 0)
      fprintf(out, " --%s%s", m->shape->type == AF_MODEL_BOOLEAN ? "[no-]" : "", name);
    fprintf(out, "%s\n", m->required ? " (required)" : "");
  }
}

/* The JSON of --cli-input-json: a file, "file://FILE" as the AWS CLI takes it, - (stdin), or
 * the JSON text itself when it starts with '{'. */
static json_t *load_input(const char *arg) {
  json_error_t e;
  if (strncmp(arg, "file://", 7) == 0)
    arg += 7;
  json_t *j = arg[0] == '{'           ? json_loads(arg, JSON_REJECT_DUPLICATES, &e)
              : strcmp(arg, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &e)
                                      : json_load_file(arg, JSON_REJECT_DUPLICATES, &e);
  if (j == NULL && e.line > 0) {
    fprintf(stderr, "appflowctl: --cli-input-json %s: %s (line %d)\n", arg, e.text, e.line);
  } else if (j == NULL) {
    fprintf(stderr, "appflowctl: --cli-input-json %s: %s\n", arg, e.text);
  } else if (!json_is_object(j)) {
    fprintf(stderr, "appflowctl: --cli-input-json %s: not a JSON object\n", arg);
    json_decref(j);
    j = NULL;
  }
  return j;
}

/* The JSON value of flag's text for member m (its shape's type), or NULL after saying why. */
static json_t *flag_value(const char *flag, const af_model_member *m, const char *text) {
  char *end;
  json_t *v = NULL;
  switch (m->shape->type) {
  case AF_MODEL_INTEGER:
  case AF_MODEL_LONG: {
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (*text != '\0' && *end == '\0' && errno == 0)
      v = json_integer(n);
    break;
  }
  case AF_MODEL_DOUBLE:
  case AF_MODEL_TIMESTAMP: {
    double d = strtod(text, &end);
    if (*text != '\0' && *end == '\0')
      v = json_real(d);
    break;
  }
  case AF_MODEL_STRING:
  case AF_MODEL_ENUM:
    v = json_string(text);
    break;
  case AF_MODEL_BOOLEAN:
  case AF_MODEL_LIST:
  case AF_MODEL_MAP:
  case AF_MODEL_STRUCTURE:
    break;
  }
  if (v == NULL)
    fprintf(stderr, "appflowctl: --%s: '%s' is not a valid %s\n", flag, text, m->shape->name);
  return v;
}

/* Sets input[m] from one member flag (argv[*i], maybe with the next as its value). Returns 0
 * or EXIT_USAGE. */
static int take_flag(const af_model_operation *op, int argc, char **argv, int *i, json_t *input) {
  char flag[NAME_MAX_LEN];
  const char *arg = argv[*i] + 2, *eq = strchr(arg, '='), *text = eq ? eq + 1 : NULL;
  snprintf(flag, sizeof flag, "%.*s", (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
  bool negated;
  const af_model_member *m = member_of_flag(op, flag, &negated);
  if (m == NULL) {
    fprintf(stderr, "appflowctl: unknown option --%s for %s (see %s --help)\n", flag, op->name,
            argv[0]);
    return EXIT_USAGE;
  }
  json_t *v;
  if (m->shape->type == AF_MODEL_BOOLEAN) {
    if (text != NULL) {
      fprintf(stderr, "appflowctl: --%s takes no value\n", flag);
      return EXIT_USAGE;
    }
    v = json_boolean(!negated);
  } else {
    if (text == NULL && *i + 1 >= argc) {
      fprintf(stderr, "appflowctl: --%s needs a value\n", flag);
      return EXIT_USAGE;
    }
    v = flag_value(flag, m, text ? text : argv[++*i]);
  }
  return v != NULL && json_object_set_new(input, m->name, v) == 0 ? 0 : EXIT_USAGE;
}

/* The required members of op's input missing from input, as the AWS CLI says it. */
static int check_required(const af_model_operation *op, const json_t *input) {
  char name[NAME_MAX_LEN];
  int rc = 0;
  for (size_t i = 0; i < op->input->n_members; i++) {
    const af_model_member *m = &op->input->members[i];
    const json_t *v = json_object_get(input, m->name);
    if (!m->required || (v != NULL && !json_is_null(v)))
      continue;
    if (is_scalar(m->shape) && af_ctl_cli_name(m->name, name, sizeof name) == 0)
      fprintf(stderr, "appflowctl: %s needs --%s (or %s in --cli-input-json)\n", op->name, name,
              m->name);
    else
      fprintf(stderr, "appflowctl: %s needs %s in --cli-input-json\n", op->name, m->name);
    rc = EXIT_USAGE;
  }
  return rc;
}

/* The request's AWS JSON from argv[first..argc): --cli-input-json, then the flags over it, and
 * stop-flow's NAME. NULL after saying why (*rc: EXIT_USAGE, or 0 after --help). */
static json_t *parse_request(const af_model_operation *op, int argc, char **argv, int first,
                             int *rc) {
  *rc = EXIT_USAGE;
  json_t *input = NULL;
  for (int i = first; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0) {
      operation_usage(op, stdout);
      *rc = 0;
      return NULL;
    }
    if (strcmp(argv[i], "--cli-input-json") != 0)
      continue;
    if (i + 1 >= argc || input != NULL) {
      fprintf(stderr, "appflowctl: --cli-input-json takes one FILE or -\n");
      json_decref(input);
      return NULL;
    }
    if ((input = load_input(argv[++i])) == NULL)
      return NULL;
  }
  if (input == NULL && (input = json_object()) == NULL)
    return NULL;
  bool positional = strcmp(op->name, "StopFlow") == 0; /* stop-flow NAME, as it always was */
  for (int i = first; i < argc; i++) {
    int e = 0;
    if (strcmp(argv[i], "--cli-input-json") == 0)
      i++;
    else if (strncmp(argv[i], "--", 2) == 0)
      e = take_flag(op, argc, argv, &i, input);
    else if (positional && (positional = false, true))
      e = json_object_set_new(input, "flowName", json_string(argv[i])) ? EXIT_USAGE : 0;
    else
      fprintf(stderr, "appflowctl: %s takes no argument '%s'\n", op->name, argv[i]), e = EXIT_USAGE;
    if (e != 0) {
      json_decref(input);
      return NULL;
    }
  }
  if (check_required(op, input) != 0) {
    json_decref(input);
    return NULL;
  }
  return input;
}

/* ---- the call ---- */

static int print_json(json_t *o) {
  int rc = json_dumpf(o, stdout, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(16));
  fputc('\n', stdout);
  return rc;
}

static void print_error(const char *operation, const af_client_error *err) {
  const char *type = err->type[0] ? err->type : NULL;
  if (type == NULL && err->grpc_code == GRPC_STATUS_UNIMPLEMENTED)
    type = "NotImplementedException"; /* an RPC the server does not know at all */
  if (type != NULL)
    fprintf(stderr, "An error occurred (%s) when calling the %s operation: %s\n", type, operation,
            err->message);
  else
    fprintf(stderr, "gRPC error %s when calling the %s operation: %s\n",
            af_rpc_code_name(err->grpc_code), operation, err->message);
}

/* What a failure of the codec means: bad input (exit 2) or anything else (exit 1). */
static int codec_failed(const af_ctl_codec *k, const af_model_operation *op) {
  fprintf(stderr, "appflowctl: %s: %s\n", op->name, af_ctl_codec_error(k));
  return af_ctl_codec_status(k) == AF_CTL_INPUT ? EXIT_USAGE : EXIT_SERVICE_ERROR;
}

/* The request message from input, checked to encode (bounds of callback fields included)
 * before anything is sent. Returns 0, or an exit status after saying why. */
static int build_request(af_ctl_codec *k, const af_model_operation *op, const af_ctl_message *m,
                         const json_t *input, void *req) {
  size_t size;
  if (af_ctl_fill(k, op->input, m, input, req) != 0)
    return codec_failed(k, op);
  if (!pb_get_encoded_size(&size, m->desc, req)) {
    if (af_ctl_codec_status(k) != AF_CTL_OK)
      return codec_failed(k, op);
    fprintf(stderr, "appflowctl: %s: the request cannot be encoded\n", op->name);
    return EXIT_SERVICE_ERROR;
  }
  return 0;
}

static int call(af_client *c, af_ctl_codec *k, const af_model_operation *op,
                const af_ctl_message *in, const void *req, const af_ctl_message *out, void *resp,
                double timeout) {
  char method[NAME_MAX_LEN + sizeof SERVICE_PATH];
  snprintf(method, sizeof method, "%s%s", SERVICE_PATH, op->name);
  af_client_error err;
  if (af_ctl_prepare(k, op->output, out, resp) != 0)
    return codec_failed(k, op);
  if (af_client_call(c, method, in->desc, req, out->desc, resp, timeout, &err) != 0) {
    if (af_ctl_codec_status(k) != AF_CTL_OK)
      return codec_failed(k, op);
    print_error(op->name, &err);
    return EXIT_SERVICE_ERROR;
  }
  json_t *o = af_ctl_to_json(k, op->output, out, resp);
  if (o == NULL)
    return codec_failed(k, op);
  int rc = print_json(o) == 0 ? 0 : EXIT_SERVICE_ERROR;
  json_decref(o);
  return rc;
}

static int run(const char *server, const af_client_tls *tls, double timeout,
               const af_model_operation *op, const json_t *input) {
  const af_ctl_message *in = af_ctl_message_for(op->input), *out = af_ctl_message_for(op->output);
  af_ctl_codec *k = af_ctl_codec_new();
  void *req = in ? calloc(1, in->size) : NULL, *resp = out ? calloc(1, out->size) : NULL;
  af_client *c = NULL;
  int rc = EXIT_SERVICE_ERROR;
  if (in == NULL || out == NULL)
    fprintf(stderr, "appflowctl: %s: no nanopb message for its input or output\n", op->name);
  else if (k == NULL || req == NULL || resp == NULL || (c = af_client_new(server, tls)) == NULL)
    fprintf(stderr, "appflowctl: out of memory\n");
  else if ((rc = build_request(k, op, in, input, req)) == 0)
    rc = call(c, k, op, in, req, out, resp, timeout);
  af_client_free(c);
  free(req);
  free(resp);
  af_ctl_codec_free(k);
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
  if (optind >= argc) {
    usage(stderr);
    return EXIT_USAGE;
  }
  const af_model_operation *op = operation_named(argv[optind]);
  if (op == NULL) {
    fprintf(stderr, "appflowctl: unknown operation '%s'\n", argv[optind]);
    usage(stderr);
    return EXIT_USAGE;
  }
  int rc;
  json_t *input = parse_request(op, argc, argv, optind + 1, &rc);
  if (input == NULL && rc == EXIT_USAGE)
    fprintf(stderr,
            "usage: appflowctl [options] %s [--cli-input-json FILE|-] [flags]  (%s --help)\n",
            argv[optind], argv[optind]);
  if (input == NULL)
    return rc;
  af_client_tls tls;
  rc = load_tls(&tf, &tls);
  if (rc == 0) {
    grpc_init();
    rc = run(server, tf.on ? &tls : NULL, timeout, op, input);
    grpc_shutdown();
    free_tls(&tls);
  }
  json_decref(input);
  return rc;
}
