/* What the detection files share. */
#ifndef GF_DETECT_H
#define GF_DETECT_H

#include "graft.h"

/* The IoU of two boxes (cx, cy, w, h) as torchvision.ops.box_iou computes it from their
 * corners (x1 = cx - w / 2, ...; in double); 0 when the union is empty. */
double gf_box_iou(const gf_detection *a, const gf_detection *b);

#endif
