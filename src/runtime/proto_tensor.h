/* TensorProto <-> gf_tensor, shared by the loader, the saver and .pb file I/O.
 * One of the few places that sees protobuf-c. */
#ifndef GF_PROTO_TENSOR_H
#define GF_PROTO_TENSOR_H

#include "onnx.pb-c.h"
#include "graft.h"

/* Where external data files are found, and the mappings made for them (kept
 * until the model is freed). NULL: external data is refused. */
typedef struct gf_external {
    const char *base_dir;
    int n_maps, cap_maps;
    struct gf_mapping { void *addr; size_t len; } *maps;
} gf_external;

/* Converts a TensorProto. Embedded raw_data is taken over without a copy (the
 * proto's field is emptied); `what` names the tensor in error messages. */
gf_status gf_tensor_from_proto(Onnx__TensorProto *p, gf_external *ext, const char *what, gf_tensor **out);

void gf_external_release(gf_external *ext);

#endif
