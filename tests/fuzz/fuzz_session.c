/* libFuzzer target: the bytes decoded into a tiny ONNX graph (one or two inputs of
 * small shapes, a few initializers, one to four nodes of any op graft registers,
 * in either domain, with attributes of the names ops read), written as a model,
 * loaded, planned and run twice. Any op, input count, attribute and value the
 * bytes pick must run or be refused with an error: never crash, leak or touch
 * memory it does not own.
 *
 * The decoding, one byte at a time (0 once the input ends):
 *   opset; per graph input: dtype, rank, dims; initializers: count, then dtype,
 *   rank, dims and values each; nodes: count, then per node op (two bytes), inputs
 *   (count, then each one's index among the values so far, the last index meaning
 *   an omitted input), outputs, attributes (count, then name, type and values);
 *   last, the seed of the inputs' values. */
#include "fuzz_common.h"

#include "onnx.pb-c.h"
#include "ops/op.h"

extern const gf_op gf_ops_conv[], gf_ops_pool[], gf_ops_norm[], gf_ops_gemm[], gf_ops_elementwise[], gf_ops_unary[],
    gf_ops_shape[], gf_ops_index[], gf_ops_reduce[], gf_ops_softmax[], gf_ops_resize[], gf_ops_loss[],
    gf_ops_detection[], gf_ops_quant[], gf_ops_einsum[], gf_ops_conv_grad[], gf_ops_pool_grad[], gf_ops_norm_grad[],
    gf_ops_activation_grad[], gf_ops_loss_train[], gf_ops_movement_grad[], gf_ops_optimizer[], gf_ops_train_util[];

static const gf_op *const families[] = {
    gf_ops_conv, gf_ops_pool, gf_ops_norm, gf_ops_gemm, gf_ops_elementwise, gf_ops_unary, gf_ops_shape,
    gf_ops_index, gf_ops_reduce, gf_ops_softmax, gf_ops_resize, gf_ops_loss, gf_ops_detection, gf_ops_quant,
    gf_ops_einsum, gf_ops_conv_grad, gf_ops_pool_grad, gf_ops_norm_grad, gf_ops_activation_grad, gf_ops_loss_train,
    gf_ops_movement_grad, gf_ops_optimizer, gf_ops_train_util,
};

#define MAX_OPS 1024
static const gf_op *ops[MAX_OPS];
static int n_ops;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const gf_op *op = families[f]; op->op_type && n_ops < MAX_OPS; op++) {
            int seen = 0;
            for (int i = 0; i < n_ops && !seen; i++)
                seen = !strcmp(ops[i]->op_type, op->op_type) && !strcmp(ops[i]->domain, op->domain);
            if (!seen) ops[n_ops++] = op;
        }
    return 0;
}

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static unsigned next(reader *r) { return r->p < r->end ? *r->p++ : 0; }

/* ---- everything the model is made of, freed at once ---- */

#define MAX_VALUES 32
#define MAX_NODES 4
#define MAX_ATTRS 4
#define MAX_LIST 8
#define MAX_ELEMS 64

typedef struct built {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opsets[2], *opset_ptrs[2];
    Onnx__NodeProto nodes[MAX_NODES], *node_ptrs[MAX_NODES];
    char *node_inputs[MAX_NODES][6], *node_outputs[MAX_NODES][3];
    char node_names[MAX_NODES][16];
    Onnx__AttributeProto attrs[MAX_NODES][MAX_ATTRS], *attr_ptrs[MAX_NODES][MAX_ATTRS];
    int64_t attr_ints[MAX_NODES][MAX_ATTRS][MAX_LIST];
    float attr_floats[MAX_NODES][MAX_ATTRS][MAX_LIST];
    Onnx__TensorProto attr_tensors[MAX_NODES][MAX_ATTRS];
    Onnx__TensorProto inits[4], *init_ptrs[4];
    uint8_t tensor_data[4 + MAX_NODES * MAX_ATTRS][MAX_ELEMS * 8];
    int64_t tensor_dims[4 + MAX_NODES * MAX_ATTRS][4];
    Onnx__ValueInfoProto inputs[2], *input_ptrs[2], outputs[MAX_NODES * 3], *output_ptrs[MAX_NODES * 3];
    Onnx__TypeProto input_types[2];
    Onnx__TypeProto__Tensor input_tensor_types[2];
    Onnx__TensorShapeProto input_shapes[2];
    Onnx__TensorShapeProto__Dimension input_dims[2][4], *input_dim_ptrs[2][4];
    char value_names[MAX_VALUES][16];
    int n_values;
} built;

