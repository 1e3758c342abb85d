// Image I/O, resizing and luminance transfer: exact round trips where the
// format is lossless, and a readable nst::Error naming the file for every
// broken input (missing, empty, not an image, truncated, absurd size).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/image.hpp"

// stb_image_write is compiled into libnst (core/image.cpp) with C linkage;
// the tests use it to write grey and RGBA PNGs, which save_image never does.
extern "C" int stbi_write_png(char const* filename, int w, int h, int comp, const void* data,
                              int stride_in_bytes);
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

}  // namespace

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
    SECTION("missing file") { require_load_error(dir + "/missing.png", "cannot open"); }
    SECTION("zero-byte file") {
        write_bytes(dir + "/empty.png", "");
        require_load_error(dir + "/empty.png", "empty file");
    }
    SECTION("text file named .png") {
        write_bytes(dir + "/text.png", "hello, I am not an image\n");
        require_load_error(dir + "/text.png", "not a readable PNG, JPEG or BMP image");
    }
    SECTION("a directory") { require_load_error(dir, "not a regular file"); }
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
