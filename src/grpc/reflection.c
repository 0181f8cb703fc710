/* Server reflection from a FileDescriptorSet. The set is decoded once into sorted name indexes
 * (files, symbols, extensions) so an answer is a few binary searches and a walk of the import
 * graph, read-only over the index and allocating only in the caller's arena; hence many threads
 * may answer at once. The set is trusted input: protoc made it at build time. */
#include "grpc/reflection.h"

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Google__Protobuf__FileDescriptorProto FileProto;
typedef Google__Protobuf__DescriptorProto MessageProto;
typedef Google__Protobuf__EnumDescriptorProto EnumProto;
typedef Google__Protobuf__FieldDescriptorProto FieldProto;
typedef Google__Protobuf__ServiceDescriptorProto ServiceProto;
typedef Grpc__Reflection__V1__ServerReflectionRequest Request;
typedef Grpc__Reflection__V1__ServerReflectionResponse Response;

/* A full name (no leading dot) and the file defining it. Sorted by (name, file), so the first
 * of equal names is the earliest file, as a descriptor pool built in set order would keep. */
struct entry {
  char *name;
  size_t file;
  bool is_message; /* all_extension_numbers_of_type answers only for message types */
};

/* One extension field. Sorted by (extendee, number, file), so a type's numbers are adjacent
 * and ascending, which all_extension_numbers_of_type returns as they lie. */
struct ext {
  char *extendee; /* full name, no leading dot */
  int32_t number;
  size_t file;
};

struct file {
  char *name;
  uint8_t *bytes; /* the serialized FileDescriptorProto served to clients */
  size_t len;
  size_t *deps; /* indices into af_reflection.files of the imports present in the set */
  size_t n_deps;
};

struct af_reflection {
  struct file *files;
  size_t n_files;
  struct entry *by_name; /* files by name; the names belong to files[] */
  struct entry *symbols; /* owns its names */
  size_t n_symbols, cap_symbols;
  struct ext *exts; /* owns its extendees */
  size_t n_exts, cap_exts;
  char **services;
  size_t n_services;
};

/* ---- building the index ---- */

/* protobuf-c leaves absent proto2 strings NULL; a name is never absent in protoc's output, but
 * "" is harmless where NULL would crash. */
static const char *opt(const char *s) { return s != NULL ? s : ""; }

/* "scope.name", or "name" at the top level (a file without a package). */
static char *join(const char *scope, const char *name) {
  size_t a = strlen(scope), b = strlen(name);
  char *s = malloc(a + b + 2);
  if (s == NULL)
    return NULL;
  size_t o = 0;
  if (a > 0) {
    memcpy(s, scope, a);
    s[a] = '.';
    o = a + 1;
  }
  memcpy(s + o, name, b + 1);
  return s;
}

/* Type names in descriptors are fully qualified with a leading dot; clients may send one too. */
static const char *strip_dot(const char *name) { return name[0] == '.' ? name + 1 : name; }

/* v grown to hold more elements of size bytes (doubling, so pushes are amortised O(1)); NULL
 * on failure, v untouched. */
static void *grow(void *v, size_t *cap, size_t size) {
  size_t n = *cap > 0 ? *cap * 2 : 64;
  if (n > SIZE_MAX / size)
    return NULL;
  void *p = realloc(v, n * size);
  if (p != NULL)
    *cap = n;
  return p;
}

/* Records scope.name; returns the stored full name (the scope of what nests in it), or NULL
 * when out of memory. */
static const char *add_symbol(af_reflection *r, const char *scope, const char *name, size_t file,
                              bool is_message) {
  if (r->n_symbols == r->cap_symbols) {
    struct entry *v = grow(r->symbols, &r->cap_symbols, sizeof *v);
    if (v == NULL)
      return NULL;
    r->symbols = v;
  }
  char *full = join(scope, opt(name));
  if (full == NULL)
    return NULL;
  r->symbols[r->n_symbols++] = (struct entry){full, file, is_message};
  return full;
}

static bool add_ext(af_reflection *r, const FieldProto *f, size_t file) {
  if (f->extendee == NULL || !f->has_number)
    return true;
  if (r->n_exts == r->cap_exts) {
    struct ext *v = grow(r->exts, &r->cap_exts, sizeof *v);
    if (v == NULL)
      return false;
    r->exts = v;
  }
  char *extendee = join("", strip_dot(f->extendee));
  if (extendee == NULL)
    return false;
  r->exts[r->n_exts++] = (struct ext){extendee, f->number, file};
  return true;
}

