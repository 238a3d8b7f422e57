/* Finds the initializers' raw_data in a serialized ModelProto, so that the
 * weights can stay in the mapped file instead of being copied by the parser. */
#ifndef GF_PROTO_SCAN_H
#define GF_PROTO_SCAN_H

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

#endif
