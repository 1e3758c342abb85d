// Image I/O, resizing and luminance transfer: exact round trips where the
// format is lossless, and a readable nst::Error naming the file for every
// broken input (missing, empty, not an image, truncated, absurd size).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/image.hpp"

// stb_image_write is compiled into libnst (core/image.cpp) with C linkage;
// the tests use it to write grey and RGBA PNGs, which save_image never does.
extern "C" int stbi_write_png(char const* filename, int w, int h, int comp, const void* data,
                              int stride_in_bytes);
#include "exif_writer.hpp"
#include "temp_dir.hpp"

using namespace nst;

namespace {

using nst::test::temp_dir;

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Integer-valued RGB pattern, so 8-bit formats can round-trip it exactly.
Tensor pattern(int h, int w) {
    std::vector<float> v(size_t(3) * h * w);
    for (size_t i = 0; i < v.size(); ++i) v[i] = float((i * 37 + i / 7) % 256);
    return Tensor::from_vector(v, {1, 3, h, w});
}

Tensor smooth(int h, int w) {
    std::vector<float> v(size_t(3) * h * w);
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                v[(size_t(c) * h + y) * w + x] = 128.f + 100.f * std::sin(0.1f * x + 0.07f * y + c);
    return Tensor::from_vector(v, {1, 3, h, w});
}

double psnr(const std::vector<float>& a, const std::vector<float>& b) {
    double mse = 0;
    for (size_t i = 0; i < a.size(); ++i) mse += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    mse /= double(a.size());
    return mse == 0 ? 1e9 : 10 * std::log10(255.0 * 255.0 / mse);
}

void require_load_error(const std::string& path, const std::string& fragment) {
    try {
        load_image(path);
        FAIL("no error for " << path);
    } catch (const Error& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(what.find(path) != std::string::npos);
        CHECK(what.find(fragment) != std::string::npos);
        CHECK(what.find('\n') == std::string::npos);
    }
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// A PNG signature and an IHDR claiming width x height (stb reads no further for info).
std::string png_header(uint32_t width, uint32_t height) {
    std::string s("\x89PNG\r\n\x1a\n", 8);
    auto be32 = [&](uint32_t v) {
        for (int i = 3; i >= 0; --i) s += char((v >> (8 * i)) & 0xff);
    };
    be32(13);
    s += "IHDR";
    be32(width);
    be32(height);
    s += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB
    be32(0);                                      // CRC (stb does not check it)
    return s;
}

// The stored image as displayed under an orientation, from the EXIF table:
// which side of the display the stored row 0 and column 0 are on.
Tensor displayed(const Tensor& stored, int orientation) {
    const int64_t H = stored.size(2), W = stored.size(3);
    const bool turned = orientation >= 5;  // row 0 runs down the left or right side
    const int64_t h = turned ? W : H, w = turned ? H : W;
    // orientation -> (row 0 at the bottom or right, column 0 at the right or bottom)
    const bool row_far[9] = {false, false, false, true, true, false, true, true, false};
    const bool col_far[9] = {false, false, true, true, false, false, false, true, true};
    const std::vector<float> in = stored.to_vector();
    std::vector<float> out(in.size());
    for (int c = 0; c < 3; ++c)
        for (int64_t r = 0; r < H; ++r)
            for (int64_t k = 0; k < W; ++k) {
                const int64_t along_rows = row_far[orientation] ? (turned ? w : h) - 1 - r : r;
                const int64_t along_cols = col_far[orientation] ? (turned ? h : w) - 1 - k : k;
                const int64_t y = turned ? along_cols : along_rows, x = turned ? along_rows : along_cols;
                out[size_t((c * h + y) * w + x)] = in[size_t((c * H + r) * W + k)];
            }
    return Tensor::from_vector(out, {1, 3, h, w});
}

}  // namespace

TEST_CASE("image: EXIF orientation is applied, all eight values, JPEG and PNG", "[image]") {
    const std::string dir = temp_dir();
    for (const char* ext : {".jpg", ".png"}) {
        const std::string plain = dir + "/stored" + ext;
        save_image(pattern(7, 12), plain);
        const Tensor stored = load_image(plain);  // as decoded, without orientation
        const std::string bytes = read_bytes(plain);
        for (int orientation = 1; orientation <= 8; ++orientation)
            for (const bool big_endian : {false, true}) {
                INFO(ext << " orientation " << orientation << (big_endian ? " big-endian" : " little-endian"));
                const std::string path = dir + "/oriented" + ext;
                write_bytes(path, nst::test::with_orientation(bytes, orientation, big_endian));
                const Tensor got = load_image(path), want = displayed(stored, orientation);
                REQUIRE(got.shape() == want.shape());
                CHECK(got.to_vector() == want.to_vector());
            }
        // Rotation 90 clockwise (6), the common phone case: the stored top-left
        // pixel ends at the top right.
        write_bytes(dir + "/six" + ext, nst::test::with_orientation(bytes, 6, false));
        const Tensor six = load_image(dir + "/six" + ext);
        CHECK(six.shape() == Shape{1, 3, 12, 7});
        CHECK(six.to_vector()[6] == stored.to_vector()[0]);
    }
    SECTION("a damaged EXIF block is ignored, not trusted") {
        const std::string bytes = read_bytes(dir + "/stored.jpg");
        std::string broken = nst::test::with_orientation(bytes, 6, false);
        broken[2 + 4 + 6 + 4] = char(0x7f);  // the directory offset points far outside
        write_bytes(dir + "/broken.jpg", broken);
        CHECK(load_image(dir + "/broken.jpg").to_vector() == load_image(dir + "/stored.jpg").to_vector());
    }
}

TEST_CASE("image: a BMP stored top-down (negative height) reads upright", "[image]") {
    const std::string dir = temp_dir();
    const Tensor img = pattern(5, 6);
    save_image(img, dir + "/bottom_up.bmp");
    // The same pixels with the rows in the other order and the height negated.
    std::string bytes = read_bytes(dir + "/bottom_up.bmp");
    const uint32_t offset = uint8_t(bytes[10]) | uint8_t(bytes[11]) << 8;
    const int32_t height = int32_t(uint8_t(bytes[22]) | uint8_t(bytes[23]) << 8 | uint8_t(bytes[24]) << 16 |
                                   uint32_t(uint8_t(bytes[25])) << 24);
    REQUIRE(height == 5);
    const size_t row = (6 * 3 + 3) / 4 * 4;
    std::string flipped = bytes.substr(0, offset);
    for (int r = height - 1; r >= 0; --r) flipped += bytes.substr(offset + r * row, row);
    const int32_t negative = -height;
    std::memcpy(&flipped[22], &negative, 4);
    write_bytes(dir + "/top_down.bmp", flipped);
    CHECK(load_image(dir + "/top_down.bmp").to_vector() == img.to_vector());
}

TEST_CASE("image: a name near the file system's limit still saves atomically", "[image]") {
    const std::string name = std::string(240, 'n') + ".png";
    save_image(pattern(4, 4), temp_dir() + "/" + name);
    CHECK(load_image(temp_dir() + "/" + name).to_vector() == pattern(4, 4).to_vector());
    std::remove((temp_dir() + "/" + name).c_str());
}

TEST_CASE("image: PNG, BMP and NPY round-trip exactly, JPEG closely", "[image]") {
    const Tensor img = pattern(13, 21);  // odd sizes
    for (const char* ext : {".png", ".bmp", ".PNG"}) {
        const std::string path = temp_dir() + "/rt" + ext;
        save_image(img, path);
        const Tensor back = load_image(path);
        CHECK(back.shape() == img.shape());
        CHECK(back.to_vector() == img.to_vector());
    }
    const Tensor s = smooth(40, 56);
    save_image(s, temp_dir() + "/rt.jpg");
    const Tensor jpg = load_image(temp_dir() + "/rt.jpg");
    REQUIRE(jpg.shape() == s.shape());
    CHECK(psnr(jpg.to_vector(), s.to_vector()) > 35);  // quality 95

    // .npy keeps floats (clamped to 0..255, not rounded).
    const Tensor f = Tensor::from_vector({0.25f, 100.5f, -3.f, 300.f, 1.f, 2.f}, {1, 3, 1, 2});
    save_image(f, temp_dir() + "/rt.npy");
    CHECK(load_image(temp_dir() + "/rt.npy").to_vector() ==
          std::vector<float>{0.25f, 100.5f, 0.f, 255.f, 1.f, 2.f});
}

TEST_CASE("image: 8-bit saving clamps and rounds", "[image]") {
    const Tensor img = Tensor::from_vector({-5.f, 300.f, 127.4f, 127.6f, 0.5f, 254.5f}, {1, 3, 1, 2});
    save_image(img, temp_dir() + "/clamp.png");
    CHECK(load_image(temp_dir() + "/clamp.png").to_vector() ==
          std::vector<float>{0.f, 255.f, 127.f, 128.f, 1.f, 255.f});
    std::vector<uint8_t> rgb;
    image_to_rgb8(img, rgb);
    CHECK(rgb == std::vector<uint8_t>{0, 127, 1, 255, 128, 255});  // interleaved
    CHECK(image_from_rgb8(rgb.data(), 1, 2).to_vector() ==
          std::vector<float>{0.f, 255.f, 127.f, 128.f, 1.f, 255.f});
}

TEST_CASE("image: batches of 8-bit frames to images and back, any dtype", "[image]") {
    // Two 3x2 frames: image n, channel c, pixel p holds 100 n + 10 c + p.
    std::vector<uint8_t> rgb(2 * 6 * 3);
    for (int n = 0; n < 2; ++n)
        for (int p = 0; p < 6; ++p)
            for (int c = 0; c < 3; ++c) rgb[size_t((n * 6 + p) * 3 + c)] = uint8_t(100 * n + 10 * c + p);
    const Tensor images = images_from_rgb8(rgb.data(), 2, 2, 3, Device::cpu());
    REQUIRE(images.shape() == Shape{2, 3, 2, 3});
    const std::vector<float> v = images.to_vector();
    for (int n = 0; n < 2; ++n)
        for (int c = 0; c < 3; ++c)
            for (int p = 0; p < 6; ++p) CHECK(v[size_t((n * 3 + c) * 6 + p)] == float(100 * n + 10 * c + p));
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
        std::vector<uint8_t> back;
        images_to_rgb8(images.to(t), back);  // integers to 255 are exact in all three
        CHECK(back == rgb);
    }
    std::vector<uint8_t> out;
    CHECK_THROWS_WITH(images_to_rgb8(Tensor::zeros({2, 1, 2, 3}), out), Catch::Contains("[N, 3, H, W]"));
    CHECK_THROWS_WITH(images_from_rgb8(rgb.data(), 0, 2, 3, Device::cpu()), Catch::Contains("empty"));
}

