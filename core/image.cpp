// Image I/O (stb_image, stb_image_write, stb_image_resize), .npy float
// images, resizing and luminance transfer. The stb implementations are
// compiled here and only here. Decoders are limited to PNG, JPEG and BMP:
// less code exposed to untrusted files.
#include "core/image.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/autograd.hpp"
#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/ops.hpp"
#include "core/ops/common.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wtype-limits"
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>
#pragma GCC diagnostic pop

namespace nst {
namespace {

std::string lower_extension(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    const size_t dot = path.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string ext = path.substr(dot);
    for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
    return ext;
}

void check_image_tensor(const char* op, const Tensor& image) {
    NST_CHECK(image.defined() && image.dim() == 4 && image.size(0) == 1 && image.size(1) == 3,
              op, ": expected an image [1, 3, H, W], got ",
              image.defined() ? shape_str(image.shape()) : "an undefined tensor");
    NST_CHECK(image.size(2) > 0 && image.size(3) > 0, op, ": empty image ",
              shape_str(image.shape()));
}

float clamp255(float v) { return v >= 255.f ? 255.f : v > 0.f ? v : 0.f; }

void check_size(const std::string& path, int64_t w, int64_t h) {
    NST_CHECK(w > 0 && h > 0, path, ": image has no pixels (", w, "x", h, ")");
    NST_CHECK(w <= kMaxImageSide && h <= kMaxImageSide && w * h <= kMaxImagePixels, path,
              ": image is ", w, "x", h, ", larger than the limit (sides up to ", kMaxImageSide,
              ", ", kMaxImagePixels, " pixels)");
}

// The file is there, a regular file and not empty: clearer than a decoder's message.
void check_readable(const std::string& path) {
    require_regular_file(path);
    struct stat st;
    NST_CHECK(::stat(path.c_str(), &st) == 0 && st.st_size > 0, path, ": empty file (0 bytes)");
}

// ---- .npy (numpy's format, version 1-3, little-endian float32 only) -------------
Tensor load_npy(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    NST_CHECK(in.is_open(), path, ": cannot open: ", std::strerror(errno));
    char magic[8];
    in.read(magic, 8);
    NST_CHECK(in.good() && std::memcmp(magic, "\x93NUMPY", 6) == 0, path, ": not a .npy file");
    const int major = static_cast<unsigned char>(magic[6]);
    NST_CHECK(major >= 1 && major <= 3, path, ": unsupported .npy version ", major);
    unsigned char len[4] = {0, 0, 0, 0};
    in.read(reinterpret_cast<char*>(len), major == 1 ? 2 : 4);
    const uint32_t header_len = len[0] | len[1] << 8 | uint32_t(len[2]) << 16 | uint32_t(len[3]) << 24;
    NST_CHECK(in.good() && header_len < (1u << 20), path, ": corrupt .npy header");
    std::string header(header_len, '\0');
    in.read(header.data(), header_len);
    NST_CHECK(in.good(), path, ": truncated .npy header");
    auto value_of = [&](const std::string& key) {
        const size_t at = header.find("'" + key + "'");
        NST_CHECK(at != std::string::npos, path, ": .npy header has no '", key, "'");
        const size_t colon = header.find(':', at);
        NST_CHECK(colon != std::string::npos, path, ": corrupt .npy header");
        return header.substr(colon + 1);
    };
    const std::string descr = value_of("descr");
    NST_CHECK(descr.find("'<f4'") < descr.find(','), path,
              ": .npy dtype must be little-endian float32 ('<f4')");
    const std::string order = value_of("fortran_order");
    NST_CHECK(order.find("False") < order.find(','), path, ": Fortran-ordered .npy not supported");
    const std::string shape_text = value_of("shape");
    const size_t open = shape_text.find('('), close = shape_text.find(')');
    NST_CHECK(open != std::string::npos && close != std::string::npos && open < close, path,
              ": corrupt .npy shape");
    Shape shape;
    std::string number;
    for (size_t i = open + 1; i <= close; ++i) {
        const char c = shape_text[i];
        if (c >= '0' && c <= '9') {
            number += c;
            NST_CHECK(number.size() < 12, path, ": absurd .npy shape");
        } else if (!number.empty()) {
            shape.push_back(std::stoll(number));
            number.clear();
        }
    }
    if (shape.size() == 3) shape.insert(shape.begin(), 1);
    NST_CHECK(shape.size() == 4 && shape[0] == 1 && shape[1] == 3, path,
              ": .npy image must have shape (1, 3, H, W) or (3, H, W), got ", shape_str(shape));
    check_size(path, shape[3], shape[2]);
    std::vector<float> values(size_t(shape_numel(shape)));
    in.read(reinterpret_cast<char*>(values.data()), std::streamsize(values.size() * 4));
    NST_CHECK(in.good(), path, ": truncated .npy data (expected ", values.size() * 4,
              " bytes for shape ", shape_str(shape), ")");
    // A NaN would run through every op and come out as black pixels.
    const auto bad = std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
    NST_CHECK(bad == values.end(), path, ": holds NaN or infinite values (", *bad, " at index ",
              bad - values.begin(), "); images must hold finite numbers");
    return Tensor::from_vector(values, shape);
}

void save_npy(const std::vector<float>& values, const Shape& shape, const std::string& path) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    for (size_t i = 0; i < shape.size(); ++i) header += std::to_string(shape[i]) + ", ";
    header += "), }";
    // numpy pads the header with spaces and a newline so the data is 64-byte aligned.
    const size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    AtomicFile file(path);
    file.write("\x93NUMPY\x01\x00", 8);
    const unsigned char len[2] = {uint8_t(header.size() & 0xff), uint8_t(header.size() >> 8)};
    file.write(len, 2);
    file.write(header.data(), header.size());
    file.write(values.data(), values.size() * 4);
    file.commit();
}

// ---- stb ------------------------------------------------------------------------------
// The size a PNG, BMP or JPEG header declares, read without stb: stb refuses
// huge sizes itself, but then reports only "unknown image type" (the last
// decoder it tried), and a user deserves "too large". false if not found.
bool declared_size(const std::string& path, int64_t& w, int64_t& h) {
    std::ifstream in(path, std::ios::binary);
    unsigned char b[26] = {};
    in.read(reinterpret_cast<char*>(b), sizeof b);
    if (!in.good()) return false;
    auto be32 = [](const unsigned char* p) {
        return int64_t(p[0]) << 24 | int64_t(p[1]) << 16 | int64_t(p[2]) << 8 | p[3];
    };
    auto le32 = [](const unsigned char* p) {
        return int32_t(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
    };
    if (std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 && std::memcmp(b + 12, "IHDR", 4) == 0) {
        w = be32(b + 16), h = be32(b + 20);
        return true;
    }
    if (b[0] == 'B' && b[1] == 'M') {
        w = std::abs(int64_t(le32(b + 18))), h = std::abs(int64_t(le32(b + 22)));
        return true;
    }
    if (b[0] != 0xff || b[1] != 0xd8) return false;
    // JPEG: walk the marker segments to the frame header (SOF0..SOF15 but
    // DHT, JPG and DAC, which share the range).
    in.clear();
    in.seekg(2);
    for (int segments = 0; segments < 1000; ++segments) {
        unsigned char m[9];
        if (!in.read(reinterpret_cast<char*>(m), 4) || m[0] != 0xff) return false;
        const int marker = m[1], length = m[2] << 8 | m[3];
        if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc) {
            if (!in.read(reinterpret_cast<char*>(m), 5)) return false;
            h = m[1] << 8 | m[2], w = m[3] << 8 | m[4];
            return true;
        }
        if (length < 2) return false;
        in.seekg(length - 2, std::ios::cur);
    }
    return false;
}

// ---- EXIF orientation --------------------------------------------------------------
// Cameras store pixels as the sensor saw them and record how to turn them in
// the EXIF tag Orientation (0x0112): 1 as stored, 2 mirrored, 3 rotated 180,
// 4 flipped, 5 transposed, 6 rotated 90 clockwise, 7 transversed, 8 rotated
// 90 counter-clockwise. Viewers and PIL's exif_transpose apply it, so a
// photo looks upright everywhere; so must ours. stb ignores it: we read the
// one tag ourselves, from a JPEG's APP1 "Exif" segment or a PNG's eXIf
// chunk, bounds-checked at every step (the fuzz_image target covers it).

// The orientation in a TIFF structure (EXIF's container); 1 if absent or odd.
int tiff_orientation(const unsigned char* p, size_t n) {
    if (n < 8) return 1;
    const bool little = p[0] == 'I' && p[1] == 'I', big = p[0] == 'M' && p[1] == 'M';
    if (!little && !big) return 1;
    auto u16 = [&](size_t at) { return little ? uint32_t(p[at] | p[at + 1] << 8) : uint32_t(p[at] << 8 | p[at + 1]); };
    auto u32 = [&](size_t at) {
        return little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2);
    };
    if (u16(2) != 42) return 1;
    const size_t ifd = u32(4);
    if (ifd + 2 > n) return 1;
    const size_t entries = u16(ifd);
    for (size_t i = 0; i < entries; ++i) {
        const size_t e = ifd + 2 + 12 * i;
        if (e + 12 > n) return 1;
        // SHORT (3), one value, stored in the entry itself.
        if (u16(e) == 0x0112 && u16(e + 2) == 3 && u32(e + 4) == 1) {
            const uint32_t v = u16(e + 8);
            return v >= 1 && v <= 8 ? int(v) : 1;
        }
    }
    return 1;
}

