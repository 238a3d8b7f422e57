/* (being written) */
#include "op.h"

const gf_op gf_ops_norm_grad[] = {
    {0},
};
