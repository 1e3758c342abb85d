// `nst-run train` (tools/train_command.hpp). Everything that can be checked
// before training is checked first: paths, the style and sample images, the
// layers, the checkpoint to resume. Files are written atomically (the model,
// checkpoints, samples); the CSV log line by line to a temporary that
// replaces the file at each checkpoint and at the end (CsvLog).
//
// A checkpoint (OUT with ".ckpt.safetensors" for ".safetensors") holds the
// network, Adam's moments and step count, and the data position; with the
// same --seed, --size and --batch, --resume continues with exactly the
// batches and the losses of an uninterrupted run.
#include "tools/train_command.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "core/image.hpp"
#include "core/interrupt.hpp"
#include "core/ops.hpp"
#include "weights/safetensors.hpp"
#include "nets/gatys.hpp"
#include "nets/memory_plan.hpp"
#include "nets/training.hpp"
#include "nets/training_data.hpp"
#include "tools/command_files.hpp"
#include "tools/interrupt.hpp"
#include "tools/progress.hpp"

namespace fs = std::filesystem;
using nst::Error;
using nst::Tensor;

namespace nst_run {
namespace {

struct Settings {
    std::string style, data, out, vgg, resume, sample_image, log, device;
    LossFlags loss{1.f, 5.f, 0.f, "relu2_2", "relu1_2,relu2_2,relu3_3,relu4_3"};
    int size = 256, batch = 4, style_size = 0, checkpoint_every = 1000, sample_every = 0;
    int64_t iters = 0;
    double epochs = 0;
    float lr = 1e-3f;
    uint64_t seed = 0;
    bool quiet = false, plan = false;
};

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string checkpoint_path(const std::string& out) {
    return out.substr(0, out.size() - std::strlen(".safetensors")) + ".ckpt.safetensors";
}

// model.safetensors -> model_sample_000500.png: six digits at least, so the
// names sort by step and stay the same when a resumed run trains longer.
NumberedOutputs sample_series(const std::string& out, int every, int64_t last) {
    return numbered_outputs("--sample-every", out, "_sample_", ".png", 6, every, last);
}

// The photos under --data, as a checkpoint records them: a hash of each
// one's path below the directory and its size (FNV-1a, 64 bits, in hex).
// Reading every photo would cost minutes on a large set; a photo replaced
// by another of the same name and size goes unnoticed.
std::string photos_fingerprint(const std::vector<std::string>& photos, const std::string& dir) {
    uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&h](const std::string& bytes) {
        for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
        h = (h ^ 0xff) * 0x100000001b3ull;  // a separator no name or number holds
    };
    for (const std::string& path : photos) {
        std::error_code ec;
        mix(fs::path(path).lexically_relative(dir).string());
        mix(std::to_string(fs::file_size(path, ec)));
    }
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", (unsigned long long)h);
    return text;
}

// Whether the absolute directory `dir` is `root` or below it.
bool is_within(const std::string& dir, const std::string& root) {
    std::error_code ec;
    const fs::path r = fs::weakly_canonical(fs::absolute(root, ec), ec);
    const std::string rs = r.string();
    return dir == rs || (dir.size() > rs.size() && dir.compare(0, rs.size(), rs) == 0 &&
                         (rs.back() == '/' || dir[rs.size()] == '/'));
}

uint64_t metadata_uint(const nst::WeightFile& w, const std::string& key, const std::string& source) {
    auto it = w.metadata.find(key);
    NST_CHECK(it != w.metadata.end(), source, ": not a training checkpoint (no ", key, " metadata)");
    const std::string& text = it->second;
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    NST_CHECK(!text.empty() && text[0] != '-' && *end == '\0' && errno == 0, source, ": bad ", key, " '", text,
              "'");
    return v;
}

int run_train(const Settings& s) {
    // ---- everything that can fail early --------------------------------------------------
    const nst::Device device = nst::usable_device(s.device);
    NST_CHECK(ends_with(s.out, ".safetensors"), "--out ", s.out, ": the model is a .safetensors file");
    check_output(s.out, "--out");
    const std::string ckpt_path = checkpoint_path(s.out);
    NST_CHECK(s.iters == 0 || s.epochs == 0, "--iters and --epochs: give one, not both");
    NST_CHECK((s.sample_every > 0) == !s.sample_image.empty(),
              "--sample-every and --sample-image go together");
    if (!s.log.empty()) check_output(s.log, "--log");
    const std::vector<std::string> photos = nst::TrainingImages::image_files(s.data);
    // Epochs count samples (batches run on across epoch boundaries).
    const int64_t samples = int64_t(std::llround((s.epochs > 0 ? s.epochs : 2.0) * double(photos.size())));
    const int64_t total_steps = s.iters > 0 ? s.iters : std::max<int64_t>(1, (samples + s.batch - 1) / s.batch);
    {
        CommandFiles files;
        files.reads("--style", s.style);
        for (const std::string& photo : photos) files.reads_in("--data", s.data, photo);
        files.reads("--vgg", vgg_file(s.vgg));
        // The checkpoint a run resumes from is the one it goes on writing: read first, then replaced.
        if (!same_file(s.resume, ckpt_path)) files.reads("--resume", s.resume);
        files.reads("--sample-image", s.sample_image);
        files.writes("--out", s.out);
        files.writes("--out's checkpoint", ckpt_path);
        if (!s.log.empty()) files.writes("--log", s.log);
        if (s.sample_every > 0) {
            const NumberedOutputs samples = sample_series(s.out, s.sample_every, total_steps);
            NST_CHECK(!is_within(samples.absolute_dir, s.data), "--sample-every: the samples (",
                      samples.path(s.sample_every), ", ...) would go under --data ", s.data,
                      " and be taken for training photos next time; put --out elsewhere");
            files.writes_numbered(samples);
        }
        files.check();
    }

    nst::TrainingOptions o;
    o.content_layers = parse_layers("--content-layers", s.loss.content_layers);
    o.style_layers = parse_layers("--style-layers", s.loss.style_layers);
    o.content_weight = s.loss.content_weight, o.style_weight = s.loss.style_weight, o.tv_weight = s.loss.tv_weight;
    o.learning_rate = s.lr;

    Tensor style = nst::scale(load_input_image(s.style), 1.f / 255.f);
    {
        const nst::ImageSize size = nst::fit_longest_side(style.size(2), style.size(3), s.style_size > 0 ? s.style_size : s.size);
        style = nst::resize_image01(style, size.height, size.width);
    }
    const Tensor sample = s.sample_image.empty() ? Tensor() : load_input_image(s.sample_image).to(device);

    nst::WeightFile ckpt;
    uint64_t position = 0;
    int64_t start_step = 0;
    double elapsed_before = 0;
    const std::string photos_id = photos_fingerprint(photos, s.data);
    if (!s.resume.empty()) {
        ckpt = nst::load_safetensors(s.resume, device);
        start_step = int64_t(metadata_uint(ckpt, "train.step", s.resume));
        position = metadata_uint(ckpt, "train.position", s.resume);
        for (const auto& [key, value] : {std::pair<const char*, uint64_t>{"train.batch", uint64_t(s.batch)},
                                         {"train.size", uint64_t(s.size)},
                                         {"train.seed", s.seed}}) {
            const uint64_t saved = metadata_uint(ckpt, key, s.resume);
            NST_CHECK(saved == value, "--resume ", s.resume, ": it was trained with --", key + 6, " ", saved,
                      ", this run has ", value, "; pass the same value to continue the same run");
        }
        const uint64_t files = metadata_uint(ckpt, "train.files", s.resume);
        NST_CHECK(files == photos.size(), "--resume ", s.resume, ": it was trained on ", files, " photos, --data ",
                  s.data, " has ", photos.size(), "; the same photos are needed to continue the same run");
        // Checkpoints since 2026-12 name their photos (paths under --data and sizes).
        if (auto it = ckpt.metadata.find("train.photos"); it != ckpt.metadata.end())
            NST_CHECK(it->second == photos_id, "--resume ", s.resume, ": it was trained on other photos than those under --data ",
                      s.data, " (the same number, but other names or file sizes); the same photos are needed to "
                      "continue the same run");
        if (auto it = ckpt.metadata.find("train.elapsed_s"); it != ckpt.metadata.end())
            elapsed_before = std::strtod(it->second.c_str(), nullptr);
    }
    NST_CHECK(start_step < total_steps, "--resume ", s.resume, ": already at step ", start_step, " of ",
              total_steps, "; raise --iters or --epochs to train further");

    const nst::Vgg19 vgg = load_vgg(s.vgg, device, nst::VggPooling::Max, s.quiet);
    // The memory plan (nets/memory_plan.hpp), made before the run's own
    // trainer exists (the plan's trainer stands for it, and the style's
    // targets at full size are not worth computing for a plan): printed
    // with --plan; a batch that cannot fit refused before training.
    // Measured only when the batch could come near the device's memory, or
    // when asked.
    const auto plan = nst::plan_or_refuse(
        s.plan, nst::training_plan_needed(device, s.batch, s.size, style.size(2) * style.size(3)),
        [&] { return nst::plan_training(vgg, {style.size(2), style.size(3)}, o, s.batch, s.size); });
    if (s.plan) {
        std::printf("%s", nst::describe(*plan).c_str());
        return 0;
    }
    nst::TransformNet network =
        s.resume.empty()
            ? nst::TransformNet::create(nst::TransformNetSpec{}, s.seed, device)
            : nst::TransformNet::from_weights(nst::StyleTrainer::network_weights(ckpt), device, s.resume);
    NST_CHECK(network.variant() == nst::TransformNetVariant::Native, "--resume ", s.resume,
              ": only native networks are trained");
    nst::TrainingImages data(s.data, s.size, s.batch, s.seed, position);
    nst::StyleTrainer trainer = [&] {
        try {
            return nst::StyleTrainer(std::move(network), vgg, style, o);
        } catch (const nst::SizeLimitError&) {  // VGG-19's features of the whole style at once
            throw Error("--style-size " + std::to_string(std::max(style.size(2), style.size(3))) +
                        ": the style image's features at " + std::to_string(style.size(3)) + "x" +
                        std::to_string(style.size(2)) + " pass the kernels' 32-bit limit; try --style-size " +
                        std::to_string(std::max(style.size(2), style.size(3)) / 2));
        }
    }();
    if (!s.resume.empty()) trainer.restore_optimizer(ckpt, s.resume);
    ckpt = {};
    CsvLog log("--log", s.log, "step,epoch,content_loss,style_loss,tv_loss,total_loss,images_per_s,elapsed_s", start_step);
    if (!s.quiet)
        std::fprintf(stderr, "nst-run: training on %zu images under %s, %lld steps of %d at %dx%d%s\n", data.files(),
                     s.data.c_str(), (long long)total_steps, s.batch, s.size, s.size,
                     start_step ? (", resuming at step " + std::to_string(start_step)).c_str() : "");

    // ---- the run ---------------------------------------------------------------------------
    Progress bar(total_steps - start_step, "step", s.quiet);
    data.on_skip([&](const std::string& path, const std::string& why) {
        // `why` names the file when it comes from the image reader
        bar.message("nst-run: warning: skipping " + (why.rfind(path, 0) == 0 ? why : path + ": " + why));
    });
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    auto save_checkpoint = [&] {
        nst::WeightFile w = trainer.checkpoint({{"train.position", std::to_string(data.position())},
                                                {"train.batch", std::to_string(s.batch)},
                                                {"train.size", std::to_string(s.size)},
                                                {"train.seed", std::to_string(s.seed)},
                                                {"train.files", std::to_string(data.files())},
                                                {"train.photos", photos_id},
                                                {"train.elapsed_s", std::to_string(elapsed())}});
        nst::save_safetensors(ckpt_path, w.tensors, w.metadata);
    };
    double training_seconds = 0;  // data and steps, not samples and checkpoints
    while (trainer.steps() < total_steps) {
        const auto t0 = std::chrono::steady_clock::now();
        nst::TrainingLosses l;
        try {
            l = trainer.step(data.next());
        } catch (const nst::OutOfMemoryError& e) {
            throw nst::OutOfMemoryError(std::string(e.what()) + " training on batches of " + std::to_string(s.batch) +
                                        " at " + std::to_string(s.size) + "x" + std::to_string(s.size) +
                                        "; try a smaller --batch or --size");
        }
        training_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const int64_t step = trainer.steps();
        const double rate = double(step - start_step) * s.batch / std::max(1e-9, training_seconds);
        log.row("%lld,%.4f,%.9g,%.9g,%.9g,%.9g,%.2f,%.3f", (long long)step,
                double(data.position()) / double(data.files()), l.content, l.style, l.tv, l.total, rate, elapsed());
        if (s.sample_every > 0 && step % s.sample_every == 0) {
            const std::string path = sample_series(s.out, s.sample_every, total_steps).path(step);
            try {
                nst::save_image(trainer.network().stylize(sample), path);
                bar.message("saved " + path);
            } catch (const nst::Interrupted&) {
                // Ctrl-C during the sample: the step is done; its checkpoint follows.
            }
        }
        const bool interrupted = nst_run::interrupted();
        if (s.checkpoint_every > 0 && step % s.checkpoint_every == 0 && !interrupted) {
            save_checkpoint();
            log.publish();  // what a run resumed from this checkpoint continues
        }
        char label[128];
        std::snprintf(label, sizeof label, "loss %.3g (c %.3g s %.3g tv %.3g) %.1f img/s", l.total, l.content,
                      l.style, l.tv, rate);
        bar.step(label);
        if (interrupted) {
            save_checkpoint();
            log.commit();
            throw Error("interrupted at step " + std::to_string(step) + " of " + std::to_string(total_steps) +
                        "; checkpoint saved to " + ckpt_path + " (continue with --resume " + ckpt_path + ")");
        }
    }
    bar.finish();
    if (s.checkpoint_every > 0 && trainer.steps() % s.checkpoint_every != 0) {  // else just written
        save_checkpoint();
        log.publish();
    }
    nst::WeightFile model = trainer.network().to_weights();
    model.metadata["style"] = fs::path(s.style).filename().string();
    model.metadata["trained_steps"] = std::to_string(trainer.steps());
    nst::save_safetensors(s.out, model.tensors, model.metadata);
    log.commit();
    if (!s.quiet) {
        std::fprintf(stderr, "nst-run: %lld steps in %.1f s; model written to %s", (long long)trainer.steps(),
                     elapsed(), s.out.c_str());
        if (data.skipped()) std::fprintf(stderr, "; %zu unreadable image(s) skipped", data.skipped());
        std::fprintf(stderr, "\n");
    }
    return 0;
}

}  // namespace

