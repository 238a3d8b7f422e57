/* libFuzzer target: any bytes as an image file (gf_image_load: JPEG by libjpeg-turbo,
 * PNG by libpng, told apart by content). Each input is decoded as RGB and as grey;
 * a decoded image must have the size it says, and goes through the preprocessing
 * the CLI applies (resize, center crop, planar float). */
#include "fuzz_common.h"

static void check_and_preprocess(const gf_image *img, int channels)
{
    if (img->width <= 0 || img->height <= 0 || img->channels != channels || !img->pixels) abort();
    /* every pixel is readable: ASan checks the buffer holds width * height * channels */
    unsigned sum = 0;
    for (size_t i = 0, n = (size_t)img->width * img->height * channels; i < n; i++) sum += img->pixels[i];
    (void)sum;
    gf_image small = {0}, crop = {0};
    if (!gf_image_resize_shorter(img, 8, &small) && !gf_image_center_crop(&small, 8, 8, &crop)) {
        float planar[3 * 8 * 8];
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        gf_image_to_chw(&crop, mean, std, planar);
    }
    gf_image_free(&crop);
    gf_image_free(&small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("image", data, size);
    for (int channels = 3; channels >= 1; channels -= 2) {
        gf_image img;
        if (!gf_image_load(path, channels, &img)) check_and_preprocess(&img, channels);
        gf_image_free(&img);
    }
    return 0;
}
