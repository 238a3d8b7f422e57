#include "op.h"

const gf_op gf_ops_detection[] = {
    {0},
};
