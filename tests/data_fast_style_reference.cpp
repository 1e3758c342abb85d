// Agreement with the independent PyTorch implementation
// (tools/reference/fast_style_reference.py, written from the data README):
// every pretrained network on small versions of every photo, at 50 dB PSNR or
// better over 0..255. The inputs and reference outputs are committed under
// tests/data/fast_style_ref (NST_TEST_DATA); the networks come from
// NST_DATA_DIR. Runs on the CPU, and on the GPU too when there is one.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/device.hpp"
#include "core/image.hpp"
#include "nets/transform_net.hpp"

using namespace nst;

namespace {

double psnr(const std::vector<float>& ours, const std::vector<float>& ref) {
    double mse = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
        const double o = std::min(255.f, std::max(0.f, ours[i]));  // the images are clipped
        mse += (o - ref[i]) * (o - ref[i]);
    }
    mse /= double(ours.size());
    return mse == 0 ? 300 : 10 * std::log10(255.0 * 255.0 / mse);
}

}  // namespace

TEST_CASE("reference: pretrained networks agree with PyTorch at >= 50 dB", "[data][reference]") {
    const char* data = std::getenv("NST_DATA_DIR");
    const char* test_data = std::getenv("NST_TEST_DATA");
    REQUIRE(data);
    REQUIRE(test_data);
    const std::string ref_dir = std::string(test_data) + "/fast_style_ref";
    std::ifstream index_file(ref_dir + "/index.json");
    REQUIRE(index_file.is_open());
    const nlohmann::json index = nlohmann::json::parse(index_file);
    const double min_psnr = index.value("min_psnr_db", 50.0);

    std::vector<Device> devices = {Device::cpu()};
    if (cuda_available()) devices.push_back(Device::cuda(0));
    int compared = 0;
    double worst = 1e9;
    for (const Device& device : devices) {
        for (const auto& c : index["cases"]) {
            const Tensor input = load_image(ref_dir + "/" + c["input"].get<std::string>()).to(device);
            for (const auto& [style, file] : c["outputs"].items()) {
                const TransformNet net = TransformNet::load(
                    std::string(data) + "/pretrained/fast-style-transfer/" + style, device);
                const Tensor ours = net.stylize(input);
                const Tensor ref = load_image(ref_dir + "/" + file.get<std::string>());
                INFO(device.str() << " " << file.get<std::string>());
                REQUIRE(ours.shape() == ref.shape());
                const double p = psnr(ours.to_vector(), ref.to_vector());
                CHECK(p >= min_psnr);
                worst = std::min(worst, p);
                ++compared;
            }
        }
    }
    CHECK(compared >= 20);
    WARN(compared << " comparisons, worst PSNR " << worst << " dB");
}
