/* Einsum (opset 12).
 *
 * The equation names each input's dims with letters ("bij,bjk->bik"); "..."
 * stands for the dims no letter names, and those dims broadcast across inputs
 * right-aligned, as in numpy. Without "->" the output is the ellipsis dims
 * followed by the letters that occur exactly once, in ASCII order. A letter
 * repeated within one input takes a diagonal; a letter absent from the output
 * is summed over.
 *
 * Every dim of every term gets a label: letters are labels 0..51 ('A'..'Z'
 * then 'a'..'z', so label order is ASCII order) and ellipsis dim k of the
 * broadcast ellipsis is label 52 + k. Each output element is then a sum, over
 * all values of the summed labels, of the product of one element per input;
 * an input's offset moves by the sum of its strides over the dims carrying a
 * label (several for a diagonal, none for a broadcast dim of size 1). This is
 * the plain loop over the index space: right for any equation, not fast. */
#include "op.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_LETTERS 52
#define MAX_LABELS (N_LETTERS + GF_MAX_RANK)
#define ELLIPSIS (-1)
#define EINSUM_MAX_INPUTS 16

/* One term of the equation as written: letter labels and at most one ELLIPSIS. */
typedef struct einsum_term {
    int n;
    int tokens[GF_MAX_RANK + 1];
    int has_ellipsis;
} einsum_term;

typedef struct einsum_plan {
    int n_inputs;
    int rank[EINSUM_MAX_INPUTS];
    int dim_label[EINSUM_MAX_INPUTS][GF_MAX_RANK];
    int64_t label_size[MAX_LABELS];     /* -1 for labels that occur nowhere */
    int out_rank, out_label[GF_MAX_RANK];
    int n_sum, sum_label[MAX_LABELS];   /* labels summed over */
} einsum_plan;

static int letter_label(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
    return -1;
}

static char label_letter(int label) { return label < 26 ? (char)('A' + label) : (char)('a' + label - 26); }

/* Parses the term s[0..len). `what` names it in messages ("input 1", "output"). */
static gf_status parse_term(const char *s, size_t len, const char *what, einsum_term *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < len;) {
        int token;
        if (s[i] == '.') {
            if (len - i < 3 || s[i + 1] != '.' || s[i + 2] != '.')
                return gf_fail(GF_ERR_INVALID, "the term of %s '%.*s' has a '.' that is not part of '...'", what, (int)len, s);
            if (t->has_ellipsis)
                return gf_fail(GF_ERR_INVALID, "the term of %s '%.*s' has '...' twice", what, (int)len, s);
            t->has_ellipsis = 1;
            token = ELLIPSIS;
            i += 3;
        } else {
            token = letter_label(s[i]);
            if (token < 0)
                return gf_fail(GF_ERR_INVALID, "the term of %s '%.*s' has '%c'; indices are letters", what, (int)len, s, s[i]);
            i++;
        }
        if (t->n == GF_MAX_RANK + 1)
            return gf_fail(GF_ERR_UNSUPPORTED, "the term of %s '%.*s' has more than %d indices", what, (int)len, s, GF_MAX_RANK);
        t->tokens[t->n++] = token;
    }
    return GF_OK;
}

/* Splits the equation (whitespace removed) into input terms and an optional
 * output term; *has_output is 0 for the implicit form. */
static gf_status parse_equation(const char *equation, int n_inputs, einsum_term *inputs,
                                einsum_term *output, int *has_output)
{
    size_t len = strlen(equation);
    char *eq = malloc(len + 1);
    if (!eq) return gf_fail(GF_ERR_NOMEM, "out of memory parsing the equation");
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)equation[i])) eq[n++] = equation[i];
    eq[n] = 0;

    gf_status st = GF_OK;
    char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : n;
    *has_output = arrow != NULL;
    int term = 0;
    for (size_t start = 0; !st;) {
        size_t end = start;
        while (end < lhs_len && eq[end] != ',') end++;
        if (term < n_inputs) {
            char what[32];
            snprintf(what, sizeof what, "input %d", term);
            st = parse_term(eq + start, end - start, what, &inputs[term]);
        }
        term++;
        if (end >= lhs_len) break;
        start = end + 1;
    }
    if (!st && term != n_inputs)
        st = gf_fail(GF_ERR_INVALID, "equation '%s' has %d input terms but the node has %d inputs", equation, term, n_inputs);
    if (!st && arrow) {
        if (strstr(arrow + 2, "->")) st = gf_fail(GF_ERR_INVALID, "equation '%s' has '->' twice", equation);
        else st = parse_term(arrow + 2, strlen(arrow + 2), "the output", output);
    }
    free(eq);
    return st;
}

