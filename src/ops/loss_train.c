/* (being written) */
#include "op.h"

const gf_op gf_ops_loss_train[] = {
    {0},
};