int exif_orientation(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    unsigned char head[8] = {};
    if (!in.read(reinterpret_cast<char*>(head), 8)) return 1;
    std::vector<unsigned char> data;
    auto read_data = [&](size_t bytes) {
        data.resize(bytes);
        return bool(in.read(reinterpret_cast<char*>(data.data()), std::streamsize(bytes)));
    };
    auto from_exif = [&](size_t skip) {  // "Exif\0\0" comes before the TIFF data in JPEGs
        return tiff_orientation(data.data() + skip, data.size() - skip);
    };
    if (head[0] == 0xff && head[1] == 0xd8) {  // JPEG: marker segments up to the image data
        in.seekg(2);
        for (int segments = 0; segments < 64; ++segments) {
            unsigned char m[4];
            if (!in.read(reinterpret_cast<char*>(m), 4) || m[0] != 0xff || m[1] == 0xda) return 1;
            const size_t length = size_t(m[2] << 8 | m[3]);
            if (length < 2) return 1;
            if (m[1] == 0xe1 && length >= 8 + 6) {
                if (!read_data(length - 2)) return 1;
                if (std::memcmp(data.data(), "Exif\0\0", 6) == 0) return from_exif(6);
            } else {
                in.seekg(std::streamoff(length - 2), std::ios::cur);
            }
        }
    } else if (std::memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0) {  // PNG: chunks up to the image data
        for (int chunks = 0; chunks < 64; ++chunks) {
            unsigned char c[8];
            if (!in.read(reinterpret_cast<char*>(c), 8)) return 1;
            const uint32_t length = uint32_t(c[0]) << 24 | uint32_t(c[1]) << 16 | uint32_t(c[2]) << 8 | c[3];
            if (std::memcmp(c + 4, "IDAT", 4) == 0 || length > (1u << 20)) return 1;
            if (std::memcmp(c + 4, "eXIf", 4) == 0) {
                if (!read_data(length)) return 1;
                const bool prefixed = length >= 6 && std::memcmp(data.data(), "Exif\0\0", 6) == 0;
                return from_exif(prefixed ? 6 : 0);
            }
            in.seekg(std::streamoff(length) + 4, std::ios::cur);  // data and CRC
        }
    }
    return 1;
}

