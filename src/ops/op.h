/* The op registry's contract: what an op family provides and what a kernel sees.
 *
 * An op is one registry entry per (domain, op type, opset range). `infer` runs
 * when a session is planned, with every input's dtype and shape known and its
 * data known only when it is a constant (initializer, Constant, or folded); it
 * sets each output's dtype, rank and dims. `cpu` runs with the inputs' data
 * and outputs already allocated at the shapes `infer` set.
 *
 * Ops whose output shape depends on input data that is not constant (NonZero,
 * say) set `rank = GF_RANK_DYNAMIC` in infer; their kernel then calls
 * gf_op_output() to allocate each output once its shape is known.
 *
 * src/ops knows tensors, nodes and attributes: never sessions, files or training. */
#ifndef GF_OP_H
#define GF_OP_H

#include "../runtime/error.h"
#include "../runtime/graph.h"

#define GF_RANK_DYNAMIC (-2)

/* A kernel loop compiled for x86-64-v4 (AVX-512) and v3 (AVX2, FMA) besides the
 * baseline x86-64 (SSE2, no FMA: every fmaf a call into libm), the best the CPU runs
 * picked when the library loads. ISO C contracts nothing and the clones vectorize
 * without reordering sums, so every clone computes the same bits. */
#define GF_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

typedef struct gf_op_ctx {
    const gf_node *node;
    int n_inputs;
    const gf_tensor **inputs;   /* NULL entries for omitted optional inputs */
    int n_outputs;
    gf_tensor **outputs;        /* NULL entries for omitted optional outputs */
    int planning;               /* set while infer runs, and when a kernel folds constants */
    int shapes_only;            /* set by a session's first planning pass, which wants shapes and
                                   folded constants only: infer builds no fast-path plans then */
    /* Memory layouts (GF_LAYOUT_*) of the inputs and outputs, one byte each; NULL: all plain.
     * A session's layout pass sets them for kernels whose op has a `layouts` hook. */
    unsigned char *in_layout, *out_layout;
    /* Set while a session prepares its steps (else NULL): a kernel that has copied a
     * constant input into storage of its own (a convolution's reordered weights) and
     * will not read the input again says so here, handing over a reference that keeps
     * that storage alive until the session's plan ends. */
    struct gf_kept *kept;
    /* Scratch memory: while a session prepares its steps a kernel may say here how many
     * bytes it needs while running (scratch_need, else NULL); the session's runs then
     * pass that much, 64-byte aligned, at `scratch` (NULL: the kernel finds its own). */
    size_t *scratch_need;
    void *scratch;
} gf_op_ctx;

typedef struct gf_kept {
    const void *data;               /* the input's data pointer; NULL: nothing kept */
    void *holder;                   /* what holds the copy */
    void (*release)(void *holder);  /* called once, when the session no longer needs it */
} gf_kept;

/* Layouts of float activations passed between fast-path kernels. A blocked tensor keeps
 * its logical dims (N x C x spatial) in gf_tensor; its data is oneDNN's channel-blocked
 * nChw16c (nChw8c on CPUs without AVX-512): N x C/b x spatial x b, with C a multiple of
 * b = gf_layout_block(), so that it takes the bytes of the plain tensor. */
enum { GF_LAYOUT_PLAIN = 0, GF_LAYOUT_BLOCKED = 1 };
/* What a `layouts` hook reports per input and output. */
enum {
    GF_LAYOUT_CAN_BLOCK = 1,    /* may be blocked, whatever the others are */
    GF_LAYOUT_FOLLOW = 2,       /* element-wise: blocked if and only if every FOLLOW tensor of
                                   the node is (they have one shape) */
};
int gf_layout_block(void);
/* False when the environment sets GRAFT_NO_FASTPATH=1: plain reference kernels only. */
int gf_fastpath_enabled(void);

/* Where a tensor's channel planes lie, for kernels that walk one plane (n, c) at a time:
 * element i of plane (n, c) is at plane_base(n, c) + i * step. */
typedef struct gf_planes {
    int64_t c, size, step;   /* channels, elements per plane, step between a plane's elements */
    int blocked;
    int64_t block;
} gf_planes;

static inline gf_planes gf_planes_of(int64_t c, int64_t size, int layout)
{
    gf_planes p = {c, size, 1, layout == GF_LAYOUT_BLOCKED, 1};
    if (p.blocked) p.block = p.step = gf_layout_block();
    return p;
}

static inline int64_t gf_plane_base(const gf_planes *p, int64_t n, int64_t c)
{
    if (!p->blocked) return (n * p->c + c) * p->size;
    return ((n * (p->c / p->block) + c / p->block) * p->size) * p->block + c % p->block;
}

