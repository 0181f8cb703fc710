/* The serialized google.protobuf.FileDescriptorSet of every service appflowd serves
 * (gen/appflow.protoset, embedded at build time by cmake/embed.cmake), for server reflection.
 * Read-only data: safe from any thread. */
#ifndef AF_GRPC_PROTOSET_H
#define AF_GRPC_PROTOSET_H

#include <stddef.h>

extern const unsigned char af_protoset[];
extern const size_t af_protoset_len;

#endif
