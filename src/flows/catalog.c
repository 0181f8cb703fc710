/* The catalogs (see catalog.h). Messages are kept as deep copies made by packing and unpacking
 * with protobuf-c's own allocator, so each frees with protobuf_c_message_free_unpacked. */
#include "flows/catalog.h"

#include "common/encode.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* More than AppFlow's connector types (24 today): the enum's values index the tables. */
#define TYPES 64

typedef struct profile_set {
  char *name;
  int type;
  Appflowd__Store__V1__EntitySet *set;
} profile_set;

/* A configuration as responses send it: packed, and its JSON once a door has written it. */
typedef struct kept_config {
  uint8_t *packed;
  size_t len;
  _Atomic(af_pbc_text *) json;
} kept_config;

struct af_catalog {
  Appflow__V1__ConnectorConfiguration *connectors[TYPES];
  kept_config kept[TYPES];
  char *application_types[TYPES];
  pthread_rwlock_t lock; /* guards the entity sets below */
  Appflowd__Store__V1__EntitySet *defaults[TYPES];
  profile_set *profiles;
  size_t nprofiles, cap;
  af_catalog_reloader reload;
  void *reload_ctx;
};

static bool type_ok(int type) { return type > 0 && type < TYPES; }

static void *alloc_block(void *ctx, size_t size) {
  (void)ctx;
  return malloc(size);
}

/* A deep copy of m, or NULL when out of memory. The bytes it is unpacked from (m packed, which
 * the copy packs to as well) go to *packed and *len when packed is not NULL, else are freed. */
static ProtobufCMessage *copy(const ProtobufCMessage *m, uint8_t **packed, size_t *len) {
  size_t n = 0;
  uint8_t *buf = af_encode_alloc(m, 0, 0, alloc_block, NULL, &n);
  ProtobufCMessage *out =
      buf != NULL ? protobuf_c_message_unpack(m->descriptor, NULL, n, buf) : NULL;
  if (out != NULL && packed != NULL) {
    *packed = buf;
    *len = n;
    return out;
  }
  free(buf);
  return out;
}

static void release(void *m) {
  if (m != NULL)
    protobuf_c_message_free_unpacked(m, NULL);
}

static void forget_kept(kept_config *k) {
  free(k->packed);
  free(atomic_load(&k->json));
  k->packed = NULL;
  k->len = 0;
  atomic_store(&k->json, NULL);
}

af_catalog *af_catalog_new(void) {
  af_catalog *cat = calloc(1, sizeof *cat);
  if (cat != NULL && pthread_rwlock_init(&cat->lock, NULL) != 0) {
    free(cat);
    return NULL;
  }
  for (int t = 0; cat != NULL && t < TYPES; t++)
    atomic_init(&cat->kept[t].json, NULL);
  return cat;
}

void af_catalog_free(af_catalog *cat) {
  if (cat == NULL)
    return;
  for (int t = 0; t < TYPES; t++) {
    release(cat->connectors[t]);
    forget_kept(&cat->kept[t]);
    release(cat->defaults[t]);
    free(cat->application_types[t]);
  }
  af_catalog_clear_profile_entities(cat);
  free(cat->profiles);
  pthread_rwlock_destroy(&cat->lock);
  free(cat);
}

bool af_catalog_set_connector(af_catalog *cat, const Appflow__V1__ConnectorConfiguration *cfg,
                              const char *application_type) {
  int t = (int)cfg->connector_type;
  if (!type_ok(t))
    return true; /* nothing to key it by: the loader checks types before this */
  uint8_t *packed = NULL;
  size_t len = 0;
  ProtobufCMessage *c = copy(&cfg->base, &packed, &len);
  char *app = application_type != NULL ? strdup(application_type) : NULL;
  if (c == NULL || (application_type != NULL && app == NULL)) {
    release(c);
    free(app);
    free(packed);
    return false;
  }
  release(cat->connectors[t]);
  forget_kept(&cat->kept[t]);
  free(cat->application_types[t]);
  cat->connectors[t] = (Appflow__V1__ConnectorConfiguration *)c;
  cat->kept[t].packed = packed;
  cat->kept[t].len = len;
  cat->application_types[t] = app;
  return true;
}

