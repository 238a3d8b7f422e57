/* Weights a file stores at offsets a float cannot be read at are copied when the model
 * loads; a session evicts such a copy once the convolution reading it holds its own
 * reordered one, and brings it back whenever something needs it again (another plan,
 * another session, saving). Checked on a Conv + Add graph written with its weights
 * unaligned: outputs against a direct convolution computed here and against the same
 * model read from memory (where nothing is evicted), which copies are evicted when, that
 * a flood of other plans in oneDNN's cache does not make the convolution read its evicted
 * weights again, and that a plan the session lets go leaves the cache. */
#include "graft.h"
#include "onnx.pb-c.h"
#include "ops/dnnl_util.h"
#include "runtime/graph.h"
#include "runtime/model.h"
#include "test_check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { C = 64, H = 32, K = 3 };
#define W_BYTES ((size_t)C * C * K * K * sizeof(float))
#define ADD_BYTES ((size_t)C * H * H * sizeof(float))

static float weight[C * C * K * K], bias[C], addend[C * H * H];

/* A tensor proto of float data; dims as given. */
static Onnx__TensorProto *tensor(const char *name, int rank, const int64_t *dims, const float *data, size_t bytes)
{
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_dims = (size_t)rank;
    t->dims = (int64_t *)dims;
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)data;
    t->raw_data.len = bytes;
    return t;
}

static Onnx__ValueInfoProto *value_info(const char *name, int rank, const char *const *dims, const int64_t *sizes)
{
    Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = (char *)name;
    Onnx__TypeProto *type = calloc(1, sizeof *type);
    onnx__type_proto__init(type);
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    Onnx__TensorShapeProto *shape = calloc(1, sizeof *shape);
    onnx__tensor_shape_proto__init(shape);
    shape->n_dim = (size_t)rank;
    shape->dim = calloc((size_t)rank, sizeof *shape->dim);
    for (int d = 0; d < rank; d++) {
        Onnx__TensorShapeProto__Dimension *dim = calloc(1, sizeof *dim);
        onnx__tensor_shape_proto__dimension__init(dim);
        if (dims[d]) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = (char *)dims[d];
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = sizes[d];
        }
        shape->dim[d] = dim;
    }
    tt->shape = shape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tt;
    v->type = type;
    return v;
}

