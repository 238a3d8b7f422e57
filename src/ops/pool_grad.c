/* (being written) */
#include "op.h"

const gf_op gf_ops_pool_grad[] = {
    {0},
};