TEST_CASE("image: grey is replicated, alpha composited over white", "[image]") {
    const uint8_t grey[6] = {0, 50, 100, 150, 200, 250};
    REQUIRE(stbi_write_png((temp_dir() + "/grey.png").c_str(), 3, 2, 1, grey, 3));
    const Tensor g = load_image(temp_dir() + "/grey.png");
    REQUIRE(g.shape() == Shape{1, 3, 2, 3});
    const std::vector<float> gv = g.to_vector();
    for (int c = 0; c < 3; ++c)
        for (int i = 0; i < 6; ++i) CHECK(gv[size_t(c * 6 + i)] == grey[i]);

    // Opaque red, transparent (colour ignored), half-transparent black.
    const uint8_t rgba[12] = {255, 0, 0, 255, 10, 20, 30, 0, 0, 0, 0, 128};
    REQUIRE(stbi_write_png((temp_dir() + "/alpha.png").c_str(), 3, 1, 4, rgba, 12));
    const std::vector<float> a = load_image(temp_dir() + "/alpha.png").to_vector();
    REQUIRE(a.size() == 9);
    CHECK(a[0] == 255.f);  // R plane: red, white, grey
    CHECK(a[3] == 0.f);    // G of red
    CHECK(a[1] == Approx(255.f));
    CHECK(a[2] == Approx(255.f * (1 - 128.f / 255)));
}