const Appflow__V1__ConnectorConfiguration *af_catalog_connector(const af_catalog *cat, int type) {
  return cat != NULL && type_ok(type) ? cat->connectors[type] : NULL;
}

bool af_catalog_connector_packed(af_catalog *cat, int type, af_pbc_packed *out) {
  if (cat == NULL || !type_ok(type) || cat->connectors[type] == NULL)
    return false;
  kept_config *k = &cat->kept[type];
  *out = (af_pbc_packed){&cat->connectors[type]->base, k->packed, k->len, &k->json};
  return true;
}

const char *af_catalog_application_type(const af_catalog *cat, int type) {
  return cat != NULL && type_ok(type) ? cat->application_types[type] : NULL;
}

static profile_set *find_profile(af_catalog *cat, const char *name) {
  for (size_t i = 0; i < cat->nprofiles; i++)
    if (strcmp(cat->profiles[i].name, name) == 0)
      return &cat->profiles[i];
  return NULL;
}

/* The slot for a profile's own set, made if need be; NULL when out of memory. */
static profile_set *profile_slot(af_catalog *cat, const char *name) {
  profile_set *p = find_profile(cat, name);
  if (p != NULL)
    return p;
  if (cat->nprofiles == cat->cap) {
    size_t cap = cat->cap ? 2 * cat->cap : 8;
    profile_set *np = realloc(cat->profiles, cap * sizeof *np);
    if (np == NULL)
      return NULL;
    cat->profiles = np;
    cat->cap = cap;
  }
  p = &cat->profiles[cat->nprofiles];
  if ((p->name = strdup(name)) == NULL)
    return NULL;
  p->set = NULL;
  cat->nprofiles++;
  return p;
}

bool af_catalog_set_entities(af_catalog *cat, int type, const char *profile,
                             const Appflowd__Store__V1__EntitySet *set) {
  if (!type_ok(type))
    return true;
  Appflowd__Store__V1__EntitySet *c = NULL;
  if (set != NULL && (c = (Appflowd__Store__V1__EntitySet *)copy(&set->base, NULL, NULL)) == NULL)
    return false;
  pthread_rwlock_wrlock(&cat->lock);
  bool ok = true;
  if (profile == NULL) {
    release(cat->defaults[type]);
    cat->defaults[type] = c;
  } else {
    profile_set *p = set != NULL ? profile_slot(cat, profile) : find_profile(cat, profile);
    ok = p != NULL || set == NULL;
    if (p != NULL) {
      release(p->set);
      p->set = c;
      p->type = type;
    } else {
      release(c);
    }
  }
  pthread_rwlock_unlock(&cat->lock);
  return ok;
}

void af_catalog_clear_profile_entities(af_catalog *cat) {
  pthread_rwlock_wrlock(&cat->lock);
  for (size_t i = 0; i < cat->nprofiles; i++) {
    free(cat->profiles[i].name);
    release(cat->profiles[i].set);
  }
  cat->nprofiles = 0;
  pthread_rwlock_unlock(&cat->lock);
}

void af_catalog_read_entities(af_catalog *cat, int type, const char *profile,
                              void (*fn)(const Appflowd__Store__V1__EntitySet *set, void *ctx),
                              void *ctx) {
  pthread_rwlock_rdlock(&cat->lock);
  const profile_set *p = profile != NULL ? find_profile(cat, profile) : NULL;
  const Appflowd__Store__V1__EntitySet *set = NULL;
  if (p != NULL && p->set != NULL && p->type == type)
    set = p->set;
  else if (type_ok(type))
    set = cat->defaults[type];
  fn(set, ctx);
  pthread_rwlock_unlock(&cat->lock);
}

void af_catalog_set_reloader(af_catalog *cat, af_catalog_reloader fn, void *ctx) {
  cat->reload = fn;
  cat->reload_ctx = ctx;
}

int af_catalog_reload(af_catalog *cat, char *msg, size_t msgsz) {
  if (cat->reload == NULL)
    return 0; /* nothing but the built-in data, which cannot change */
  return cat->reload(cat->reload_ctx, cat, msg, msgsz);
}
