/* TensorProto <-> gf_tensor, shared by the loader, the saver and .pb file I/O.
 * One of the few places that sees protobuf-c. */
#ifndef GF_PROTO_TENSOR_H
#define GF_PROTO_TENSOR_H

#include "onnx.pb-c.h"
#include "graft.h"
#include "proto_scan.h"

/* Where external data files are found, and the mappings made for them (kept
 * until the model is freed). NULL: external data is refused.
 *
 * Weights a file stores at offsets their element type cannot be read at are copied
 * once, aligned. A large one's copy is a mapping of its own that a session may evict
 * (gf_external_evict) once every step that reads it holds a copy of its own (a
 * convolution's reordered weights): its pages are given back and it is mapped without
 * access, so that a stray read faults rather than reads zeros. gf_external_restore
 * reads it from the file again, at the same address. Only while one session alone uses
 * the model, and never once something else has needed the weights (saving, training):
 * then they stay resident. */
typedef struct gf_external {
    const char *base_dir;
    int n_maps, cap_maps;
    struct gf_mapping { void *addr; size_t len; } *maps;
    int n_copies, cap_copies;
    struct gf_copy { void *addr; size_t len; const void *src; size_t nbytes; int evicted; } *copies;
    int n_sessions;     /* sessions on the model (gf_external_sessions) */
    int resident;       /* copies are never evicted again */
} gf_external;

/* Converts a TensorProto. Embedded raw_data is taken over without a copy (the
 * proto's field is emptied). `mapped`, when not NULL, is the tensor's raw_data
 * in the mapped model file (see proto_scan.h): used in place where aligned, else
 * copied (a large copy can be evicted, see gf_external).
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

/* A session on the model begins (+1) or ends (-1). */
void gf_external_sessions(gf_external *ext, int delta);
/* Evicts the copy that data is, if it is one, when the calling session is the model's
 * only one and the weights need not stay resident. */
void gf_external_evict(gf_external *ext, const void *data);
/* Reads every evicted copy from its file again; with `keep`, none is evicted again. */
gf_status gf_external_restore(gf_external *ext, int keep);
/* Whether data is one of ext's copies: writable storage the model owns. */
int gf_external_is_copy(const gf_external *ext, const void *data);
/* Bytes of copies evicted now (for tests). */
size_t gf_external_evicted_bytes(gf_external *ext);

#endif