// Interleaved pixels (h x w, `channels` per pixel) -> planar RGB [3, H', W']
// as displayed under EXIF orientation o; alpha composited over white.
std::vector<float> displayed_planar(const stbi_uc* pixels, int h, int w, int channels, bool alpha, int o,
                                    int& out_h, int& out_w) {
    const bool swapped = o >= 5;
    out_h = swapped ? w : h, out_w = swapped ? h : w;
    const size_t plane = size_t(h) * w;
    std::vector<float> planar(3 * plane);
    for (int y = 0; y < out_h; ++y)
        for (int x = 0; x < out_w; ++x) {
            // The stored pixel shown at (y, x).
            int sy = y, sx = x;
            switch (o) {
                case 2: sx = w - 1 - x; break;
                case 3: sy = h - 1 - y, sx = w - 1 - x; break;
                case 4: sy = h - 1 - y; break;
                case 5: sy = x, sx = y; break;
                case 6: sy = h - 1 - x, sx = y; break;
                case 7: sy = h - 1 - x, sx = w - 1 - y; break;
                case 8: sy = x, sx = w - 1 - y; break;
                default: break;
            }
            const stbi_uc* p = pixels + (size_t(sy) * w + sx) * channels;
            const float a = alpha ? p[3] / 255.f : 1.f;
            const size_t i = size_t(y) * out_w + x;
            for (int c = 0; c < 3; ++c) planar[c * plane + i] = p[c] * a + 255.f * (1.f - a);
        }
    return planar;
}

