// Test support: EXIF Orientation tags written into JPEG and PNG files, as
// cameras and editors write them (core/image.cpp applies them on load).
#pragma once
#include <cstdint>
#include <string>

namespace nst::test {

// A TIFF structure (EXIF's container) holding one tag: Orientation.
inline std::string exif_tiff(int orientation, bool big_endian) {
    std::string s;
    auto u16 = [&](uint32_t v) { s += big_endian ? std::string{char(v >> 8), char(v & 0xff)} : std::string{char(v & 0xff), char(v >> 8)}; };
    auto u32 = [&](uint32_t v) {
        if (big_endian) u16(v >> 16), u16(v & 0xffff);
        else u16(v & 0xffff), u16(v >> 16);
    };
    s += big_endian ? "MM" : "II";
    u16(42), u32(8);                          // the first directory at offset 8
    u16(1);                                   // one entry:
    u16(0x0112), u16(3), u32(1), u16(uint32_t(orientation)), u16(0);  // Orientation, SHORT, 1 value
    u32(0);                                   // no next directory
    return s;
}

inline uint32_t crc32(const std::string& bytes) {
    uint32_t c = 0xffffffffu;
    for (unsigned char b : bytes) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

// The file with an EXIF Orientation: an APP1 segment after a JPEG's SOI, or
// an eXIf chunk after a PNG's IHDR, where cameras and editors put them.
inline std::string with_orientation(const std::string& file, int orientation, bool big_endian) {
    const std::string tiff = exif_tiff(orientation, big_endian);
    if (file[0] == char(0xff)) {
        const size_t length = 2 + 6 + tiff.size();
        return file.substr(0, 2) + "\xff\xe1" + char(length >> 8) + char(length & 0xff) +
               std::string("Exif\0\0", 6) + tiff + file.substr(2);
    }
    std::string chunk;
    auto be32 = [&](uint32_t v) {
        for (int i = 3; i >= 0; --i) chunk += char((v >> (8 * i)) & 0xff);
    };
    be32(uint32_t(tiff.size()));
    const std::string body = "eXIf" + tiff;
    chunk += body;
    be32(crc32(body));
    return file.substr(0, 33) + chunk + file.substr(33);  // signature (8) and IHDR (25) first
}

}  // namespace nst::test