/* Gives one more dim the label `label` of size `size`: sizes must agree, or be 1 (broadcast). */
static gf_status size_label(einsum_plan *p, int label, int64_t size, int input)
{
    int64_t *have = &p->label_size[label];
    if (*have < 0 || *have == 1) *have = size;
    else if (size != 1 && size != *have) {
        if (label < N_LETTERS)
            return gf_fail(GF_ERR_SHAPE, "index '%c' has size %lld in input %d but %lld elsewhere",
                           label_letter(label), (long long)size, input, (long long)*have);
        return gf_fail(GF_ERR_SHAPE, "the '...' dims of input %d do not broadcast with the other inputs' (%lld vs %lld)",
                       input, (long long)size, (long long)*have);
    }
    return GF_OK;
}

/* Labels every dim of every input and sizes the labels. */
static gf_status label_inputs(const gf_op_ctx *ctx, const einsum_term *terms, einsum_plan *p, int *ellipsis_rank)
{
    *ellipsis_rank = 0;
    for (int i = 0; i < p->n_inputs; i++) {
        const einsum_term *t = &terms[i];
        int letters = t->n - t->has_ellipsis, rank = ctx->inputs[i]->rank;
        if (rank < letters || (!t->has_ellipsis && rank != letters))
            return gf_fail(GF_ERR_SHAPE, "the term of input %d has %d indices%s but the input has rank %d",
                           i, letters, t->has_ellipsis ? " and '...'" : "", rank);
        if (rank - letters > *ellipsis_rank) *ellipsis_rank = rank - letters;
    }
    for (int l = 0; l < MAX_LABELS; l++) p->label_size[l] = -1;
    for (int i = 0; i < p->n_inputs; i++) {
        const einsum_term *t = &terms[i];
        const gf_tensor *x = ctx->inputs[i];
        int own_ellipsis = x->rank - (t->n - t->has_ellipsis), d = 0;
        p->rank[i] = x->rank;
        for (int k = 0; k < t->n; k++) {
            if (t->tokens[k] != ELLIPSIS) {
                p->dim_label[i][d++] = t->tokens[k];
                continue;
            }
            /* Right-aligned: this input's ellipsis dims are the last ones of the broadcast ellipsis. */
            for (int e = 0; e < own_ellipsis; e++)
                p->dim_label[i][d++] = N_LETTERS + (*ellipsis_rank - own_ellipsis) + e;
        }
        for (d = 0; d < x->rank; d++) {
            gf_status st = size_label(p, p->dim_label[i][d], x->dims[d], i);
            if (st) return st;
        }
    }
    return GF_OK;
}

/* The output labels, from the explicit output term or by the implicit rule. */
static gf_status label_output(const einsum_term *terms, const einsum_term *output, int has_output,
                              int ellipsis_rank, einsum_plan *p)
{
    p->out_rank = 0;
    if (!has_output) {
        int count[N_LETTERS] = {0};
        for (int i = 0; i < p->n_inputs; i++)
            for (int k = 0; k < terms[i].n; k++)
                if (terms[i].tokens[k] != ELLIPSIS) count[terms[i].tokens[k]]++;
        int n_once = 0;
        for (int l = 0; l < N_LETTERS; l++) n_once += count[l] == 1;
        if (ellipsis_rank + n_once > GF_MAX_RANK)
            return gf_fail(GF_ERR_UNSUPPORTED, "the output would have rank %d", ellipsis_rank + n_once);
        for (int e = 0; e < ellipsis_rank; e++) p->out_label[p->out_rank++] = N_LETTERS + e;
        for (int l = 0; l < N_LETTERS; l++)
            if (count[l] == 1) p->out_label[p->out_rank++] = l;
        return GF_OK;
    }
    if (ellipsis_rank > 0 && !output->has_ellipsis)
        return gf_fail(GF_ERR_INVALID, "the inputs have '...' dims but the output term has no '...'");
    int used[N_LETTERS] = {0};
    for (int k = 0; k < output->n; k++) {
        int l = output->tokens[k];
        if (l == ELLIPSIS) {
            if (p->out_rank + ellipsis_rank > GF_MAX_RANK)
                return gf_fail(GF_ERR_UNSUPPORTED, "the output would have rank above %d", GF_MAX_RANK);
            for (int e = 0; e < ellipsis_rank; e++) p->out_label[p->out_rank++] = N_LETTERS + e;
            continue;
        }
        if (p->label_size[l] < 0)
            return gf_fail(GF_ERR_INVALID, "output index '%c' occurs in no input", label_letter(l));
        if (used[l]++) return gf_fail(GF_ERR_INVALID, "output index '%c' occurs twice", label_letter(l));
        if (p->out_rank == GF_MAX_RANK)
            return gf_fail(GF_ERR_UNSUPPORTED, "the output would have rank above %d", GF_MAX_RANK);
        p->out_label[p->out_rank++] = l;
    }
    return GF_OK;
}