/* An extension is both a symbol (in its declaring scope) and an entry of its extendee. */
static bool index_extensions(af_reflection *r, const char *scope, FieldProto *const *v, size_t n,
                             size_t file) {
  for (size_t i = 0; i < n; i++)
    if (add_symbol(r, scope, v[i]->name, file, false) == NULL || !add_ext(r, v[i], file))
      return false;
  return true;
}

/* Enum values are scoped as siblings of their enum (C++ rules), so "pkg.Msg.VALUE". */
static bool index_enum(af_reflection *r, const char *scope, const EnumProto *e, size_t file) {
  if (add_symbol(r, scope, e->name, file, false) == NULL)
    return false;
  for (size_t i = 0; i < e->n_value; i++)
    if (add_symbol(r, scope, e->value[i]->name, file, false) == NULL)
      return false;
  return true;
}

static bool index_enums(af_reflection *r, const char *scope, EnumProto *const *v, size_t n,
                        size_t file) {
  for (size_t i = 0; i < n; i++)
    if (!index_enum(r, scope, v[i], file))
      return false;
  return true;
}

static bool index_message(af_reflection *r, const char *scope, const MessageProto *m, size_t file) {
  const char *full = add_symbol(r, scope, m->name, file, true);
  if (full == NULL)
    return false;
  for (size_t i = 0; i < m->n_field; i++)
    if (add_symbol(r, full, m->field[i]->name, file, false) == NULL)
      return false;
  for (size_t i = 0; i < m->n_oneof_decl; i++)
    if (add_symbol(r, full, m->oneof_decl[i]->name, file, false) == NULL)
      return false;
  for (size_t i = 0; i < m->n_nested_type; i++)
    if (!index_message(r, full, m->nested_type[i], file))
      return false;
  return index_enums(r, full, m->enum_type, m->n_enum_type, file) &&
         index_extensions(r, full, m->extension, m->n_extension, file);
}

static bool index_service(af_reflection *r, const char *scope, const ServiceProto *s, size_t file) {
  const char *full = add_symbol(r, scope, s->name, file, false);
  if (full == NULL)
    return false;
  for (size_t i = 0; i < s->n_method; i++)
    if (add_symbol(r, full, s->method[i]->name, file, false) == NULL)
      return false;
  return true;
}

static bool index_symbols(af_reflection *r, const FileProto *f, size_t file) {
  const char *pkg = opt(f->package);
  for (size_t i = 0; i < f->n_service; i++)
    if (!index_service(r, pkg, f->service[i], file))
      return false;
  for (size_t i = 0; i < f->n_message_type; i++)
    if (!index_message(r, pkg, f->message_type[i], file))
      return false;
  return index_enums(r, pkg, f->enum_type, f->n_enum_type, file) &&
         index_extensions(r, pkg, f->extension, f->n_extension, file);
}

/* Re-packing serves exactly what was decoded: protobuf-c keeps the fields it does not know
 * (option extensions such as google.api.http, newer descriptor fields) and writes them back. */