Tensor load_stb(const std::string& path) {
    int w = 0, h = 0, comp = 0;
    // The header alone first: a hostile size is refused before any allocation.
    if (!stbi_info(path.c_str(), &w, &h, &comp)) {
        const std::string reason = stbi_failure_reason();
        int64_t dw = 0, dh = 0;
        if (declared_size(path, dw, dh)) check_size(path, dw, dh);
        fail(path + ": not a readable PNG, JPEG or BMP image (" + reason + ")");
    }
    // A BMP stored top-down declares a negative height; stbi_info passes it on.
    check_size(path, w, std::abs(int64_t(h)));
    h = std::abs(h);
    const bool alpha = comp == 2 || comp == 4;
    const int channels = alpha ? 4 : 3;
    int w2 = 0, h2 = 0, comp2 = 0;
    stbi_uc* pixels = stbi_load(path.c_str(), &w2, &h2, &comp2, channels);
    NST_CHECK(pixels, path, ": cannot decode the image (", stbi_failure_reason(),
              "; truncated or corrupt?)");
    if (w2 != w || h2 != h) {
        stbi_image_free(pixels);
        fail(detail::concat(path, ": the header says ", w, "x", h, " pixels, the data ", w2, "x", h2));
    }
    int out_h = 0, out_w = 0;
    const std::vector<float> planar =
        displayed_planar(pixels, h, w, channels, alpha, exif_orientation(path), out_h, out_w);
    stbi_image_free(pixels);
    return Tensor::from_vector(planar, {1, 3, out_h, out_w});
}

void write_to_file(void* context, void* data, int size) {
    auto* file = static_cast<AtomicFile*>(context);
    // Errors are detected at commit through ferror; stb offers no way to stop.
    if (file->file()) std::fwrite(data, 1, size_t(size), file->file());
}

bool is_jpeg(const std::string& ext) { return ext == ".jpg" || ext == ".jpeg"; }

}  // namespace

bool is_image_path(const std::string& path) {
    const std::string ext = lower_extension(path);
    return ext == ".png" || is_jpeg(ext) || ext == ".bmp" || ext == ".npy";
}

bool is_writable_image_path(const std::string& path) { return is_image_path(path); }

Tensor load_image(const std::string& path) {
    check_readable(path);
    return lower_extension(path) == ".npy" ? load_npy(path) : load_stb(path);
}

void save_image(const Tensor& image, const std::string& path) {
    check_image_tensor("save_image", image);
    const std::string ext = lower_extension(path);
    NST_CHECK(is_writable_image_path(path), path, ": cannot write images of type '", ext,
              "' (use .png, .jpg, .jpeg, .bmp or .npy)");
    const int h = int(image.size(2)), w = int(image.size(3));
    if (ext == ".npy") {
        std::vector<float> values = image.to_vector();
        for (float& v : values) v = clamp255(v);
        save_npy(values, image.shape(), path);
        return;
    }
    std::vector<uint8_t> rgb;
    image_to_rgb8(image, rgb);
    AtomicFile file(path);
    int ok = 0;
    if (ext == ".png") {
        ok = stbi_write_png_to_func(write_to_file, &file, w, h, 3, rgb.data(), w * 3);
    } else if (is_jpeg(ext)) {
        ok = stbi_write_jpg_to_func(write_to_file, &file, w, h, 3, rgb.data(), 95);
    } else {
        ok = stbi_write_bmp_to_func(write_to_file, &file, w, h, 3, rgb.data());
    }
    NST_CHECK(ok && !std::ferror(file.file()), path, ": cannot write the image: ",
              ok ? std::strerror(errno) : "encoder failed");
    file.commit();
}

