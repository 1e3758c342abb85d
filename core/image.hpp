// Images as tensors: [1, 3, H, W] float32 RGB in 0..255, the range the
// pretrained networks expect. PNG, JPEG and BMP go through stb_image /
// stb_image_write; .npy (float32 [1, 3, H, W] or [3, H, W]) is a lossless
// float format for comparisons against a reference implementation.
//
// Files come from users, so loading checks the header first (stbi_info) and
// refuses absurd sizes before allocating, and every failure is an nst::Error
// naming the file. Saving is atomic (core/files.hpp): a failed save leaves
// no file behind and never a half-written one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace nst {

// Larger images are refused: 2^28 pixels is 3 GiB as float32 RGB.
constexpr int64_t kMaxImagePixels = int64_t(1) << 28;
constexpr int kMaxImageSide = 65535;

// Whether the path's extension is one load_image reads (case-insensitive).
bool is_image_path(const std::string& path);
// Whether save_image can write this extension.
bool is_writable_image_path(const std::string& path);

// PNG/JPEG/BMP/NPY -> [1, 3, H, W] on the CPU, 0..255, upright: a JPEG's or
// PNG's EXIF orientation is applied, as viewers do. Grey is replicated to
// RGB; alpha is composited over white (transparent areas are usually
// undefined colour, which a style network would otherwise paint). Only
// regular files are opened; .npy values must be finite.
Tensor load_image(const std::string& path);
// Format by extension: .png, .jpg/.jpeg (quality 95), .bmp: clamped to 0..255
// and rounded to 8 bits; .npy: float32, clamped, not rounded. Any device.
void save_image(const Tensor& image, const std::string& path);

// 8-bit interleaved RGB <-> [N, 3, H, W] float32 on 0..255. The bytes cross
// to and from the device as they are (a quarter of the floats' traffic) and
// are converted there, in parallel (video frames at 1080p are 6 million
// values each way). To bytes: float32, or contiguous fp16/bf16; clamped,
// rounded half away from zero, NaN as 0.
Tensor images_from_rgb8(const uint8_t* rgb, int count, int height, int width, Device device);
void images_to_rgb8(const Tensor& images, std::vector<uint8_t>& rgb);
// One image [1, 3, H, W] on the CPU, and back.
Tensor image_from_rgb8(const uint8_t* rgb, int height, int width);
void image_to_rgb8(const Tensor& image, std::vector<uint8_t>& rgb);

// ---- geometry --------------------------------------------------------------------------
// An image's size in pixels. The one rule for the longer side: each side
// scaled by side / max(height, width) and rounded to nearest (at least 1),
// wherever a size is derived (--size, --scales, --max-size, --style-size,
// video frames).
struct ImageSize {
    int height = 0, width = 0;
    int64_t pixels() const { return int64_t(height) * width; }
};
// The size with the longer side `side`, the aspect ratio kept.
ImageSize fit_longest_side(int64_t height, int64_t width, int side);
// fit_longest_side() if the longer side is over max_side; else the size itself.
ImageSize limit_longest_side(int64_t height, int64_t width, int max_side);

// High-quality resampling (Mitchell filter, stb_image_resize) to exactly
// height x width, clamped to 0..255. Runs on the CPU; the result is on the
// input's device.
Tensor resize_image(const Tensor& image, int height, int width);
// resize_image() of a 0..1 image (the optimization's range).
Tensor resize_image01(const Tensor& image, int height, int width);
// Shrinks so that the longer side is at most max_side (limit_longest_side);
// smaller images are returned unchanged.
Tensor limit_image_size(const Tensor& image, int max_side);
// Bilinear resampling (PyTorch's interpolate, align_corners=False, no
// antialiasing, no clamping: an optimized image between scales), via the
// host; the result is on the input's device.
Tensor resize_bilinear(const Tensor& image, int height, int width);

// Luminance transfer (--preserve-color): the luma of `stylized` with the
// chroma of `photo`, both [N, 3, H, W] 0..255 on one device, through the op
// API. As in neural-style's original_colors, in YCbCr/YUV.
Tensor luminance_transfer(const Tensor& stylized, const Tensor& photo);

}  // namespace nst