static bool add_file(af_reflection *r, const FileProto *f, size_t i) {
  struct file *dst = &r->files[i];
  dst->name = join("", opt(f->name));
  dst->len = protobuf_c_message_get_packed_size(&f->base);
  dst->bytes = malloc(dst->len > 0 ? dst->len : 1);
  if (dst->name == NULL || dst->bytes == NULL)
    return false;
  protobuf_c_message_pack(&f->base, dst->bytes);
  r->by_name[i] = (struct entry){dst->name, i, false};
  return true;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int cmp_entry(const void *a, const void *b) {
  const struct entry *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c != 0 ? c : (x->file > y->file) - (x->file < y->file);
}

static int cmp_extendee(const void *a, const void *b) {
  return strcmp(((const struct ext *)a)->extendee, ((const struct ext *)b)->extendee);
}

static int cmp_ext_key(const void *a, const void *b) {
  const struct ext *x = a, *y = b;
  int c = strcmp(x->extendee, y->extendee);
  return c != 0 ? c : (x->number > y->number) - (x->number < y->number);
}

static int cmp_ext(const void *a, const void *b) {
  const struct ext *x = a, *y = b;
  int c = cmp_ext_key(a, b);
  return c != 0 ? c : (x->file > y->file) - (x->file < y->file);
}

/* The first element of base[0..n) that cmp does not order before key. Unlike bsearch, it finds
 * the first of a run of equal keys: the earliest file, or the start of a type's extensions. */
static size_t lower_bound(const void *key, const void *base, size_t n, size_t size,
                          int (*cmp)(const void *, const void *)) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cmp(key, (const char *)base + mid * size) > 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static const struct entry *find(const struct entry *v, size_t n, const char *name) {
  struct entry key = {.name = (char *)name};
  size_t i = lower_bound(&key, v, n, sizeof *v, cmp_name);
  return i < n && strcmp(v[i].name, name) == 0 ? &v[i] : NULL;
}

/* An import missing from the set (a set made without --include_imports) is left out rather
 * than refused: the client gets what there is, as with any partial set. */
static bool link_deps(af_reflection *r, const FileProto *f, size_t i) {
  struct file *dst = &r->files[i];
  dst->deps = malloc((f->n_dependency > 0 ? f->n_dependency : 1) * sizeof *dst->deps);
  if (dst->deps == NULL)
    return false;
  for (size_t d = 0; d < f->n_dependency; d++) {
    const struct entry *e = find(r->by_name, r->n_files, opt(f->dependency[d]));
    if (e != NULL)
      dst->deps[dst->n_deps++] = e->file;
  }
  return true;
}

/* qsort, but an empty index may be NULL, which qsort must not be given. */
static void sort(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
  if (n > 0)
    qsort(v, n, size, cmp);
}

static bool index_files(af_reflection *r, const Google__Protobuf__FileDescriptorSet *set) {
  r->files = calloc(set->n_file > 0 ? set->n_file : 1, sizeof *r->files);
  r->by_name = calloc(set->n_file > 0 ? set->n_file : 1, sizeof *r->by_name);
  if (r->files == NULL || r->by_name == NULL)
    return false;
  /* Counted in full at once: af_reflection_free frees the zeroed slots a failure leaves. */
  r->n_files = set->n_file;
  for (size_t i = 0; i < r->n_files; i++)
    if (!add_file(r, set->file[i], i) || !index_symbols(r, set->file[i], i))
      return false;
  sort(r->by_name, r->n_files, sizeof *r->by_name, cmp_entry);
  for (size_t i = 0; i < r->n_files; i++)
    if (!link_deps(r, set->file[i], i))
      return false;
  sort(r->symbols, r->n_symbols, sizeof *r->symbols, cmp_entry);
  sort(r->exts, r->n_exts, sizeof *r->exts, cmp_ext);
  return true;
}

static bool copy_services(af_reflection *r, const char *const *services) {
  size_t n = 0;
  while (services != NULL && services[n] != NULL)
    n++;
  r->services = calloc(n > 0 ? n : 1, sizeof *r->services);
  if (r->services == NULL)
    return false;
  r->n_services = n;
  for (size_t i = 0; i < n; i++)
    if ((r->services[i] = join("", services[i])) == NULL)
      return false;
  return true;
}

af_reflection *af_reflection_new(const uint8_t *fdset, size_t len, const char *const *services,
                                 af_error *err) {
  Google__Protobuf__FileDescriptorSet *set =
      google__protobuf__file_descriptor_set__unpack(NULL, len, fdset);
  if (set == NULL) {
    af_error_set(err, AF_ERR_SERIALIZATION, "cannot decode the FileDescriptorSet (%zu bytes)", len);
    return NULL;
  }
  af_reflection *r = calloc(1, sizeof *r);
  bool ok = r != NULL && index_files(r, set) && copy_services(r, services);
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
  if (!ok) {
    af_reflection_free(r);
    af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of memory indexing the FileDescriptorSet");
    return NULL;
  }
  return r;
}

void af_reflection_free(af_reflection *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n_files; i++) {
    free(r->files[i].name);
    free(r->files[i].bytes);
    free(r->files[i].deps);
  }
  for (size_t i = 0; i < r->n_symbols; i++)
    free(r->symbols[i].name);
  for (size_t i = 0; i < r->n_exts; i++)
    free(r->exts[i].extendee);
  for (size_t i = 0; i < r->n_services; i++)
    free(r->services[i]);
  free(r->files);
  free(r->by_name);
  free(r->symbols);
  free(r->exts);
  free(r->services);
  free(r);
}

/* ---- answering ---- */

/* Each answer returns false only when the arena is exhausted. */

/* Names in messages come from the client: escaped, they stay valid UTF-8 (a proto3 string must
 * be) and printable. */
#define ESCAPED_MAX 1040