static gf_status make_plan(const gf_op_ctx *ctx, einsum_plan *p)
{
    const char *equation = gf_attr_string(ctx->node, "equation", NULL);
    if (!equation) return gf_fail(GF_ERR_INVALID, "the equation attribute is missing");
    if (ctx->n_inputs > EINSUM_MAX_INPUTS)
        return gf_fail(GF_ERR_UNSUPPORTED, "%d inputs; at most %d are supported", ctx->n_inputs, EINSUM_MAX_INPUTS);
    memset(p, 0, sizeof *p);
    p->n_inputs = ctx->n_inputs;
    einsum_term terms[EINSUM_MAX_INPUTS], output;
    int has_output = 0, ellipsis_rank = 0;
    gf_status st = parse_equation(equation, ctx->n_inputs, terms, &output, &has_output);
    if (!st) st = label_inputs(ctx, terms, p, &ellipsis_rank);
    if (!st) st = label_output(terms, &output, has_output, ellipsis_rank, p);
    if (st) return st;
    int in_output[MAX_LABELS] = {0};
    for (int k = 0; k < p->out_rank; k++) in_output[p->out_label[k]] = 1;
    for (int l = 0; l < MAX_LABELS; l++)
        if (p->label_size[l] >= 0 && !in_output[l]) p->sum_label[p->n_sum++] = l;
    return GF_OK;
}

static int is_integer_type(gf_dtype t)
{
    return t == GF_INT32 || t == GF_INT64 || t == GF_UINT32 || t == GF_UINT64;
}

static gf_status einsum_infer(gf_op_ctx *ctx)
{
    if (ctx->n_inputs < 1) return gf_fail(GF_ERR_INVALID, "needs at least one input");
    for (int i = 0; i < ctx->n_inputs; i++) {
        if (!ctx->inputs[i]) return gf_fail(GF_ERR_INVALID, "input %d is omitted", i);
        gf_dtype t = ctx->inputs[i]->dtype;
        if (t != ctx->inputs[0]->dtype)
            return gf_fail(GF_ERR_INVALID, "input %d is %s, input 0 %s", i, gf_dtype_name(t), gf_dtype_name(ctx->inputs[0]->dtype));
    }
    gf_dtype t = ctx->inputs[0]->dtype;
    if (t != GF_FLOAT && t != GF_DOUBLE && t != GF_FLOAT16 && !is_integer_type(t))
        return gf_fail(GF_ERR_UNSUPPORTED, "element type %s is not supported", gf_dtype_name(t));
    einsum_plan p;
    gf_status st = make_plan(ctx, &p);
    if (st) return st;
    int64_t dims[GF_MAX_RANK];
    for (int k = 0; k < p.out_rank; k++) dims[k] = p.label_size[p.out_label[k]];
    gf_set_shape(ctx->outputs[0], t, p.out_rank, dims);
    return GF_OK;
}

