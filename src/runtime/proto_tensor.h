/* TensorProto <-> gf_tensor, shared by the loader, the saver and .pb file I/O.
 * One of the few places that sees protobuf-c. */
#ifndef GF_PROTO_TENSOR_H
#define GF_PROTO_TENSOR_H

#include "onnx.pb-c.h"
#include "graft.h"
#include "proto_scan.h"

/* Where external data files are found, and the mappings made for them (kept
 * until the model is freed). NULL: external data is refused. */
typedef struct gf_external {
    const char *base_dir;
    int n_maps, cap_maps;
    struct gf_mapping { void *addr; size_t len; } *maps;
} gf_external;

/* Converts a TensorProto. Embedded raw_data is taken over without a copy (the
 * proto's field is emptied). `mapped`, when not NULL, is the tensor's raw_data
 * in the mapped model file (see proto_scan.h): used in place where aligned.
 * `what` names the tensor in error messages. */
gf_status gf_tensor_from_proto(Onnx__TensorProto *p, const gf_raw_span *mapped, gf_external *ext, const char *what,
                               gf_tensor **out);

/* Keeps a mapping until gf_external_release. */
gf_status gf_external_keep(gf_external *ext, void *addr, size_t len);
void gf_external_release(gf_external *ext);
/* Gives back the resident pages of data when it lies in one of ext's mappings (the
 * model file's or an external data file's, mapped read-only): the next touch reads
 * them from the file again. Data anywhere else is left alone. */
void gf_external_release_pages(const gf_external *ext, const void *data, size_t nbytes);

#endif