Command add_train_command(CLI::App& app) {
    auto s = std::make_shared<Settings>();
    CLI::App* cmd = app.add_subcommand(
        "train",
        "Train a transformation network for one style (Johnson et al.) on a directory of photos; "
        "the result runs with `nst-run stylize`");
    cmd->footer(
        "Each layer's loss is divided by its target's mean square (relative errors), as in optimize. "
        "Photos are centre-cropped to squares and resized to --size. A checkpoint (OUT with "
        ".ckpt.safetensors) is written every --checkpoint-every steps (and then at the end) and on "
        "Ctrl-C; --resume continues it exactly with the same photos, --seed, --size and --batch. Without --vgg, "
        "weights/vgg19-dcbb9e9d.pth or weights/vgg19-d01eb7cb.pth are used when present, else the "
        "embedded random VGG-19 (far weaker).");
    cmd->add_option("--style", s->style, "Style image")->required();
    cmd->add_option("--data", s->data, "Directory of training photos (searched recursively)")->required();
    cmd->add_option("--out", s->out, "The trained network (.safetensors)")->required();
    cmd->add_option("--vgg", s->vgg, "VGG-19 weights (.pth or .safetensors), or 'random'");
    cmd->add_option("--size", s->size, "Training image size (square)")->capture_default_str()->transform(whole_number(kMinInputSide, 4096));
    cmd->add_option("--batch", s->batch, "Images per step")->capture_default_str()->transform(whole_number(1, 1024));
    cmd->add_option("--iters", s->iters, "Steps to train (total, counting resumed ones)")->transform(whole_number(1, kMaxIterations));
    cmd->add_option("--epochs", s->epochs, "Passes over the photos (default 2; or --iters)")->check(real_number(0, true, 1e6));
    cmd->add_option("--lr", s->lr, "Adam learning rate")->capture_default_str()->check(real_number(0, true));
    add_loss_options(cmd, s->loss);
    cmd->add_option("--style-size", s->style_size, "Longer side of the style image (default: --size)")
        ->transform(whole_number(kMinInputSide, 8192));
    cmd->add_option("--checkpoint-every", s->checkpoint_every, "Write the checkpoint every N steps (0: only on Ctrl-C)")
        ->capture_default_str()
        ->transform(whole_number(0, kMaxIterations));
    cmd->add_option("--resume", s->resume, "Continue from a checkpoint");
    cmd->add_option("--sample-every", s->sample_every, "Stylize --sample-image every N steps (OUT_sample_<step>.png)")
        ->transform(whole_number(1, kMaxIterations));
    cmd->add_option("--sample-image", s->sample_image, "The image the samples show");
    cmd->add_option("--seed", s->seed, "Seed of the network's initialization and the data order")
        ->capture_default_str()
        ->transform(whole_number(0, UINT64_MAX));
    cmd->add_option("--log", s->log, "CSV log: step, epoch, each loss, images/s, elapsed seconds");
    cmd->add_option("--device", s->device, "cpu, cuda or cuda:N (default: first GPU, else CPU)");
    cmd->add_flag("--plan", s->plan,
                  "Print the memory plan (a step's predicted peak, the largest batch that fits) and exit without "
                  "training; nothing is written");
    cmd->add_flag("--quiet,-q", s->quiet, "No progress output");
    return {cmd, [s] { return run_train(*s); }};
}

}  // namespace nst_run