static Onnx__NodeProto *node(const char *op, int n_in, char **in, char *out)
{
    Onnx__NodeProto *n = calloc(1, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->n_input = (size_t)n_in;
    n->input = in;
    n->n_output = 1;
    n->output = calloc(1, sizeof(char *));
    n->output[0] = out;
    return n;
}

static Onnx__AttributeProto *ints_attr(const char *name, int n, const int64_t *v)
{
    Onnx__AttributeProto *a = calloc(1, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)n;
    a->ints = (int64_t *)v;
    return a;
}

static void free_value_info(Onnx__ValueInfoProto *v)
{
    Onnx__TensorShapeProto *shape = v->type->tensor_type->shape;
    for (size_t d = 0; d < shape->n_dim; d++) free(shape->dim[d]);
    free(shape->dim);
    free(shape);
    free(v->type->tensor_type);
    free(v->type);
    free(v);
}

/* Y = Conv(X, W, B) with 3x3 kernels and 1-pixel pads, then Add(Y, A) when `with_add`
 * (X: N x C x H x H, N symbolic) or else X's spatial dims symbolic too. The graph's name
 * is `pad` characters long and W's doc string `gap`: they move the raw data of W and of
 * A in the file. With `external`, W's bytes are in that file at offset 3 instead. */
static uint8_t *pack_model(int with_add, int pad, int gap, const char *external, size_t *len)
{
    static const int64_t w_dims[4] = {C, C, K, K}, b_dims[1] = {C}, a_dims[3] = {C, H, H};
    static const int64_t pads[4] = {1, 1, 1, 1}, x_sizes[4] = {0, C, H, H};
    static const char *const fixed[4] = {"N", NULL, NULL, NULL}, *const free_hw[4] = {"N", NULL, "height", "width"};
    char graph_name[16] = "", doc[16] = "";
    memset(graph_name, 'g', (size_t)pad);
    memset(doc, 'd', (size_t)gap);
    Onnx__TensorProto *inits[3] = {tensor("W", 4, w_dims, weight, W_BYTES), tensor("B", 1, b_dims, bias, sizeof bias),
                                   tensor("A", 3, a_dims, addend, ADD_BYTES)};
    inits[0]->doc_string = doc;
    Onnx__StringStringEntryProto location = ONNX__STRING_STRING_ENTRY_PROTO__INIT, offset = location;
    Onnx__StringStringEntryProto *entries[2] = {&location, &offset};
    if (external) {
        location.key = "location";
        location.value = (char *)external;
        offset.key = "offset";
        offset.value = "3";
        inits[0]->has_raw_data = 0;
        inits[0]->has_data_location = 1;
        inits[0]->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        inits[0]->n_external_data = 2;
        inits[0]->external_data = entries;
    }
    char *conv_in[3] = {"X", "W", "B"}, *add_in[2] = {"Y", "A"};
    Onnx__NodeProto *nodes[2] = {node("Conv", 3, conv_in, with_add ? "Y" : "Z"), node("Add", 2, add_in, "Z")};
    Onnx__AttributeProto *attrs[1] = {ints_attr("pads", 4, pads)};
    nodes[0]->n_attribute = 1;
    nodes[0]->attribute = attrs;
    Onnx__ValueInfoProto *in = value_info("X", 4, with_add ? fixed : free_hw, x_sizes);
    Onnx__ValueInfoProto *out = value_info("Z", 4, with_add ? fixed : free_hw, x_sizes);
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = graph_name;
    graph.n_node = with_add ? 2 : 1;
    graph.node = nodes;
    graph.n_initializer = with_add ? 3 : 2;
    graph.initializer = inits;
    graph.n_input = graph.n_output = 1;
    graph.input = &in;
    graph.output = &out;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets = &opset;
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 13;
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.graph = &graph;
    model.n_opset_import = 1;
    model.opset_import = &opsets;
    *len = onnx__model_proto__get_packed_size(&model);
    uint8_t *bytes = malloc(*len);
    onnx__model_proto__pack(&model, bytes);
    for (int i = 0; i < 3; i++) free(inits[i]);
    for (int i = 0; i < 2; i++) {
        free(nodes[i]->output);
        free(nodes[i]);
    }
    free(attrs[0]);
    free_value_info(in);
    free_value_info(out);
    return bytes;
}

static long offset_of(const uint8_t *file, size_t len, const void *data, size_t n)
{
    const uint8_t *hit = memmem(file, len, data, n);
    return hit ? (long)(hit - file) : -1;
}

static void write_file(const char *path, const void *a, size_t na, const void *b, size_t nb)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* Z = Conv(X) + A for one image, directly. */
static void reference(const float *x, float *z)
{
    for (int m = 0; m < C; m++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < H; j++) {
                double sum = bias[m];
                for (int c = 0; c < C; c++)
                    for (int p = 0; p < K; p++)
                        for (int q = 0; q < K; q++) {
                            int y = i + p - 1, xx = j + q - 1;
                            if (y >= 0 && y < H && xx >= 0 && xx < H)
                                sum += (double)weight[((m * C + c) * K + p) * K + q] * x[(c * H + y) * H + xx];
                        }
                z[(m * H + i) * H + j] = (float)sum + addend[(m * H + i) * H + j];
            }
}

/* Runs s on n images; the output, or NULL after reporting the failure. */
static gf_tensor *run(gf_session *s, const float *x, int n)
{
    gf_tensor in = {GF_FLOAT, 4, {n, C, H, H}, (void *)x, 0}, *out = NULL;
    const gf_tensor *ins[1] = {&in};
    gf_status st = gf_session_run(s, ins, &out);
    CHECK(!st, "run on %d images: %s", n, gf_last_error());
    return st ? NULL : out;
}

static void check_against_reference(const gf_tensor *z, const float *x, int n, const char *what)
{
    static float want[C * H * H];
    double worst = 0, scale = 0;
    for (int i = 0; z && i < n; i++) {
        reference(x + (size_t)i * C * H * H, want);
        const float *got = (const float *)z->data + (size_t)i * C * H * H;
        for (int k = 0; k < C * H * H; k++) {
            worst = fmax(worst, fabs(got[k] - want[k]));
            scale = fmax(scale, fabs(want[k]));
        }
    }
    CHECK(z && worst <= 1e-4 * scale, "%s: max |graft - direct| %g against max |direct| %g", what, worst, scale);
}

static int same_bits(const gf_tensor *a, const gf_tensor *b)
{
    return a && b && gf_tensor_nbytes(a) == gf_tensor_nbytes(b) && !memcmp(a->data, b->data, gf_tensor_nbytes(a));
}

/* Other plans enough to overflow oneDNN's plan cache (512): a convolution over X of every
 * height from 1 to 600. */
static void flood_plan_cache(void)
{
    size_t len;
    uint8_t *bytes = pack_model(0, 0, 0, NULL, &len);
    gf_model *m = NULL;
    gf_session *s = NULL;
    CHECK(!gf_model_load_buffer(bytes, len, &m) && !gf_session_new(m, NULL, &s), "%s", gf_last_error());
    float *x = calloc((size_t)C * 600 * 2, sizeof *x);
    for (int h = 1; s && h <= 600; h++) {
        gf_tensor in = {GF_FLOAT, 4, {1, C, h, 2}, x, 0}, *out = NULL;
        const gf_tensor *ins[1] = {&in};
        gf_status st = gf_session_run(s, ins, &out);
        CHECK(!st, "flooding the plan cache, height %d: %s", h, gf_last_error());
        gf_tensor_free(out);
        if (st) break;
    }
    free(x);
    gf_session_free(s);
    gf_model_free(m);
    free(bytes);
}

static size_t evicted(gf_model *m) { return gf_external_evicted_bytes(&m->external); }

int main(void)
{
    srand(7);
    for (size_t i = 0; i < sizeof weight / sizeof *weight; i++) weight[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < C; i++) bias[i] = (float)rand() / RAND_MAX;
    for (size_t i = 0; i < sizeof addend / sizeof *addend; i++) addend[i] = (float)rand() / RAND_MAX;
    float *x = malloc(2 * sizeof addend);
    for (size_t i = 0; i < 2 * sizeof addend / sizeof *x; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;

    /* a layout of the file where both W and A lie at offsets a float cannot be read at */
    size_t len = 0;
    uint8_t *bytes = NULL;
    for (int pad = 0; pad < 4 && !bytes; pad++)
        for (int gap = 0; gap < 4 && !bytes; gap++) {
            bytes = pack_model(1, pad, gap, NULL, &len);
            if (offset_of(bytes, len, weight, W_BYTES) % 4 == 0 || offset_of(bytes, len, addend, ADD_BYTES) % 4 == 0) {
                free(bytes);
                bytes = NULL;
            }
        }
    CHECK(bytes, "no layout puts both weights at unaligned offsets");
    if (!bytes) return 1;
    char dir[] = "/tmp/graft-weight-copies-XXXXXX", path[64], saved[64], ext_path[64], ext_data[64];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    snprintf(saved, sizeof saved, "%s/saved.onnx", dir);
    snprintf(ext_path, sizeof ext_path, "%s/external.onnx", dir);
    snprintf(ext_data, sizeof ext_data, "%s/weights.bin", dir);
    write_file(path, bytes, len, NULL, 0);

    /* the same model read from memory: raw data taken from protobuf, nothing to evict */
    gf_model *plain = NULL, *m = NULL;
    gf_session *ps = NULL, *s = NULL, *s2 = NULL;
    CHECK(!gf_model_load_buffer(bytes, len, &plain) && !gf_session_new(plain, NULL, &ps), "%s", gf_last_error());
    CHECK(plain && plain->external.n_copies == 0, "a model read from memory made %d copies", plain->external.n_copies);
    gf_tensor *want1 = run(ps, x, 1), *want2 = run(ps, x, 2);

    CHECK(!gf_model_load(path, &m), "%s", gf_last_error());
    CHECK(m->external.n_copies == 2, "W and A are copied when loaded: %d copies", m->external.n_copies);
    CHECK(!gf_session_new(m, NULL, &s), "%s", gf_last_error());
    gf_tensor *z = run(s, x, 1);
    check_against_reference(z, x, 1, "first run");
    CHECK(same_bits(z, want1), "first run: not the bits of the model read from memory");
    CHECK(evicted(m) == W_BYTES, "after the first plan, W's copy (%zu bytes) alone is evicted, not %zu (A is read "
          "by the Add on every run)", W_BYTES, evicted(m));
    gf_tensor_free(z);

    /* a plan the session lets go (planning for another batch) leaves the cache, its
     * reordered W with it; checked before the cache is full, when nothing else leaves */
    int plans = gf_dnnl_plan_cache_count();
    for (int n = 2; n >= 1; n--) {
        gf_tensor_free(run(s, x, n));
        CHECK(gf_dnnl_plan_cache_count() == plans, "planned for %d image(s): %d plans cached, %d before", n,
              gf_dnnl_plan_cache_count(), plans);
    }

    flood_plan_cache();
    z = run(s, x, 1);
    CHECK(same_bits(z, want1), "after other plans filled oneDNN's cache: other bits");
    gf_tensor_free(z);

    z = run(s, x, 2); /* a new plan reads W again */
    check_against_reference(z, x, 2, "two images");
    CHECK(same_bits(z, want2), "two images: not the bits of the model read from memory");
    CHECK(evicted(m) == W_BYTES, "the second plan evicts W again: %zu bytes evicted", evicted(m));
    gf_tensor_free(z);

    CHECK(!gf_session_new(m, NULL, &s2), "%s", gf_last_error());
    z = run(s2, x, 1);
    CHECK(same_bits(z, want1), "a second session: other bits");
    CHECK(evicted(m) == 0, "with two sessions on the model nothing stays evicted: %zu bytes", evicted(m));
    gf_tensor_free(z);
    z = run(s, x, 2);
    CHECK(same_bits(z, want2), "the first session beside the second: other bits");
    gf_tensor_free(z);
    gf_session_free(s2);

    z = run(s, x, 1); /* the only session again: evicts */
    CHECK(same_bits(z, want1) && evicted(m) == W_BYTES, "the only session again: %zu bytes evicted", evicted(m));
    gf_tensor_free(z);
    CHECK(!gf_model_save(m, saved), "%s", gf_last_error());
    CHECK(evicted(m) == 0, "saving brings the weights back: %zu bytes still evicted", evicted(m));
    gf_model *back = NULL;
    CHECK(!gf_model_load(saved, &back), "%s", gf_last_error());
    if (back) {
        const gf_tensor *w = back->graph->values[gf_graph_find_value(back->graph, "W")].init;
        CHECK(w && !memcmp(w->data, weight, W_BYTES), "the saved model's W is not the original's");
    }
    gf_model_free(back);
    z = run(s, x, 2);
    CHECK(same_bits(z, want2) && evicted(m) == 0, "once saved, the weights stay: %zu bytes evicted", evicted(m));
    gf_tensor_free(z);
    gf_session_free(s);
    gf_model_free(m);

    /* W in an external data file, 3 bytes in */
    free(bytes);
    bytes = pack_model(1, 0, 0, "weights.bin", &len);
    write_file(ext_path, bytes, len, NULL, 0);
    write_file(ext_data, "abc", 3, weight, W_BYTES);
    m = NULL;
    s = NULL;
    CHECK(!gf_model_load(ext_path, &m) && !gf_session_new(m, NULL, &s), "%s", gf_last_error());
    z = s ? run(s, x, 1) : NULL;
    check_against_reference(z, x, 1, "external data");
    CHECK(m && evicted(m) == W_BYTES, "external data: W's copy is evicted (%zu bytes)", m ? evicted(m) : 0);
    gf_tensor_free(z);
    gf_session_free(s);
    gf_model_free(m);

    gf_tensor_free(want1);
    gf_tensor_free(want2);
    gf_session_free(ps);
    gf_model_free(plain);
    free(bytes);
    free(x);
    unlink(path);
    unlink(saved);
    unlink(ext_path);
    unlink(ext_data);
    rmdir(dir);
    if (failures) printf("%d check(s) failed\n", failures);
    else printf("all checks passed\n");
    return failures != 0;
}
