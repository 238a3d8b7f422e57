/* Image helpers inside src/data, beyond the public gf_image_* calls. */
#ifndef GF_DATA_IMAGE_H
#define GF_DATA_IMAGE_H

#include "graft.h"

/* A segmentation mask: a grey (8-bit or less, or 16-bit with values up to 255) or
 * palette PNG read as its stored values, one channel (palette indices, not colours). */
gf_status gf_mask_load(const char *path, gf_image *out);

/* The size gf_image_resize_shorter gives a width x height image (torchvision's Resize(S)). */
void gf_shorter_side_size(int width, int height, int shorter, int *new_width, int *new_height);

#endif
