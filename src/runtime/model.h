/* What a loaded model holds: its graph and the mappings its data lives in. */
#ifndef GF_MODEL_H
#define GF_MODEL_H

#include "graph.h"
#include "proto_tensor.h"

struct gf_model {
    char *path;
    gf_graph *graph;
    gf_external external;
    /* built on demand for gf_model_summary_get */
    const char **summary_domains;
    int64_t *summary_versions;
    const char **summary_ops;
    int *summary_counts;
    int summary_n_types;
};

/* Brings back the weight copies a session evicted (proto_tensor.h) and keeps them
 * resident from now on: for whatever reads or writes the model's weights outside a
 * session (saving, surgery, training). The model's contents do not change, hence const. */
gf_status gf_model_keep_weights(const gf_model *m);

/* Builds the IR from a parsed ModelProto; initializer data is taken over. */
gf_status gf_graph_from_proto(Onnx__ModelProto *mp, const gf_raw_span *spans, int n_spans, gf_external *ext,
                              gf_graph **out);

#endif
