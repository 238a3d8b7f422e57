/* Big models are mostly initializer bytes. protobuf-c would copy every one of
 * them while parsing; instead this walks the wire format once, writes a small
 * copy of the model without the initializers' raw_data, and records where each
 * raw_data lies in the mapped file, so the weights can be used in place. */
#include "proto_scan.h"

#include "error.h"
#include "limits.h"
#include "onnx.pb-c.h"

#include <stdio.h>
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
    if (!data || !len) return 0; /* an empty file maps to NULL: nothing to point into */
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

/* ---- limits: what the bytes would make protobuf-c build ----
 *
 * protobuf-c allocates a struct for every message and an array for every repeated
 * field as it meets them, and recurses once per nested message. A file of a few
 * megabytes can so ask for gigabytes (a million empty nodes, an attribute of ten
 * million ints) or nest deep enough to overflow the stack (a type inside a type
 * inside a type...). This walks the wire format by the schema's own descriptors,
 * allocating nothing, and refuses such a file before protobuf-c sees it. */

typedef struct limits_walk {
    size_t bytes;              /* estimate of what protobuf-c will allocate */
    uint64_t messages, nodes;
    gf_status st;              /* the first limit exceeded (depth, or one list) */
    char node[64], op[32], attr[64]; /* the node, its op and the attribute walked now, for messages */
} limits_walk;

static size_t add_size(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

/* A name from the file, printable and short, into buf. */
static void copy_name(char *buf, size_t cap, const uint8_t *p, size_t len)
{
    size_t n = 0;
    for (; n < len && n + 4 < cap; n++) buf[n] = p[n] >= 0x20 && p[n] < 0x7f ? (char)p[n] : '?';
    if (n < len) buf[n++] = '.', buf[n++] = '.', buf[n++] = '.';
    buf[n] = '\0';
}

/* The payload of the last length-delimited field `number` of a message, or NULL. */
static const uint8_t *string_field(const uint8_t *p, size_t len, uint32_t number, size_t *out_len)
{
    cursor c = {p, p + len};
    field f;
    const uint8_t *found = NULL;
    while (c.p < c.end && next_field(&c, &f))
        if (f.number == number && f.wire == WIRE_LEN) {
            found = f.payload;
            *out_len = (size_t)(f.end - f.payload);
        }
    return found;
}

static size_t scalar_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 4; /* 32-bit numbers, float, enum, protobuf_c_boolean */
    }
}

/* Elements in a packed repeated scalar field. */
static uint64_t packed_count(ProtobufCType type, const uint8_t *p, size_t len)
{
    switch (type) {
    case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FLOAT:
        return len / 4;
    case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return len / 8;
    default: {
        uint64_t n = 0;
        for (size_t i = 0; i < len; i++) n += !(p[i] & 0x80);
        return n;
    }
    }
}

/* A tensor's own data may be as long as the file: it is bytes, not structure. */
static int is_tensor_data(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *fd)
{
    return desc == &onnx__tensor_proto__descriptor &&
           (fd->id == 4 || fd->id == 5 || fd->id == 6 || fd->id == 7 || fd->id == 10 || fd->id == 11);
}

static const char *or_unnamed(const char *name) { return *name ? name : "(unnamed)"; }

static void list_too_long(limits_walk *w, const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *fd,
                          uint64_t n)
{
    if (desc == &onnx__attribute_proto__descriptor)
        w->st = gf_fail(GF_ERR_UNSUPPORTED, "node '%s' (%s): attribute '%s' lists %llu %s or more; graft reads at "
                        "most %d values in one attribute (a hostile or corrupt file?)", or_unnamed(w->node), w->op, w->attr,
                        (unsigned long long)n, fd->name, GF_MAX_LIST);
    else if (desc == &onnx__node_proto__descriptor)
        w->st = gf_fail(GF_ERR_UNSUPPORTED, "node '%s' (%s) has %llu %ss or more; graft reads at most %d (a hostile "
                        "or corrupt file?)", or_unnamed(w->node), w->op, (unsigned long long)n, fd->name, GF_MAX_LIST);
    else
        w->st = gf_fail(GF_ERR_UNSUPPORTED, "a %s lists %llu entries or more in its field '%s'; graft reads at most "
                        "%d in one list (a hostile or corrupt file?)", desc->short_name, (unsigned long long)n, fd->name,
                        GF_MAX_LIST);
}