__attribute__((format(printf, 4, 5))) static bool
answer_error(af_arena *a, Response *resp, enum af_rpc_code code, const char *fmt, ...) {
  char msg[AF_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  Grpc__Reflection__V1__ErrorResponse *e = af_arena_alloc(a, sizeof *e);
  if (e == NULL)
    return false;
  grpc__reflection__v1__error_response__init(e);
  e->error_code = (int32_t)code;
  e->error_message = af_arena_strndup(a, msg, strlen(msg));
  resp->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
  resp->error_response = e;
  return e->error_message != NULL;
}

static bool answer_list(const af_reflection *r, af_arena *a, Response *resp) {
  Grpc__Reflection__V1__ListServiceResponse *list = af_arena_alloc(a, sizeof *list);
  Grpc__Reflection__V1__ServiceResponse *items = af_arena_alloc(a, r->n_services * sizeof *items);
  Grpc__Reflection__V1__ServiceResponse **ptrs = af_arena_alloc(a, r->n_services * sizeof *ptrs);
  if (list == NULL || items == NULL || ptrs == NULL)
    return false;
  grpc__reflection__v1__list_service_response__init(list);
  for (size_t i = 0; i < r->n_services; i++) {
    grpc__reflection__v1__service_response__init(&items[i]);
    items[i].name = r->services[i];
    ptrs[i] = &items[i];
  }
  list->n_service = r->n_services;
  list->service = ptrs;
  resp->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
  resp->list_services_response = list;
  return true;
}

/* The file, then its imports breadth-first, each once (a visited mark also ends any cycle). */
static bool answer_files(const af_reflection *r, size_t start, af_arena *a, Response *resp) {
  Grpc__Reflection__V1__FileDescriptorResponse *fdr = af_arena_alloc(a, sizeof *fdr);
  ProtobufCBinaryData *blobs = af_arena_alloc(a, r->n_files * sizeof *blobs);
  size_t *queue = af_arena_alloc(a, r->n_files * sizeof *queue);
  bool *seen = af_arena_alloc(a, r->n_files * sizeof *seen);
  if (fdr == NULL || blobs == NULL || queue == NULL || seen == NULL)
    return false;
  memset(seen, 0, r->n_files * sizeof *seen);
  size_t n = 0;
  queue[n++] = start;
  seen[start] = true;
  for (size_t head = 0; head < n; head++) {
    const struct file *f = &r->files[queue[head]];
    blobs[head] = (ProtobufCBinaryData){f->len, f->bytes};
    for (size_t d = 0; d < f->n_deps; d++)
      if (!seen[f->deps[d]]) {
        seen[f->deps[d]] = true;
        queue[n++] = f->deps[d];
      }
  }
  grpc__reflection__v1__file_descriptor_response__init(fdr);
  fdr->n_file_descriptor_proto = n;
  fdr->file_descriptor_proto = blobs;
  resp->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
  resp->file_descriptor_response = fdr;
  return true;
}

static bool answer_filename(const af_reflection *r, const char *name, af_arena *a, Response *resp) {
  const struct entry *e = find(r->by_name, r->n_files, name);
  char esc[ESCAPED_MAX];
  if (e == NULL)
    return answer_error(a, resp, AF_RPC_NOT_FOUND, "file not found: %s",
                        af_escape(esc, sizeof esc, name, strlen(name)));
  return answer_files(r, e->file, a, resp);
}

static bool answer_symbol(const af_reflection *r, const char *symbol, af_arena *a, Response *resp) {
  const char *name = strip_dot(symbol);
  const struct entry *e = find(r->symbols, r->n_symbols, name);
  char esc[ESCAPED_MAX];
  if (e == NULL)
    return answer_error(a, resp, AF_RPC_NOT_FOUND, "symbol not found: %s",
                        af_escape(esc, sizeof esc, name, strlen(name)));
  return answer_files(r, e->file, a, resp);
}

static bool answer_extension(const af_reflection *r,
                             const Grpc__Reflection__V1__ExtensionRequest *x, af_arena *a,
                             Response *resp) {
  struct ext key = {(char *)strip_dot(x->containing_type), x->extension_number, 0};
  size_t i = lower_bound(&key, r->exts, r->n_exts, sizeof key, cmp_ext_key);
  char esc[ESCAPED_MAX];
  if (i == r->n_exts || cmp_ext_key(&key, &r->exts[i]) != 0)
    return answer_error(a, resp, AF_RPC_NOT_FOUND, "extension not found: %s number %" PRId32,
                        af_escape(esc, sizeof esc, key.extendee, strlen(key.extendee)), key.number);
  return answer_files(r, r->exts[i].file, a, resp);
}

/* Numbers come out ascending from the sorted index; a number declared twice (an invalid set)
 * is listed once. */
static bool answer_numbers(const af_reflection *r, const char *type, af_arena *a, Response *resp) {
  const char *name = strip_dot(type);
  const struct entry *sym = find(r->symbols, r->n_symbols, name);
  char esc[ESCAPED_MAX];
  if (sym == NULL || !sym->is_message)
    return answer_error(a, resp, AF_RPC_NOT_FOUND, "type not found: %s",
                        af_escape(esc, sizeof esc, name, strlen(name)));
  struct ext key = {sym->name, 0, 0};
  size_t first = lower_bound(&key, r->exts, r->n_exts, sizeof key, cmp_extendee), end = first;
  while (end < r->n_exts && cmp_extendee(&key, &r->exts[end]) == 0)
    end++;
  Grpc__Reflection__V1__ExtensionNumberResponse *en = af_arena_alloc(a, sizeof *en);
  int32_t *numbers = af_arena_alloc(a, (end - first) * sizeof *numbers);
  if (en == NULL || numbers == NULL)
    return false;
  grpc__reflection__v1__extension_number_response__init(en);
  en->base_type_name = sym->name;
  en->extension_number = numbers;
  for (size_t i = first; i < end; i++)
    if (en->n_extension_number == 0 || numbers[en->n_extension_number - 1] != r->exts[i].number)
      numbers[en->n_extension_number++] = r->exts[i].number;
  resp->message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
  resp->all_extension_numbers_response = en;
  return true;
}

static bool answer_request(const af_reflection *r, const Request *req, af_arena *a,
                           Response *resp) {
  switch (req->message_request_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
    return answer_list(r, a, resp);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    return answer_filename(r, req->file_by_filename, a, resp);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
    return answer_symbol(r, req->file_containing_symbol, a, resp);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
    return answer_extension(r, req->file_containing_extension, a, resp);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
    return answer_numbers(r, req->all_extension_numbers_of_type, a, resp);
  /* A request field newer than our reflection.proto also arrives as NOT_SET (an unknown
   * field), so it is told what we understand rather than failing the stream. */
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET:
  case _GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__CASE_IS_INT_SIZE:
    break;
  }
  return answer_error(a, resp, AF_RPC_INVALID_ARGUMENT,
                      "empty request: set one of file_by_filename, file_containing_symbol, "
                      "file_containing_extension, all_extension_numbers_of_type, list_services");
}

/* protobuf-c returns NULL alike for bad bytes and a failed allocation; this allocator notes the
 * latter so an exhausted arena is not blamed on the client. */
struct watched {
  af_arena *arena;
  bool failed;
};

static void *watched_alloc(void *ud, size_t size) {
  struct watched *w = ud;
  void *p = w->arena->allocator.alloc(w->arena->allocator.allocator_data, size);
  w->failed |= p == NULL;
  return p;
}

static void watched_free(void *ud, void *p) {
  struct watched *w = ud;
  w->arena->allocator.free(w->arena->allocator.allocator_data, p);
}

static af_err decode(const uint8_t *data, size_t len, af_arena *arena, Request **req,
                     af_error *err) {
  struct watched w = {arena, false};
  ProtobufCAllocator alloc = {watched_alloc, watched_free, &w};
  *req = grpc__reflection__v1__server_reflection_request__unpack(&alloc, len, data);
  if (*req != NULL)
    return AF_OK;
  if (w.failed)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of request memory decoding %zu bytes",
                        len);
  return af_error_set(err, AF_ERR_SERIALIZATION,
                      "cannot decode ServerReflectionRequest (%zu bytes)", len);
}

af_err af_reflection_answer(const af_reflection *r, const uint8_t *req, size_t len, af_arena *arena,
                            uint8_t **out, size_t *out_len, af_error *err) {
  Request *rq;
  af_err rc = decode(req, len, arena, &rq, err);
  if (rc != AF_OK)
    return rc;
  Response resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
  resp.valid_host = rq->host;
  resp.original_request = rq;
  if (!answer_request(r, rq, arena, &resp))
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of request memory answering reflection");
  *out_len = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
  *out = af_arena_alloc(arena, *out_len);
  if (*out == NULL)
    return af_error_set(err, AF_ERR_INTERNAL_SERVER, "out of request memory packing %zu bytes",
                        *out_len);
  grpc__reflection__v1__server_reflection_response__pack(&resp, *out);
  return AF_OK;
}
