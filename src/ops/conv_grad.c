/* (being written) */
#include "op.h"

const gf_op gf_ops_conv_grad[] = {
    {0},
};