TEST_CASE("image: broken files are readable errors naming the file", "[image]") {
    const std::string dir = temp_dir();
    SECTION("missing file") { require_load_error(dir + "/missing.png", "no such file"); }
    SECTION("zero-byte file") {
        write_bytes(dir + "/empty.png", "");
        require_load_error(dir + "/empty.png", "empty file");
    }
    SECTION("text file named .png") {
        write_bytes(dir + "/text.png", "hello, I am not an image\n");
        require_load_error(dir + "/text.png", "not a readable PNG, JPEG or BMP image");
    }
    SECTION("a directory") { require_load_error(dir, "is a directory"); }
    SECTION("a FIFO: refused, not waited on") {
        const std::string fifo = dir + "/fifo.png";
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        require_load_error(fifo, "not a regular file");
        std::remove(fifo.c_str());
    }
    SECTION("NaN and infinite values in .npy") {
        save_image(smooth(8, 8), dir + "/finite.npy");
        std::string bytes = read_bytes(dir + "/finite.npy");
        for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
            std::memcpy(&bytes[bytes.size() - 4 * 17], &bad, 4);
            write_bytes(dir + "/bad.npy", bytes);
            require_load_error(dir + "/bad.npy", "NaN or infinite values");
        }
    }
    SECTION("truncated PNG") {
        save_image(smooth(32, 32), dir + "/full.png");
        const std::string bytes = read_bytes(dir + "/full.png");
        write_bytes(dir + "/trunc.png", bytes.substr(0, bytes.size() / 2));
        require_load_error(dir + "/trunc.png", "truncated or corrupt");
    }
    SECTION("truncated JPEG") {
        save_image(smooth(64, 64), dir + "/full.jpg");
        const std::string bytes = read_bytes(dir + "/full.jpg");
        write_bytes(dir + "/trunc.jpg", bytes.substr(0, bytes.size() * 2 / 3));
        require_load_error(dir + "/trunc.jpg", "truncated or corrupt");
    }
    SECTION("header claiming 100000x100000") {
        write_bytes(dir + "/huge.png", png_header(100000, 100000));
        require_load_error(dir + "/huge.png", "larger than the limit");
    }
    SECTION("sides within limits, too many pixels") {
        write_bytes(dir + "/wide.png", png_header(60000, 60000));
        require_load_error(dir + "/wide.png", "larger than the limit");
    }
    SECTION("truncated .npy") {
        save_image(smooth(8, 8), dir + "/full.npy");
        const std::string bytes = read_bytes(dir + "/full.npy");
        write_bytes(dir + "/trunc.npy", bytes.substr(0, bytes.size() - 10));
        require_load_error(dir + "/trunc.npy", "truncated");
    }
}