/* stride[i][label]: how far input i's offset moves when `label` grows by one. */
static void label_strides(const gf_op_ctx *ctx, const einsum_plan *p, int64_t (*stride)[MAX_LABELS])
{
    for (int i = 0; i < p->n_inputs; i++) {
        const gf_tensor *x = ctx->inputs[i];
        for (int l = 0; l < MAX_LABELS; l++) stride[i][l] = 0;
        int64_t s = 1;
        for (int d = x->rank - 1; d >= 0; d--) {
            int l = p->dim_label[i][d];
            if (!(x->dims[d] == 1 && p->label_size[l] != 1)) stride[i][l] += s;   /* size 1: broadcast */
            s *= x->dims[d];
        }
    }
}

/* Sums, over every value of the summed labels, the product of the inputs at
 * offsets that start at base[i]. Integers wrap (unsigned arithmetic), floats
 * accumulate in double. */
static void sum_products(const gf_op_ctx *ctx, const einsum_plan *p, const int64_t (*stride)[MAX_LABELS],
                         const int64_t *base, int integer, double *fsum, uint64_t *isum)
{
    int64_t coord[MAX_LABELS] = {0}, offset[EINSUM_MAX_INPUTS];
    for (int i = 0; i < p->n_inputs; i++) offset[i] = base[i];
    *fsum = 0;
    *isum = 0;
    for (int k = 0; k < p->n_sum; k++)
        if (p->label_size[p->sum_label[k]] == 0) return;   /* an empty sum */
    for (;;) {
        if (integer) {
            uint64_t prod = 1;
            for (int i = 0; i < p->n_inputs; i++) prod *= (uint64_t)gf_int_at(ctx->inputs[i], offset[i]);
            *isum += prod;
        } else {
            double prod = 1;
            for (int i = 0; i < p->n_inputs; i++) prod *= gf_num_at(ctx->inputs[i], offset[i]);
            *fsum += prod;
        }
        /* Odometer step over the summed labels, last one fastest. */
        int k = p->n_sum - 1;
        for (; k >= 0; k--) {
            int l = p->sum_label[k];
            for (int i = 0; i < p->n_inputs; i++) offset[i] += stride[i][l];
            if (++coord[k] < p->label_size[l]) break;
            for (int i = 0; i < p->n_inputs; i++) offset[i] -= coord[k] * stride[i][l];
            coord[k] = 0;
        }
        if (k < 0) return;
    }
}

static gf_status einsum_cpu(gf_op_ctx *ctx)
{
    einsum_plan p;
    gf_status st = make_plan(ctx, &p);
    if (st) return st;
    int64_t (*stride)[MAX_LABELS] = malloc(sizeof(int64_t[EINSUM_MAX_INPUTS][MAX_LABELS]));
    if (!stride) return gf_fail(GF_ERR_NOMEM, "out of memory for strides");
    label_strides(ctx, &p, stride);
    gf_tensor *y = ctx->outputs[0];
    int integer = is_integer_type(y->dtype);
    int64_t total = gf_tensor_numel(y);
    #pragma omp parallel for schedule(static) if (total > 1024)
    for (int64_t idx = 0; idx < total; idx++) {
        int64_t base[EINSUM_MAX_INPUTS] = {0}, rest = idx;
        for (int k = p.out_rank - 1; k >= 0; k--) {
            int l = p.out_label[k];
            int64_t c = rest % p.label_size[l];
            rest /= p.label_size[l];
            for (int i = 0; i < p.n_inputs; i++) base[i] += c * stride[i][l];
        }
        double fsum;
        uint64_t isum;
        sum_products(ctx, &p, (const int64_t (*)[MAX_LABELS])stride, base, integer, &fsum, &isum);
        if (integer) {
            if (y->dtype == GF_INT64) ((int64_t *)y->data)[idx] = (int64_t)isum;
            else if (y->dtype == GF_UINT64) ((uint64_t *)y->data)[idx] = isum;
            else if (y->dtype == GF_INT32) ((int32_t *)y->data)[idx] = (int32_t)(uint32_t)isum;
            else ((uint32_t *)y->data)[idx] = (uint32_t)isum;
        } else {
            gf_num_set(y, idx, fsum);
        }
    }
    free(stride);
    return GF_OK;
}

const gf_op gf_ops_einsum[] = {
    {"", "Einsum", 12, 0, einsum_infer, einsum_cpu},
    {0},
};
