/* (being written) */
#include "op.h"

const gf_op gf_ops_activation_grad[] = {
    {0},
};