TEST_CASE("image: failed saves leave no file", "[image]") {
    const Tensor img = pattern(4, 4);
    CHECK_THROWS_AS(save_image(img, temp_dir() + "/out.gif"), Error);
    CHECK_FALSE(file_exists(temp_dir() + "/out.gif"));
    CHECK_THROWS_AS(save_image(img, temp_dir() + "/no/such/dir/out.png"), Error);
    CHECK_THROWS_AS(save_image(Tensor::zeros({1, 4, 4, 4}), temp_dir() + "/bad.png"), Error);
    CHECK_FALSE(file_exists(temp_dir() + "/bad.png"));
}

TEST_CASE("image: resizing keeps range and aspect", "[image]") {
    const Tensor flat = Tensor::full({1, 3, 30, 40}, 77.f);
    const Tensor r = resize_image(flat, 15, 20);
    CHECK(r.shape() == Shape{1, 3, 15, 20});
    for (float v : r.to_vector()) CHECK(v == Approx(77.f).margin(1e-3));
    // Overshoot of the filter at hard edges is clamped.
    for (float v : resize_image(pattern(31, 17), 9, 5).to_vector()) CHECK((v >= 0.f && v <= 255.f));

    CHECK(limit_image_size(flat, 20).shape() == Shape{1, 3, 15, 20});
    CHECK(limit_image_size(flat, 40).shape() == flat.shape());  // never enlarges
    CHECK(limit_image_size(Tensor::zeros({1, 3, 100, 7}), 10).shape() == Shape{1, 3, 10, 1});
    CHECK_THROWS_AS(limit_image_size(flat, 0), Error);
    CHECK_THROWS_AS(resize_image(flat, 0, 5), Error);
}

TEST_CASE("image: luminance transfer keeps the photo's chroma and the stylized luma", "[image]") {
    const Tensor photo = smooth(6, 7);
    const Tensor stylized = pattern(6, 7);
    const Tensor out = luminance_transfer(stylized, photo);
    const std::vector<float> o = out.to_vector(), p = photo.to_vector(), s = stylized.to_vector();
    const size_t n = 6 * 7;
    for (size_t i = 0; i < n; ++i) {
        auto ycbcr = [&](const std::vector<float>& v, int k) {
            const double r = v[i], g = v[n + i], b = v[2 * n + i];
            if (k == 0) return 0.299 * r + 0.587 * g + 0.114 * b;
            if (k == 1) return -0.168736 * r - 0.331264 * g + 0.5 * b;
            return 0.5 * r - 0.418688 * g - 0.081312 * b;
        };
        CHECK(ycbcr(o, 0) == Approx(ycbcr(s, 0)).margin(1e-3));
        CHECK(ycbcr(o, 1) == Approx(ycbcr(p, 1)).margin(1e-3));
        CHECK(ycbcr(o, 2) == Approx(ycbcr(p, 2)).margin(1e-3));
    }
    CHECK_THROWS_AS(luminance_transfer(stylized, smooth(6, 8)), Error);
}
