/* What the loader needs from a transform pipeline beyond the public calls. */
#ifndef GF_DATA_PIPELINE_H
#define GF_DATA_PIPELINE_H

#include "graft.h"

/* The mean and std to normalise an image of `channels` with: the spec's (or those
 * set), auto_mean/auto_std (n_auto values; the data set's, computed by the loader)
 * where normalize:auto was left unset, 0 and 1 with no normalize step (t may be NULL). */
gf_status transform_norm(const gf_transform *t, int n_auto, const float *auto_mean, const float *auto_std,
                         int channels, float mean[3], float std[3]);

#endif
