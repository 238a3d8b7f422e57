#include "op.h"

const gf_op gf_ops_elementwise[] = {
    {0},
};
