/* Private to the conv and pool families and their gradients: the sliding-window
 * geometry they share, and the oneDNN plumbing behind their CPU fast paths.
 *
 * A fast path runs a oneDNN primitive between graft's dense row-major tensors and
 * whatever layouts the primitive prefers (blocked nChw8c and the like). A "plan" holds
 * the primitive with the reorders at its edges and the buffers they fill; plans are
 * cached under a key (shapes, attributes, node) so a repeated run builds nothing. An
 * input that is constant (a weight initializer) can be reordered once, when the session
 * is planned, and skipped on every run. */
#ifndef GF_DNNL_UTIL_H
#define GF_DNNL_UTIL_H

#include <dnnl.h>
#include <pthread.h>

#include "op.h"

/* ---- sliding windows (Conv, ConvTranspose, pools) ---- */

#define GF_WINDOW_MAX_SPATIAL 3

typedef struct gf_window {
    int nsp;    /* spatial dims; unused trailing entries hold a harmless 1-wide window */
    int64_t in[GF_WINDOW_MAX_SPATIAL], out[GF_WINDOW_MAX_SPATIAL];
    int64_t kernel[GF_WINDOW_MAX_SPATIAL], stride[GF_WINDOW_MAX_SPATIAL];
    int64_t dilation[GF_WINDOW_MAX_SPATIAL];
    int64_t pad_begin[GF_WINDOW_MAX_SPATIAL], pad_end[GF_WINDOW_MAX_SPATIAL];
} gf_window;

/* Reads strides, dilations, pads and auto_pad for a window sliding over x's spatial dims
 * (x is N x C x spatial...) with the given kernel; fills everything but `out`. */
gf_status gf_window_read(const gf_op_ctx *ctx, const gf_tensor *x, const int64_t *kernel, gf_window *w);
/* The output size of a forward window (Conv, pools): from the explicit pads, or pads
 * chosen by auto_pad. ceil_mode rounds the window count up (pools). */
gf_status gf_window_forward(const gf_op_ctx *ctx, int ceil_mode, gf_window *w);
/* The window of a MaxPool or AveragePool (or their gradients) over x: reads kernel_shape
 * and ceil_mode too, and fails when some window would cover only padding. */
gf_status gf_window_pool(const gf_op_ctx *ctx, const gf_tensor *x, gf_window *w);
/* Reads a 1-D int32/int64 input holding a tensor's shape (such as a gradient op's
 * x_shape) into *like: its rank and dims, no data, so it can stand for that tensor
 * in shape checks and gf_window_read. Fails naming `what`. */
gf_status gf_shape_input(const gf_tensor *shape, const char *what, gf_tensor *like);
/* Fails unless t is n x c x the window's output size: a gradient op's dY against the
 * output of its forward op, which `producer` describes in the message. */
gf_status gf_window_check_output(const gf_tensor *t, const char *name, int64_t n, int64_t c, const gf_window *w,
                                 const char *producer);
/* Fails when a shape's element count would overflow. */
gf_status gf_check_numel(int rank, const int64_t *dims);
/* Extent of the dilated kernel along axis d. */
static inline int64_t gf_window_extent(const gf_window *w, int d) { return (w->kernel[d] - 1) * w->dilation[d] + 1; }
/* Element count of a window's in, out or kernel box. */
static inline int64_t gf_window_size(const int64_t *dims) { return dims[0] * dims[1] * dims[2]; }
/* The position of flat (row-major) index i in such a box. */
static inline void gf_window_pos(int64_t i, const int64_t *dims, int64_t *pos)
{
    pos[2] = i % dims[2];
    pos[1] = i / dims[2] % dims[1];
    pos[0] = i / (dims[2] * dims[1]);
}

/* ---- which implementation runs ---- */

typedef enum gf_impl {
    GF_IMPL_AUTO,       /* the fast path where it fits, else the reference */
    GF_IMPL_REFERENCE,  /* the plain C kernel */
    GF_IMPL_FAST,       /* the fast path; GF_ERR_UNSUPPORTED where it does not fit */
} gf_impl;

/* False when the environment sets GRAFT_NO_FASTPATH=1 (read once). */
int gf_fastpath_enabled(void);

/* The families' kernels with the implementation chosen, for tests/test_fastpath_conv.c. */
gf_status gf_conv_cpu_impl(gf_op_ctx *ctx, gf_impl impl);   /* Conv, ConvTranspose */
gf_status gf_pool_cpu_impl(gf_op_ctx *ctx, gf_impl impl);   /* MaxPool, AveragePool */
gf_status gf_gemm_cpu_impl(gf_op_ctx *ctx, gf_impl impl);   /* Gemm, MatMul */

/* ---- oneDNN plans ---- */

#define GF_DNNL_MAX_ARGS 5

typedef struct gf_dnnl_arg {
    int arg;                    /* DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, ... */
    int is_output;
    dnnl_memory_t user;         /* graft's tensor, in the layout the caller described */
    dnnl_memory_t inner;        /* the primitive's layout; the same object as user when they agree */
    dnnl_primitive_desc_t reorder_pd; /* user -> inner for inputs, inner -> user for outputs; NULL when they agree */
    dnnl_primitive_t reorder;   /* made from reorder_pd when needed: a constant's is dropped once it has run */
    void *buf;                  /* inner's storage when reordered */
    const void *ready;          /* a constant input already reordered into buf */
} gf_dnnl_arg;