static void walk_message(limits_walk *w, const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                         int depth)
{
    if (w->st) return;
    if (depth > GF_MAX_DEPTH) {
        w->st = gf_fail(GF_ERR_UNSUPPORTED, "its messages nest more than %d deep (a %s inside a %s ...); no model "
                        "needs that, and parsing it would overflow the stack", GF_MAX_DEPTH, desc->short_name,
                        desc->short_name);
        return;
    }
    w->messages++;
    w->bytes = add_size(w->bytes, desc->sizeof_message);
    char saved_node[sizeof w->node], saved_op[sizeof w->op], saved_attr[sizeof w->attr];
    memcpy(saved_node, w->node, sizeof w->node);
    memcpy(saved_op, w->op, sizeof w->op);
    memcpy(saved_attr, w->attr, sizeof w->attr);
    const uint8_t *name;
    size_t name_len = 0;
    if (desc == &onnx__node_proto__descriptor) {
        w->nodes++;
        name = string_field(p, len, 3, &name_len);
        copy_name(w->node, sizeof w->node, name, name ? name_len : 0);
        name = string_field(p, len, 4, &name_len);
        copy_name(w->op, sizeof w->op, name, name ? name_len : 0);
        w->attr[0] = '\0';
    } else if (desc == &onnx__attribute_proto__descriptor) {
        name = string_field(p, len, 1, &name_len);
        copy_name(w->attr, sizeof w->attr, name, name ? name_len : 0);
    }
    uint64_t counts[64] = {0};
    cursor c = {p, p + len};
    field f;
    while (c.p < c.end && !w->st) {
        if (!next_field(&c, &f)) break; /* malformed: protobuf-c will refuse it */
        size_t whole = (size_t)(f.end - f.start), payload = f.payload ? (size_t)(f.end - f.payload) : 0;
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(desc, f.number);
        if (!fd) { /* kept by protobuf-c as an unknown field */
            w->bytes = add_size(w->bytes, sizeof(ProtobufCMessageUnknownField) + whole);
            continue;
        }
        int repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
        uint64_t n = 1;
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (f.wire == WIRE_LEN) walk_message(w, fd->descriptor, f.payload, payload, depth + 1);
            if (repeated) w->bytes = add_size(w->bytes, sizeof(void *));
        } else if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_BYTES) {
            w->bytes = add_size(w->bytes, payload + 1 + (repeated ? sizeof(ProtobufCBinaryData) : 0));
        } else if (repeated) {
            if (f.wire == WIRE_LEN) n = packed_count(fd->type, f.payload, payload);
            w->bytes = add_size(w->bytes, (size_t)n * scalar_size(fd->type));
        }
        size_t index = (size_t)(fd - desc->fields);
        if (repeated && index < 64 && (counts[index] += n) > GF_MAX_LIST && !is_tensor_data(desc, fd))
            list_too_long(w, desc, fd, counts[index]);
    }
    memcpy(w->node, saved_node, sizeof w->node);
    memcpy(w->op, saved_op, sizeof w->op);
    memcpy(w->attr, saved_attr, sizeof w->attr);
}

gf_status gf_scan_limits(const void *data, size_t len, const ProtobufCMessageDescriptor *desc)
{
    limits_walk w = {0};
    if (!data || !len) return GF_OK;
    walk_message(&w, desc, data, len, 0);
    char need[32], have[32];
    if (w.st) return w.st;
    if (w.nodes > GF_MAX_NODES)
        return gf_fail(GF_ERR_UNSUPPORTED, "it has %llu nodes; graft loads at most %d (a hostile or corrupt file?)",
                       (unsigned long long)w.nodes, GF_MAX_NODES);
    if (w.messages > GF_MAX_MESSAGES)
        return gf_fail(GF_ERR_UNSUPPORTED, "it holds %llu protobuf messages; graft reads at most %d (a hostile or "
                       "corrupt file?)", (unsigned long long)w.messages, GF_MAX_MESSAGES);
    if (w.bytes > gf_memory_limit())
        return gf_fail(GF_ERR_NOMEM, "parsing it would take about %s of memory, more than the %s there is",
                       gf_bytes_str((double)w.bytes, need, sizeof need),
                       gf_bytes_str((double)gf_memory_limit(), have, sizeof have));
    return GF_OK;
}
