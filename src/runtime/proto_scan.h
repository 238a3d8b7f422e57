/* Finds the initializers' raw_data in a serialized ModelProto, so that the
 * weights can stay in the mapped file instead of being copied by the parser. */
#ifndef GF_PROTO_SCAN_H
#define GF_PROTO_SCAN_H

#include "graft.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gf_raw_span {
    const uint8_t *data; /* NULL when the initializer has no raw_data */
    size_t len;
} gf_raw_span;

/* On success (1): *stripped is a malloc'd copy of the model without the
 * initializers' raw_data, and spans[i] is where initializer i's raw_data lies
 * in `data`. Returns 0 when the bytes are unusual; parse them as they are. */
int gf_scan_model(const void *data, size_t len, uint8_t **stripped, size_t *stripped_len, gf_raw_span **spans,
                  int *n_spans);

/* Refuses, with a message, bytes that would make protobuf-c build more than graft
 * accepts from a file (limits.h): too many nodes, messages or list entries, messages
 * nested too deep, or more memory than there is. `desc` is the message the bytes
 * hold (onnx__model_proto__descriptor, onnx__tensor_proto__descriptor). Bytes that
 * do not parse are left for protobuf-c to refuse. Allocates nothing. */
gf_status gf_scan_limits(const void *data, size_t len, const ProtobufCMessageDescriptor *desc);

#endif