static inline int gf_in_layout(const struct gf_op_ctx *ctx, int i) { return ctx->in_layout ? ctx->in_layout[i] : 0; }
static inline int gf_out_layout(const struct gf_op_ctx *ctx, int i) { return ctx->out_layout ? ctx->out_layout[i] : 0; }

typedef gf_status (*gf_op_fn)(gf_op_ctx *ctx);

typedef struct gf_op {
    const char *domain;         /* "" for the default ONNX domain */
    const char *op_type;
    int since_version;          /* first opset this entry serves */
    int until_version;          /* last opset it serves; 0 for "up to now" */
    gf_op_fn infer;
    gf_op_fn cpu;
    int shape_only;             /* output depends on the inputs' shapes alone (Shape, Size):
                                   computed at plan time whenever those shapes are known */
    /* Optional: which tensors the kernel takes in the blocked layout, for the session's
     * layout pass. Runs after infer (shapes known, in_layout and out_layout zeroed) and
     * sets GF_LAYOUT_CAN_BLOCK or GF_LAYOUT_FOLLOW where the kernel would accept it. NULL:
     * every tensor plain. */
    gf_op_fn layouts;
} gf_op;

/* Each family file defines its table:
 *   const gf_op gf_ops_conv[] = { {...}, {...}, {0} };   terminated by a zeroed entry
 * and registry.c lists the families. */
const gf_op *gf_op_find(const char *domain, const char *op_type, int opset);
/* Whether any opset of (domain, op_type) is registered, for error messages. */
int gf_op_known(const char *domain, const char *op_type);

/* For kernels of dynamic-shape ops: allocates output i (owned by the session). */
gf_status gf_op_output(gf_op_ctx *ctx, int i, gf_dtype dtype, int rank, const int64_t *dims);

/* ---- helpers kernels share ---- */

/* Sets an output's dtype and shape in infer. */
void gf_set_shape(gf_tensor *t, gf_dtype dtype, int rank, const int64_t *dims);
/* Copies dtype and shape. */
void gf_set_like(gf_tensor *t, const gf_tensor *like);

/* Fails with a message naming the node when the input count is outside [lo, hi]. */
gf_status gf_check_inputs(const gf_op_ctx *ctx, int lo, int hi);
/* Fails unless input i has one of the listed dtypes (a GF_UNDEFINED-terminated list). */
gf_status gf_check_dtype(const gf_op_ctx *ctx, int i, const gf_dtype *allowed);

/* Numpy-style multidirectional broadcasting of two shapes. */
gf_status gf_broadcast_shape(const gf_tensor *a, const gf_tensor *b, int *rank, int64_t *dims);
/* Strides (in elements) for reading `t` broadcast to `rank`/`dims`: 0 on broadcast axes. */
void gf_broadcast_strides(const gf_tensor *t, int rank, const int64_t *dims, int64_t *strides);

/* Normalises a possibly negative axis against rank; fails naming the node when out of range. */
gf_status gf_axis(const gf_op_ctx *ctx, int64_t axis, int rank, int *out);

/* Reads element i of an integer tensor (int32/int64/...) as int64. */
int64_t gf_int_at(const gf_tensor *t, int64_t i);
/* Writes v to element i of an integer or bool tensor, wrapping to its width. */
void gf_int_set(gf_tensor *t, int64_t i, int64_t v);
/* A double to int64, saturating, NaN to 0 (C leaves out-of-range conversions undefined). */
int64_t gf_saturate_i64(double v);
/* Reads element i of any numeric tensor as double. */
double gf_num_at(const gf_tensor *t, int64_t i);
/* Writes v to element i, converting to the tensor's dtype (integers saturate to int64, then wrap). */
void gf_num_set(gf_tensor *t, int64_t i, double v);

float gf_half_to_float(uint16_t h);
uint16_t gf_float_to_half(float f);
float gf_bf16_to_float(uint16_t h);
uint16_t gf_float_to_bf16(float f);

/* ---- helpers for ops that move data or take shapes from input values ---- */

/* Whether t's values can be read now: it has data, or no elements at all. */
int gf_values_known(const gf_tensor *t);
/* Marks an output (when not omitted) as shaped by values known only when running. */
void gf_set_dynamic(gf_tensor *t, gf_dtype dtype);
/* Reads a scalar or 1-D int32/int64 tensor into out; fails naming `what` when
 * it is of another type or rank, or holds more than max values. */
gf_status gf_read_ints(const gf_tensor *t, const char *what, int64_t *out, int max, int *count);
/* Copies a strided view of src into contiguous dst: the element of dst at
 * row-major coordinates c over dims is the element of src at sum(c[d] * src_strides[d])
 * (strides in elements, may be 0 or negative). Any element size. */
void gf_copy_strided(void *dst, const void *src, size_t esize, int rank, const int64_t *dims,
                     const int64_t *src_strides);

#endif