Tensor images_from_rgb8(const uint8_t* rgb, int count, int height, int width, Device device) {
    NST_CHECK(count > 0 && height > 0 && width > 0, "images_from_rgb8: empty images ", count, " x ", width, "x",
              height);
    const int64_t plane = int64_t(height) * width;
    ops::check_int("images_from_rgb8", 3 * plane);  // first: the product below then stays far from overflow
    ops::check_int("images_from_rgb8", 3 * plane * count);
    Backend& b = backend(device);
    Tensor images = Tensor::empty({count, 3, height, width}, device);
    if (device.is_cpu()) {
        b.rgb8_to_planar(count, plane, rgb, images.data());
        return images;
    }
    const size_t bytes = size_t(plane) * 3 * size_t(count);
    Storage staging(bytes, device);
    b.copy_from_host(staging.data(), rgb, bytes);
    b.rgb8_to_planar(count, plane, static_cast<const uint8_t*>(staging.data()), images.data());
    return images;
}

void images_to_rgb8(const Tensor& images, std::vector<uint8_t>& rgb) {
    NST_CHECK(images.defined() && images.dim() == 4 && images.size(0) > 0 && images.size(1) == 3 &&
                  images.size(2) > 0 && images.size(3) > 0,
              "images_to_rgb8: expected images [N, 3, H, W], got ",
              images.defined() ? shape_str(images.shape()) : "an undefined tensor");
    const Tensor x = images.detach().to(DType::F32).contiguous();
    const int count = int(x.size(0));
    const int64_t plane = x.size(2) * x.size(3);
    const size_t bytes = size_t(plane) * 3 * size_t(count);
    rgb.resize(bytes);
    Backend& b = backend(x.device());
    if (x.device().is_cpu()) return b.planar_to_rgb8(count, plane, x.data(), rgb.data());
    Storage staging(bytes, x.device());
    b.planar_to_rgb8(count, plane, x.data(), static_cast<uint8_t*>(staging.data()));
    b.copy_to_host(rgb.data(), staging.data(), bytes);
}

Tensor image_from_rgb8(const uint8_t* rgb, int height, int width) {
    return images_from_rgb8(rgb, 1, height, width, Device::cpu());
}

void image_to_rgb8(const Tensor& image, std::vector<uint8_t>& rgb) {
    check_image_tensor("image_to_rgb8", image);
    images_to_rgb8(image, rgb);
}

Tensor resize_image(const Tensor& image, int height, int width) {
    check_image_tensor("resize_image", image);
    NST_CHECK(height > 0 && width > 0 && height <= kMaxImageSide && width <= kMaxImageSide &&
                  int64_t(height) * width <= kMaxImagePixels,
              "resize_image: invalid target size ", width, "x", height);
    const int h = int(image.size(2)), w = int(image.size(3));
    if (h == height && w == width) return image;
    // stb resizes interleaved pixels.
    const std::vector<float> planar = image.to_vector();
    const size_t in_plane = size_t(h) * w, out_plane = size_t(height) * width;
    std::vector<float> in(3 * in_plane), out(3 * out_plane);
    for (size_t i = 0; i < in_plane; ++i)
        for (int c = 0; c < 3; ++c) in[3 * i + c] = planar[c * in_plane + i];
    const int ok = stbir_resize_float_generic(
        in.data(), w, h, 0, out.data(), width, height, 0, 3, STBIR_ALPHA_CHANNEL_NONE, 0,
        STBIR_EDGE_CLAMP, STBIR_FILTER_MITCHELL, STBIR_COLORSPACE_LINEAR, nullptr);
    NST_CHECK(ok, "resize_image: resampling ", w, "x", h, " to ", width, "x", height, " failed");
    std::vector<float> result(3 * out_plane);
    // Clamped: the filter's negative lobes overshoot at sharp edges.
    for (size_t i = 0; i < out_plane; ++i)
        for (int c = 0; c < 3; ++c) result[c * out_plane + i] = clamp255(out[3 * i + c]);
    return Tensor::from_vector(result, {1, 3, height, width}).to(image.device());
}

Tensor limit_image_size(const Tensor& image, int max_side) {
    check_image_tensor("limit_image_size", image);
    const ImageSize size = limit_longest_side(image.size(2), image.size(3), max_side);
    if (size.height == image.size(2) && size.width == image.size(3)) return image;
    return resize_image(image, size.height, size.width);
}