static const gf_dtype input_dtypes[8] = {GF_FLOAT, GF_FLOAT, GF_FLOAT, GF_INT64, GF_INT32, GF_BOOL, GF_UINT8, GF_DOUBLE};
static const gf_dtype init_dtypes[8] = {GF_INT64, GF_INT64, GF_FLOAT, GF_FLOAT, GF_INT32, GF_BOOL, GF_FLOAT, GF_UINT8};
static const int64_t small_dims[8] = {1, 2, 3, 4, 1, 2, 5, 0};
static const int64_t small_ints[16] = {-1, 0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, -2, -3, 16, 1};
static const int64_t extreme_ints[8] = {INT64_MIN, INT64_MAX, (int64_t)1 << 31, -((int64_t)1 << 31) - 1,
                                        1000, 1 << 20, -1000, 65536};
static const float small_floats[16] = {0, 1, -1, 0.5f, 2, 1e-5f, 0.9f, -0.5f, 3, 0.1f, 10, 1e-30f, 1e30f, 0, 0, 0};
static const char *const strings[] = {
    "nearest", "linear", "cubic", "constant", "reflect", "edge", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID",
    "DCR", "CRD", "half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "tf_crop_and_resize",
    "round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "mean", "sum", "none", "max", "min", "",
    "ij,jk->ik", "i,i", "...ij->...ji", "bij,bjk->bik", "ii->i",
};

typedef struct attr_kind {
    const char *name;
    Onnx__AttributeProto__AttributeType type;
} attr_kind;

#define A(name, type) {name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__##type}
static const attr_kind attr_kinds[] = {
    A("axis", INT), A("axes", INTS), A("perm", INTS), A("kernel_shape", INTS), A("strides", INTS), A("pads", INTS),
    A("dilations", INTS), A("group", INT), A("alpha", FLOAT), A("beta", FLOAT), A("epsilon", FLOAT),
    A("momentum", FLOAT), A("transA", INT), A("transB", INT), A("keepdims", INT), A("to", INT), A("mode", STRING),
    A("auto_pad", STRING), A("ceil_mode", INT), A("count_include_pad", INT), A("storage_order", INT),
    A("split", INTS), A("starts", INTS), A("ends", INTS), A("shape", INTS), A("value", TENSOR),
    A("value_float", FLOAT), A("value_int", INT), A("value_ints", INTS), A("value_floats", FLOATS),
    A("scales", FLOATS), A("coordinate_transformation_mode", STRING), A("nearest_mode", STRING),
    A("blocksize", INT), A("largest", INT), A("sorted", INT), A("exclusive", INT), A("reverse", INT),
    A("noop_with_empty_axes", INT), A("select_last_index", INT), A("upper", INT), A("batch_dims", INT),
    A("reduction", STRING), A("seed", FLOAT), A("dtype", INT), A("high", FLOAT), A("low", FLOAT), A("mean", FLOAT),
    A("scale", FLOAT), A("bias", FLOAT), A("lambd", FLOAT), A("min", FLOAT), A("max", FLOAT), A("equation", STRING),
    A("output_padding", INTS), A("output_shape", INTS), A("training_mode", INT), A("center_point_box", INT),
    A("output_height", INT), A("output_width", INT), A("sampling_ratio", INT), A("spatial_scale", FLOAT),
    A("ignore_index", INT), A("label_smoothing", FLOAT), A("cubic_coeff_a", FLOAT), A("exclude_outside", INT),
    A("extrapolation_value", FLOAT), A("p", INT), A("size", INT), A("fmod", INT), A("detect_negative", INT),
    A("detect_positive", INT), A("allowzero", INT), A("lr", FLOAT), A("weight_decay", FLOAT), A("step", INT),
    A("count", INT), A("nesterov", INT), A("dampening", FLOAT), A("beta1", FLOAT), A("beta2", FLOAT),
    A("amsgrad", INT), A("centered", INT), A("num_outputs", INT), A("k", INT), A("coordinate_mode", STRING),
    A("dims", INTS), A("value_string", STRING), A("broadcast", INT), A("consumed_inputs", INTS),
};
#undef A
#define N_ATTR_KINDS (sizeof attr_kinds / sizeof *attr_kinds)

static int64_t pick_int(reader *r)
{
    unsigned b = next(r);
    return (b & 0xf0) == 0xf0 ? extreme_ints[b & 7] : small_ints[b & 15];
}

static float pick_float(reader *r)
{
    unsigned b = next(r);
    if (b == 0xfd) return __builtin_nanf("");
    if (b == 0xfe) return __builtin_inff();
    if (b == 0xff) return -__builtin_inff();
    return b < 0x80 ? small_floats[b & 15] : (float)(int8_t)b / 16.0f;
}