typedef struct gf_dnnl_plan {
    dnnl_primitive_t prim;      /* NULL when oneDNN has no implementation: use the reference */
    int n_args;
    gf_dnnl_arg args[GF_DNNL_MAX_ARGS];
    /* A primitive built with scratchpad_mode_user: the scratch memory each run is given
     * (NULL, 0: the primitive has none, or keeps oneDNN's own) */
    dnnl_memory_t scratch;
    size_t scratch_bytes;
    pthread_mutex_t lock;       /* the buffers are the plan's: one run at a time */
} gf_dnnl_plan;

/* Describes one argument for gf_dnnl_plan_build: its id, graft's layout, whether the
 * primitive writes it. */
typedef struct gf_dnnl_arg_desc {
    int arg;
    dnnl_memory_desc_t user;
    int is_output;
} gf_dnnl_arg_desc;

/* A float32 descriptor of dims laid out with the given strides in elements; NULL
 * strides mean dense row-major. */
dnnl_status_t gf_dnnl_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims, const int64_t *strides);
/* A float32 descriptor that lets the primitive choose the layout. */
dnnl_status_t gf_dnnl_any_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims);
/* Activations in the channel-blocked layout of oneDNN's direct convolution kernels
 * (nChw16c with AVX-512, nChw8c otherwise) when the channels fill whole blocks, "any"
 * otherwise. Left to "any", oneDNN 2.6 picks its brgemm convolution on plain nhwc,
 * whose float32 sums carry about twice the rounding error (measured: rms 2.8e-7 against
 * 1.5e-7 on a 64-channel 3x3 layer); in training that is enough to flip ReLUs that sit
 * within a few ulp of zero, and the gradients drift from PyTorch's, which uses the
 * direct kernels. */
dnnl_status_t gf_dnnl_blocked_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims);

/* A float32 descriptor of a tensor in one of graft's layouts (GF_LAYOUT_*, op.h): dense
 * row-major, or the channel-blocked layout of gf_dnnl_blocked_md (which fails unless the
 * channels fill whole blocks). */
dnnl_status_t gf_dnnl_layout_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims, int layout);

/* Builds a plan from an op descriptor whose memory descriptors may say "any". A
 * descriptor oneDNN cannot implement leaves plan->prim NULL and returns GF_OK. */
typedef gf_status (*gf_dnnl_build_fn)(gf_dnnl_plan *plan, const void *arg);
gf_status gf_dnnl_plan_build(gf_dnnl_plan *plan, const_dnnl_op_desc_t op_desc, int n_args,
                             const gf_dnnl_arg_desc *args);
/* The same with primitive attributes (post-ops). */
gf_status gf_dnnl_plan_build_attr(gf_dnnl_plan *plan, const_dnnl_op_desc_t op_desc, const_dnnl_primitive_attr_t attr,
                                  int n_args, const gf_dnnl_arg_desc *args);
/* A plan whose primitive is a reorder: args[0] is the source (DNNL_ARG_FROM), args[1]
 * the destination, both in the given layouts (no reorders of their own). */
gf_status gf_dnnl_plan_build_reorder(gf_dnnl_plan *plan, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to);
/* The same for a backward op descriptor, which oneDNN builds only with the primitive
 * descriptor of its forward op as a hint: fwd_desc describes that forward op. */
gf_status gf_dnnl_plan_build_backward(gf_dnnl_plan *plan, const_dnnl_op_desc_t op_desc,
                                      const_dnnl_op_desc_t fwd_desc, int n_args, const gf_dnnl_arg_desc *args);

/* The plan cached under (build, key's bytes), built with build(plan, arg) on a miss.
 * The caller holds it until gf_dnnl_plan_release. */
gf_status gf_dnnl_plan_get(const void *key, size_t key_len, gf_dnnl_build_fn build, const void *arg,
                           gf_dnnl_plan **out);
void gf_dnnl_plan_release(gf_dnnl_plan *plan);
/* Ends the caller's hold on a plan after gf_dnnl_plan_set_constant(plan, i, data): when
 * the plan now holds that constant reordered into its own buffer and `kept` (a
 * session's, see gf_op_ctx) is free, the hold passes to the session, so that the plan
 * and its copy outlive any eviction from the cache and the constant is not read again
 * (when the session lets it go, the plan leaves the cache unless someone else holds it);
 * else the plan is released. */
void gf_dnnl_plan_hand_over(gf_dnnl_plan *plan, int i, const void *data, gf_kept *kept);
/* How many plans the cache holds (for tests). */
int gf_dnnl_plan_cache_count(void);

/* Reorders a constant input (argument index i of the plan) now; later runs given the
 * same pointer skip its reorder. Passing NULL forgets any constant. */
gf_status gf_dnnl_plan_set_constant(gf_dnnl_plan *plan, int i, const void *data);
/* Runs the plan on the caller's tensors, data[i] for args[i]. */
gf_status gf_dnnl_plan_run(gf_dnnl_plan *plan, void *const *data);
/* The same with plan->scratch_bytes of scratch memory at `scratch`; NULL: a buffer of the
 * calling thread's, grown to the largest need (as oneDNN's own would be). */
gf_status gf_dnnl_plan_run_scratch(gf_dnnl_plan *plan, void *const *data, void *scratch);

/* ---- layouts ---- */

/* Copies a float32 tensor of the given dims from src in layout `from` to dst in layout
 * `to` (GF_LAYOUT_*); a plain copy when they are the same (nothing when src is dst). */
gf_status gf_layout_convert(int rank, const int64_t *dims, const void *src, int from, void *dst, int to);

#endif