ImageSize fit_longest_side(int64_t height, int64_t width, int side) {
    NST_CHECK(height > 0 && width > 0 && side > 0, "invalid size ", width, "x", height, " -> longest side ", side);
    const double k = double(side) / double(std::max(height, width));
    return {std::max(1, int(std::lround(double(height) * k))), std::max(1, int(std::lround(double(width) * k)))};
}

ImageSize limit_longest_side(int64_t height, int64_t width, int max_side) {
    NST_CHECK(max_side > 0, "max size must be positive, got ", max_side);
    if (std::max(height, width) <= max_side) return {int(height), int(width)};
    return fit_longest_side(height, width, max_side);
}

Tensor resize_bilinear(const Tensor& image, int height, int width) {
    check_image_tensor("resize", image);
    NST_CHECK(height > 0 && width > 0, "resize_bilinear: invalid size ", width, "x", height);
    const int H = int(image.size(2)), W = int(image.size(3));
    if (H == height && W == width) return image.detach().clone();
    const std::vector<float> in = image.to_vector();
    std::vector<float> out(size_t(3) * height * width);
    // Source coordinate of each destination row/column, as PyTorch computes it.
    auto taps = [](int in_size, int out_size, std::vector<int>& i0, std::vector<int>& i1,
                   std::vector<float>& frac) {
        const double scale = double(in_size) / double(out_size);
        for (int o = 0; o < out_size; ++o) {
            const double src = std::max(0.0, scale * (o + 0.5) - 0.5);
            i0.push_back(std::min(int(src), in_size - 1));
            i1.push_back(std::min(i0.back() + 1, in_size - 1));
            frac.push_back(float(src - i0.back()));
        }
    };
    std::vector<int> y0, y1, x0, x1;
    std::vector<float> fy, fx;
    taps(H, height, y0, y1, fy);
    taps(W, width, x0, x1, fx);
    for (int c = 0; c < 3; ++c) {
        const float* p = in.data() + size_t(c) * H * W;
        float* q = out.data() + size_t(c) * height * width;
        for (int y = 0; y < height; ++y) {
            const float* r0 = p + size_t(y0[y]) * W;
            const float* r1 = p + size_t(y1[y]) * W;
            for (int x = 0; x < width; ++x) {
                const float top = r0[x0[x]] + fx[x] * (r0[x1[x]] - r0[x0[x]]);
                const float bottom = r1[x0[x]] + fx[x] * (r1[x1[x]] - r1[x0[x]]);
                q[size_t(y) * width + x] = top + fy[y] * (bottom - top);
            }
        }
    }
    return Tensor::from_vector(out, {1, 3, height, width}, image.device());
}

Tensor resize_image01(const Tensor& image, int height, int width) {
    check_image_tensor("resize", image);
    if (image.size(2) == height && image.size(3) == width) return image;
    NoGradGuard no_grad;
    return scale(resize_image(scale(image, 255.f), height, width), 1.f / 255.f);
}

Tensor luminance_transfer(const Tensor& stylized, const Tensor& photo) {
    NST_CHECK(stylized.defined() && photo.defined() && stylized.shape() == photo.shape() &&
                  stylized.dim() == 4 && stylized.size(1) == 3,
              "luminance_transfer: expected two images [N, 3, H, W] of one size, got ",
              stylized.defined() ? shape_str(stylized.shape()) : "undefined", " and ",
              photo.defined() ? shape_str(photo.shape()) : "undefined");
    // With Y = 0.299 R + 0.587 G + 0.114 B (BT.601, as in YCbCr and YUV), the
    // inverse transform maps a change of Y alone to the same change in R, G
    // and B. So "Y of the stylized image, Cb/Cr of the photo" is the photo
    // plus (Y_stylized - Y_photo) on every channel: one 1x1 convolution whose
    // three output rows are the luma weights.
    const std::vector<float> luma = {0.299f, 0.587f, 0.114f};
    std::vector<float> w;
    for (int c = 0; c < 3; ++c) w.insert(w.end(), luma.begin(), luma.end());
    const Tensor weight = Tensor::from_vector(w, {3, 3, 1, 1}, stylized.device());
    const Tensor luma_delta = conv2d(add(stylized, scale(photo, -1.f)), weight);
    return add(photo, luma_delta);
}

}  // namespace nst