/* A small tensor: dtype, rank 0..2, dims and values from the bytes. */
static void make_tensor(built *m, reader *r, int slot, Onnx__TensorProto *t, const char *name)
{
    onnx__tensor_proto__init(t);
    gf_dtype dtype = init_dtypes[next(r) & 7];
    int rank = (int)(next(r) % 3);
    int64_t *dims = m->tensor_dims[slot], n = 1;
    for (int d = 0; d < rank; d++) {
        unsigned b = next(r);
        dims[d] = rank == 1 && (b & 8) ? (int64_t)(b & 7) : small_dims[b & 7]; /* 1-D: up to 7 values */
        n *= dims[d];
    }
    size_t size = gf_dtype_size(dtype);
    uint8_t *data = m->tensor_data[slot];
    for (int64_t i = 0; i < n; i++) {
        uint8_t *p = data + (size_t)i * size;
        switch (dtype) {
        case GF_FLOAT: *(float *)p = pick_float(r); break;
        case GF_INT64: *(int64_t *)p = pick_int(r); break;
        case GF_INT32: *(int32_t *)p = (int32_t)pick_int(r); break;
        case GF_BOOL: *p = next(r) & 1; break;
        default: *p = (uint8_t)next(r); break;
        }
    }
    t->name = (char *)name;
    t->n_dims = (size_t)rank;
    t->dims = dims;
    t->has_data_type = 1;
    t->data_type = (int32_t)dtype;
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)n * size;
    t->raw_data.data = data;
}

static void make_attr(built *m, reader *r, int node, int k)
{
    Onnx__AttributeProto *a = &m->attrs[node][k];
    onnx__attribute_proto__init(a);
    const attr_kind *kind = &attr_kinds[next(r) % N_ATTR_KINDS];
    unsigned b = next(r);
    a->name = (char *)kind->name;
    a->has_type = 1;
    a->type = kind->type;
    if ((b & 0xe0) == 0xe0) { /* now and then, the wrong type for the name */
        static const Onnx__AttributeProto__AttributeType types[] = {
            ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
            ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS,
            ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR,
            ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH};
        a->type = types[b & 7];
    }
    int n = (int)(b % MAX_LIST) + (b & 0x10 ? 0 : 1); /* list length 0..8 */
    if (n > MAX_LIST) n = MAX_LIST;
    switch (a->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        a->has_i = 1;
        a->i = pick_int(r);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        a->has_f = 1;
        a->f = pick_float(r);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        for (int i = 0; i < n; i++) m->attr_ints[node][k][i] = pick_int(r);
        a->n_ints = (size_t)n;
        a->ints = m->attr_ints[node][k];
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        for (int i = 0; i < n; i++) m->attr_floats[node][k][i] = pick_float(r);
        a->n_floats = (size_t)n;
        a->floats = m->attr_floats[node][k];
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
        const char *s = strings[next(r) % (sizeof strings / sizeof *strings)];
        a->has_s = 1;
        a->s.len = strlen(s);
        a->s.data = (uint8_t *)s;
        break;
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        make_tensor(m, r, 4 + node * MAX_ATTRS + k, &m->attr_tensors[node][k], "");
        a->t = &m->attr_tensors[node][k];
        break;
    default: /* a list of strings, or a graph attribute with no graph */
        break;
    }
    m->attr_ptrs[node][k] = a;
}

static const char *value_name(built *m)
{
    snprintf(m->value_names[m->n_values], sizeof m->value_names[0], "v%d", m->n_values);
    return m->value_names[m->n_values++];
}

static void make_input(built *m, reader *r, int i)
{
    Onnx__ValueInfoProto *vi = &m->inputs[i];
    Onnx__TypeProto *tp = &m->input_types[i];
    Onnx__TypeProto__Tensor *tt = &m->input_tensor_types[i];
    Onnx__TensorShapeProto *shape = &m->input_shapes[i];
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    vi->name = (char *)value_name(m);
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)input_dtypes[next(r) & 7];
    tt->shape = shape;
    shape->n_dim = next(r) % 5;
    shape->dim = m->input_dim_ptrs[i];
    for (size_t d = 0; d < shape->n_dim; d++) {
        Onnx__TensorShapeProto__Dimension *dim = &m->input_dims[i][d];
        onnx__tensor_shape_proto__dimension__init(dim);
        unsigned b = next(r);
        if ((b & 0x78) == 0x78) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = "N";
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = small_dims[b & 7];
        }
        m->input_dim_ptrs[i][d] = dim;
    }
    m->input_ptrs[i] = vi;
}

