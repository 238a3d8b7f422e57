/* Big models are mostly initializer bytes. protobuf-c would copy every one of
 * them while parsing; instead this walks the wire format once, writes a small
 * copy of the model without the initializers' raw_data, and records where each
 * raw_data lies in the mapped file, so the weights can be used in place. */
#include "proto_scan.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };
enum { MODEL_GRAPH = 7, GRAPH_INITIALIZER = 5, TENSOR_RAW_DATA = 9 };

typedef struct cursor {
    const uint8_t *p, *end;
} cursor;

static int read_varint(cursor *c, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && c->p < c->end; shift += 7) {
        uint8_t b = *c->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *write_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

/* One field: its number, wire type, the whole field's bytes and, for
 * length-delimited fields, the payload. */
typedef struct field {
    uint32_t number, wire;
    const uint8_t *start, *payload, *end;
} field;

static int next_field(cursor *c, field *f)
{
    uint64_t tag, len;
    f->start = c->p;
    f->payload = NULL;
    if (!read_varint(c, &tag)) return 0;
    f->number = (uint32_t)(tag >> 3);
    f->wire = (uint32_t)(tag & 7);
    switch (f->wire) {
    case WIRE_VARINT:
        if (!read_varint(c, &len)) return 0;
        break;
    case WIRE_I64:
        if (c->end - c->p < 8) return 0;
        c->p += 8;
        break;
    case WIRE_I32:
        if (c->end - c->p < 4) return 0;
        c->p += 4;
        break;
    case WIRE_LEN:
        if (!read_varint(c, &len) || len > (uint64_t)(c->end - c->p)) return 0;
        f->payload = c->p;
        c->p += len;
        break;
    default: /* groups: not in the ONNX schema */
        return 0;
    }
    f->end = c->p;
    return 1;
}

/* The three levels, walked twice: first to size (out == NULL), then to write. */
typedef struct scan {
    gf_raw_span *spans;
    int n_spans, cap_spans;
} scan;

static size_t tensor_pass(scan *s, const uint8_t *p, size_t len, uint8_t *out, int *ok)
{
    cursor c = {p, p + len};
    field f;
    size_t size = 0;
    gf_raw_span span = {NULL, 0};
    while (c.p < c.end) {
        if (!next_field(&c, &f)) {
            *ok = 0;
            return 0;
        }
        if (f.number == TENSOR_RAW_DATA && f.wire == WIRE_LEN) {
            span.data = f.payload; /* the last one wins, as in protobuf */
            span.len = (size_t)(f.end - f.payload);
            continue;
        }
        if (out) memcpy(out + size, f.start, (size_t)(f.end - f.start));
        size += (size_t)(f.end - f.start);
    }
    if (out) {
        if (s->n_spans == s->cap_spans) {
            int cap = s->cap_spans ? 2 * s->cap_spans : 64;
            gf_raw_span *sp = realloc(s->spans, (size_t)cap * sizeof *sp);
            if (!sp) {
                *ok = 0;
                return 0;
            }
            s->spans = sp;
            s->cap_spans = cap;
        }
        s->spans[s->n_spans++] = span;
    }
    return size;
}

/* Writes a length-delimited field whose payload is rewritten by `pass`. */
typedef size_t (*pass_fn)(scan *, const uint8_t *, size_t, uint8_t *, int *);

static size_t nested(scan *s, const field *f, pass_fn pass, uint8_t *out, int *ok)
{
    size_t inner = pass(s, f->payload, (size_t)(f->end - f->payload), NULL, ok);
    uint64_t tag = (uint64_t)f->number << 3 | WIRE_LEN;
    size_t head = varint_size(tag) + varint_size(inner);
    if (out && *ok) {
        uint8_t *o = write_varint(write_varint(out, tag), inner);
        pass(s, f->payload, (size_t)(f->end - f->payload), o, ok);
    }
    return head + inner;
}

/* Copies a message's fields, rewriting each length-delimited field `number`
 * through `inner`; counts those fields in *count when count is not NULL. */
static size_t rewrite_fields(scan *s, const uint8_t *p, size_t len, uint8_t *out, int *ok, uint32_t number,
                             pass_fn inner, int *count)
{
    cursor c = {p, p + len};
    field f;
    size_t size = 0;
    while (c.p < c.end && *ok) {
        if (!next_field(&c, &f)) {
            *ok = 0;
            return 0;
        }
        if (f.number == number && f.wire == WIRE_LEN) {
            if (count) ++*count;
            size += nested(s, &f, inner, out ? out + size : NULL, ok);
            continue;
        }
        if (out) memcpy(out + size, f.start, (size_t)(f.end - f.start));
        size += (size_t)(f.end - f.start);
    }
    return size;
}

static size_t graph_pass(scan *s, const uint8_t *p, size_t len, uint8_t *out, int *ok)
{
    return rewrite_fields(s, p, len, out, ok, GRAPH_INITIALIZER, tensor_pass, NULL);
}

static size_t model_pass(scan *s, const uint8_t *p, size_t len, uint8_t *out, int *ok, int *graphs)
{
    return rewrite_fields(s, p, len, out, ok, MODEL_GRAPH, graph_pass, graphs);
}

int gf_scan_model(const void *data, size_t len, uint8_t **stripped, size_t *stripped_len, gf_raw_span **spans,
                  int *n_spans)
{
    scan s = {0};
    int ok = 1, graphs = 0;
    *stripped = NULL;
    *spans = NULL;
    *n_spans = 0;
    size_t size = model_pass(&s, data, len, NULL, &ok, &graphs);
    /* Anything unusual (a graph given twice, which protobuf would merge, or
     * bytes that do not parse) is left to the ordinary parser. */
    if (!ok || graphs != 1) return 0;
    uint8_t *out = malloc(size ? size : 1);
    if (!out) return 0;
    graphs = 0;
    model_pass(&s, data, len, out, &ok, &graphs);
    if (!ok) {
        free(out);
        free(s.spans);
        return 0;
    }
    *stripped = out;
    *stripped_len = size;
    *spans = s.spans;
    *n_spans = s.n_spans;
    return 1;
}
