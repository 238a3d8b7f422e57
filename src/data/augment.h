/* Transform steps with their parameters given: geometric ones on a whole sample
 * (the image, and its mask and boxes with it), colour ones on an image. Each does
 * what Pillow does for torchvision's functional transform of the same name, to the
 * rounding. The pipeline (pipeline.c) draws the parameters. */
#ifndef GF_DATA_AUGMENT_H
#define GF_DATA_AUGMENT_H

#include "graft.h"

/* The height x width window at (top, left), which may reach past the image: what
 * lies outside is 0, in masks GF_MASK_IGNORE (F.pad + F.crop). */
gf_status aug_crop(gf_sample *s, int top, int left, int height, int width);
/* To width x height: the image as gf_image_resize, the mask by Pillow's NEAREST. */
gf_status aug_resize(gf_sample *s, int width, int height);
void aug_hflip(gf_sample *s);
/* Pillow's Image.transform(size, AFFINE, m): output pixel (x, y) takes the input at
 * (m0 (x + .5) + m1 (y + .5) + m2, m3 (x + .5) + m4 (y + .5) + m5), bilinearly in the
 * image and by nearest neighbour in the mask; outside the input is 0 (mask: ignore). */
gf_status aug_affine(gf_sample *s, const double m[6]);
/* The m of Pillow's Image.rotate(degrees) (counter-clockwise about the centre), as
 * F.rotate calls it. */
void aug_rotation_matrix(double degrees, int width, int height, double m[6]);
/* The m of F.affine(angle, translate, scale, shear) on a PIL image: torchvision's
 * inverse affine matrix about the centre (angle clockwise, shear in degrees). */
void aug_affine_matrix(double angle, double tx, double ty, double scale, double shear_x, double shear_y, int width,
                       int height, double m[6]);

/* ImageEnhance's Brightness, Contrast and Color (saturation) by factor f, and
 * F.adjust_hue by hue in [-0.5, 0.5]; saturation and hue leave grey images alone. */
void color_brightness(gf_image *img, float f);
void color_contrast(gf_image *img, float f);
void color_saturation(gf_image *img, float f);
void color_hue(gf_image *img, double hue);
/* A grey image's level in three channels. */
gf_status color_grey_to_rgb(gf_image *img);

#endif