static void make_node(built *m, reader *r, int i)
{
    Onnx__NodeProto *n = &m->nodes[i];
    onnx__node_proto__init(n);
    n->input = m->node_inputs[i];
    n->output = m->node_outputs[i];
    unsigned hi = next(r), lo = next(r);
    const gf_op *op = ops[(hi << 8 | lo) % (unsigned)n_ops];
    n->op_type = (char *)op->op_type;
    n->domain = (char *)op->domain;
    snprintf(m->node_names[i], sizeof m->node_names[0], "n%d", i);
    n->name = m->node_names[i];
    static const int input_counts[8] = {1, 1, 2, 2, 3, 1, 0, 5};
    int n_in = input_counts[next(r) & 7], n_values = m->n_values;
    for (int k = 0; k < n_in; k++) {
        unsigned b = next(r) % (unsigned)(n_values + 1);
        n->input[k] = (int)b == n_values ? "" : m->value_names[b];
    }
    n->n_input = (size_t)n_in;
    unsigned b = next(r);
    int n_out = 1 + ((b & 3) == 3 ? 1 + (int)((b >> 2) & 1) : 0);
    for (int k = 0; k < n_out; k++) n->output[k] = (char *)value_name(m);
    n->n_output = (size_t)n_out;
    n->n_attribute = next(r) % (MAX_ATTRS + 1);
    for (size_t k = 0; k < n->n_attribute; k++) make_attr(m, r, i, (int)k);
    n->attribute = m->attr_ptrs[i];
    m->node_ptrs[i] = n;
}

/* Packs the model the bytes describe; NULL when there is no op to use. */
static uint8_t *build_model(reader *r, size_t *len)
{
    built *m = calloc(1, sizeof *m);
    if (!m) abort();
    static const int64_t opsets[8] = {13, 13, 11, 9, 17, 18, 7, 15};
    onnx__model_proto__init(&m->model);
    onnx__graph_proto__init(&m->graph);
    for (int i = 0; i < 2; i++) {
        onnx__operator_set_id_proto__init(&m->opsets[i]);
        m->opset_ptrs[i] = &m->opsets[i];
    }
    m->opsets[0].domain = "";
    m->opsets[0].has_version = 1;
    m->opsets[0].version = opsets[next(r) & 7];
    m->opsets[1].domain = "ai.graft";
    m->opsets[1].has_version = 1;
    m->opsets[1].version = 1;
    m->model.has_ir_version = 1;
    m->model.ir_version = 8;
    m->model.n_opset_import = 2;
    m->model.opset_import = m->opset_ptrs;
    m->model.graph = &m->graph;
    m->graph.name = "fuzz";

    m->graph.n_input = 1 + next(r) % 2;
    for (size_t i = 0; i < m->graph.n_input; i++) make_input(m, r, (int)i);
    m->graph.input = m->input_ptrs;
    m->graph.n_initializer = next(r) % 4;
    for (size_t i = 0; i < m->graph.n_initializer; i++) {
        make_tensor(m, r, (int)i, &m->inits[i], value_name(m));
        m->init_ptrs[i] = &m->inits[i];
    }
    m->graph.initializer = m->init_ptrs;
    m->graph.n_node = 1 + next(r) % MAX_NODES;
    for (size_t i = 0; i < m->graph.n_node; i++) make_node(m, r, (int)i);
    m->graph.node = m->node_ptrs;
    /* every node output is a graph output, so that every node runs */
    for (size_t i = 0; i < m->graph.n_node; i++)
        for (size_t k = 0; k < m->nodes[i].n_output; k++) {
            Onnx__ValueInfoProto *vi = &m->outputs[m->graph.n_output];
            onnx__value_info_proto__init(vi);
            vi->name = m->nodes[i].output[k];
            m->output_ptrs[m->graph.n_output++] = vi;
        }
    m->graph.output = m->output_ptrs;

    *len = onnx__model_proto__get_packed_size(&m->model);
    uint8_t *bytes = malloc(*len ? *len : 1);
    if (!bytes) abort();
    onnx__model_proto__pack(&m->model, bytes);
    free(m);
    return bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!n_ops) return 0;
    reader r = {data, data + size};
    size_t len;
    uint8_t *bytes = build_model(&r, &len);
    gf_model *m;
    if (!gf_model_load_buffer(bytes, len, &m)) {
        uint32_t seed = next(&r) | next(&r) << 8;
        fuzz_plan_and_run(m, 1, seed);
        fuzz_plan_and_run(m, 1, seed); /* a second model session: nothing may depend on the first */
        gf_model_free(m);
    }
    free(bytes);
    return 0;
}
