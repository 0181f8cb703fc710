/* The error table made readable: each lookup is generated from AF_ERR_MAP, so a new error
 * cannot miss a column. */
#include "flows/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *af_err_type(af_err code) {
  switch (code) {
  case AF_OK:
    return "";
#define XX(name, type, http, rpc)                                                                  \
  case AF_ERR_##name:                                                                              \
    return type;
    AF_ERR_MAP(XX)
#undef XX
  }
  return "InternalServerException";
}

int af_err_http_status(af_err code) {
  switch (code) {
  case AF_OK:
    return 200;
#define XX(name, type, http, rpc)                                                                  \
  case AF_ERR_##name:                                                                              \
    return http;
    AF_ERR_MAP(XX)
#undef XX
  }
  return 500;
}

enum af_rpc_code af_err_rpc_code(af_err code) {
  switch (code) {
  case AF_OK:
    return AF_RPC_OK;
#define XX(name, type, http, rpc)                                                                  \
  case AF_ERR_##name:                                                                              \
    return rpc;
    AF_ERR_MAP(XX)
#undef XX
  }
  return AF_RPC_INTERNAL;
}

af_err af_error_set(af_error *err, af_err code, const char *fmt, ...) {
  if (err == NULL)
    return code;
  err->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return code;
}

char *af_escape(char *dst, size_t dstsz, const char *src, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (dstsz == 0)
    return dst;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)src[i];
    int plain = c >= 0x20 && c < 0x7f && c != '\\';
    size_t need = plain ? 1 : 4;
    if (o + need >= dstsz)
      break;
    if (plain) {
      dst[o++] = (char)c;
      continue;
    }
    dst[o++] = '\\';
    dst[o++] = 'x';
    dst[o++] = hex[c >> 4];
    dst[o++] = hex[c & 15];
  }
  dst[o] = '\0';
  return dst;
}
