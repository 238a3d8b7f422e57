/* What graft refuses to build for a file, however well formed: the limits that keep
 * a hostile or corrupt model from making the parser or the planner allocate more
 * than exists, or recurse past the stack. Each is far above any real model. */
#ifndef GF_LIMITS_H
#define GF_LIMITS_H

#include <stddef.h>

/* Nodes of a model, its subgraphs and functions together. */
#define GF_MAX_NODES (1 << 18)
/* Entries of one repeated field (a node's inputs, an attribute's ints, a tensor's dims,
 * a graph's initializers...), other than a tensor's own data. */
#define GF_MAX_LIST (1 << 20)
/* Protobuf messages in one file, and how deep they nest (protobuf-c's parser recurses). */
#define GF_MAX_MESSAGES (1 << 22)
#define GF_MAX_DEPTH 64

/* The memory there is for one process, in bytes: RAM and swap, or less where a cgroup,
 * an rlimit (RLIMIT_AS, RLIMIT_DATA) or the environment (GRAFT_MEMORY_LIMIT=4G) says so.
 * A tensor or an arena larger than this cannot exist; refusing it up front gives a
 * message instead of the OOM killer. */
size_t gf_memory_limit(void);

/* "12.3 GiB", "4.0 MiB", "512 bytes" into buf; returns buf. */
char *gf_bytes_str(double bytes, char *buf, size_t len);

#endif
