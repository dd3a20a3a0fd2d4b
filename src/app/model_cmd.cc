#include "app/model_cmd.h"

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <random>

#include "core/clock.h"
#include "model/ctr_eval.h"
#include "model/learner.h"
#include "model/registry.h"
#include "model/send_time.h"
#include "model/train.h"

namespace herald::app {
namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int EvalCtr(const std::vector<std::string>& args) {
  std::string train, test, format, kind = "lr";
  unsigned bits = 0, epochs = 1;
  bool calibration = false;
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&] { return i + 1 < args.size() ? args[++i] : std::string(); };
    if (args[i] == "--train") train = val();
    else if (args[i] == "--test") test = val();
    else if (args[i] == "--format") format = val();
    else if (args[i] == "--model") kind = val();
    else if (args[i] == "--bits") bits = static_cast<unsigned>(std::stoul(val()));
    else if (args[i] == "--epochs") epochs = static_cast<unsigned>(std::stoul(val()));
    else if (args[i] == "--calibration") calibration = true;
    else {
      std::fprintf(stderr,
                   "usage: herald model eval-ctr --train FILE --test FILE --format libfm|svmlight|csv\n"
                   "       [--model lr|fm] [--bits N] [--epochs N] [--calibration]\n"
                   "Trains on --train, prints one line auc=... logloss=... for --test;\n"
                   "--calibration adds predicted vs observed by decile on stderr.\n");
      return 2;
    }
  }
  if (train.empty() || test.empty() || format.empty()) {
    std::fprintf(stderr, "herald model eval-ctr: --train, --test and --format are required\n");
    return 2;
  }
  auto fmt = model::ParseDataFormat(format);
  if (!fmt.ok()) {
    std::fprintf(stderr, "herald model eval-ctr: %s\n", fmt.status().message().c_str());
    return 2;
  }
  model::LearnerConfig c;
  c.kind = kind;
  c.bits = bits ? bits : (kind == "fm" ? 20 : 22);
  auto learner = model::MakeLearner(c);
  if (!learner.ok()) {
    std::fprintf(stderr, "herald model eval-ctr: %s\n", learner.status().message().c_str());
    return 2;
  }
  std::vector<std::string> columns;
  auto t0 = std::chrono::steady_clock::now();
  auto tr = model::ReadDataset(train, *fmt, c.bits, &columns);
  if (!tr.ok()) {
    std::fprintf(stderr, "herald model eval-ctr: %s\n", tr.status().message().c_str());
    return 1;
  }
  auto te = model::ReadDataset(test, *fmt, c.bits, &columns);
  if (!te.ok()) {
    std::fprintf(stderr, "herald model eval-ctr: %s\n", te.status().message().c_str());
    return 1;
  }
  const double read_s = Since(t0);
  auto& m = **learner;
  t0 = std::chrono::steady_clock::now();
  for (unsigned e = 0; e < epochs; ++e) {
    for (size_t i = 0; i < tr->size(); ++i) m.Update(tr->at(i), tr->labels[i]);
  }
  const double train_s = Since(t0);
  t0 = std::chrono::steady_clock::now();
  std::vector<double> p(te->size());
  for (size_t i = 0; i < te->size(); ++i) p[i] = m.Predict(te->at(i));
  const double predict_s = Since(t0);
  model::Quality q = model::Measure(p, te->labels);
  std::printf("auc=%.4f logloss=%.4f model=%s train=%zu test=%zu positive_rate=%.4f mean_prediction=%.4f "
              "read_s=%.2f train_s=%.2f predict_s=%.2f\n",
              q.auc, q.logloss, kind.c_str(), tr->size(), te->size(), q.positive_rate, q.mean_prediction, read_s,
              train_s, predict_s);
  if (calibration) {
    for (int d = 0; d < 10; ++d) {
      std::fprintf(stderr, "decile %d: predicted %.4f observed %.4f (%llu samples)\n", d + 1, q.predicted[d],
                   q.observed[d], static_cast<unsigned long long>(q.count[d]));
    }
  }
  return 0;
}

}  // namespace

int EvalSendTimeCmd(const std::vector<std::string>& args) {
  std::string events;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--events" && i + 1 < args.size()) {
      events = args[++i];
    } else {
      std::fprintf(stderr,
                   "usage: herald model eval-sendtime --events FILE\n"
                   "FILE: CSV with the header user_id,ts,type[,tz]; ts unix seconds; type sent,\n"
                   "opened or active. Each user's last third of days is held out.\n");
      return 2;
    }
  }
  if (events.empty()) {
    std::fprintf(stderr, "herald model eval-sendtime: --events is required\n");
    return 2;
  }
  auto r = model::EvalSendTime(events);
  if (!r.ok()) {
    std::fprintf(stderr, "herald model eval-sendtime: %s\n", r.status().message().c_str());
    return 1;
  }
  std::fwrite(r->data(), 1, r->size(), stdout);
  return 0;
}

namespace {

struct RegistryArgs {
  std::string data_dir = "./data", name = "ctr";
  std::vector<std::string> rest;
};
RegistryArgs ParseRegistryArgs(const std::vector<std::string>& args) {
  RegistryArgs r;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data-dir" && i + 1 < args.size()) r.data_dir = args[++i];
    else if (args[i] == "--name" && i + 1 < args.size()) r.name = args[++i];
    else r.rest.push_back(args[i]);
  }
  return r;
}

int Registry(const std::string& verb, const std::vector<std::string>& args) {
  RegistryArgs ra = ParseRegistryArgs(args);
  SystemClock clock;
  auto reg = model::ModelRegistry::Open(ra.data_dir + "/models", ra.name, &clock);
  if (!reg.ok()) {
    std::fprintf(stderr, "herald model %s: %s\n", verb.c_str(), reg.status().message().c_str());
    return 1;
  }
  if (!(*reg)->open_warning().empty()) std::fprintf(stderr, "warning: %s\n", (*reg)->open_warning().c_str());
  Status s;
  if (verb == "promote") {
    if (ra.rest.size() != 1) {
      std::fprintf(stderr, "usage: herald model promote VERSION [--data-dir D] [--name ctr]\n");
      return 2;
    }
    s = (*reg)->Promote(static_cast<std::uint32_t>(std::strtoul(ra.rest[0].c_str(), nullptr, 10)));
  } else if (verb == "rollback") {
    s = (*reg)->Rollback();
  }
  if (!s.ok()) {
    std::fprintf(stderr, "herald model %s: %s\n", verb.c_str(), s.message().c_str());
    return 1;
  }
  const std::uint32_t current = (*reg)->current_version();
  for (const auto& v : (*reg)->List()) {
    std::printf("%s v%u kind=%s samples=%llu holdout_logloss=%.4f holdout_auc=%.4f\n", v.version == current ? "*" : " ",
                v.version, v.kind.c_str(), static_cast<unsigned long long>(v.samples), v.holdout_logloss,
                v.holdout_auc);
  }
  return 0;
}

}  // namespace

int TrainCommand(const std::vector<std::string>& args) {
  RegistryArgs ra = ParseRegistryArgs(args);
  std::string samples, format = "libfm", kind = "lr";
  for (size_t i = 0; i < ra.rest.size(); ++i) {
    auto val = [&] { return i + 1 < ra.rest.size() ? ra.rest[++i] : std::string(); };
    if (ra.rest[i] == "--samples") samples = val();
    else if (ra.rest[i] == "--format") format = val();
    else if (ra.rest[i] == "--model") kind = val();
    else {
      std::fprintf(stderr,
                   "usage: herald train --samples FILE [--format libfm|svmlight|csv|hashed] [--model lr|fm]\n"
                   "       [--data-dir D] [--name ctr]\n"
                   "Trains the next version from the model in service on FILE (the last 10%% held out)\n"
                   "and promotes it only if its holdout logloss is not worse.\n");
      return 2;
    }
  }
  if (samples.empty()) {
    std::fprintf(stderr, "herald train: --samples is required\n");
    return 2;
  }
  auto fmt = model::ParseDataFormat(format);
  if (!fmt.ok()) {
    std::fprintf(stderr, "herald train: %s\n", fmt.status().message().c_str());
    return 2;
  }
  SystemClock clock;
  auto reg = model::ModelRegistry::Open(ra.data_dir + "/models", ra.name, &clock);
  if (!reg.ok()) {
    std::fprintf(stderr, "herald train: %s\n", reg.status().message().c_str());
    return 1;
  }
  model::LearnerConfig c;
  c.kind = kind;
  c.bits = kind == "fm" ? 20 : 22;
  if (auto cur = (*reg)->Current()) c = cur->config();
  std::vector<std::string> columns;
  auto data = model::ReadDataset(samples, *fmt, c.bits, &columns);
  if (!data.ok()) {
    std::fprintf(stderr, "herald train: %s\n", data.status().message().c_str());
    return 1;
  }
  auto r = model::TrainIncremental(**reg, *data, c);
  if (!r.ok()) {
    std::fprintf(stderr, "herald train: %s\n", r.status().message().c_str());
    return 1;
  }
  std::printf("version=%u promoted=%s holdout_logloss=%.4f holdout_auc=%.4f previous_logloss=%.4f samples=%zu\n",
              r->version.version, r->promoted ? "yes" : "no", r->holdout.logloss, r->holdout.auc,
              r->previous_logloss, data->size());
  return 0;
}

int ModelCommand(const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "list" || args[0] == "promote" || args[0] == "rollback")) {
    return Registry(args[0], {args.begin() + 1, args.end()});
  }
  if (!args.empty() && args[0] == "eval-ctr") return EvalCtr({args.begin() + 1, args.end()});
  if (!args.empty() && args[0] == "eval-sendtime") return EvalSendTimeCmd({args.begin() + 1, args.end()});
  std::fprintf(stderr,
               "usage: herald model eval-ctr --train FILE --test FILE --format libfm|svmlight|csv [--model lr|fm]\n"
               "       herald model eval-sendtime --events FILE\n"
               "       herald model list|rollback|promote VERSION [--data-dir D] [--name ctr]\n");
  return 2;
}

int BenchModel(const std::vector<std::string>& args) {
  size_t fields = 39, samples = 200000;
  double seconds = 2;
  for (size_t i = 0; i < args.size(); ++i) {
    auto val = [&] { return i + 1 < args.size() ? args[++i] : std::string("0"); };
    if (args[i] == "--fields") fields = std::stoul(val());
    else if (args[i] == "--seconds") seconds = std::stod(val());
    else {
      std::fprintf(stderr, "usage: herald bench model [--fields N] [--seconds S]\n");
      return 2;
    }
  }
  std::printf("{");
  const char* sep = "";
  for (const char* kind : {"lr", "fm"}) {
    model::LearnerConfig c;
    c.kind = kind;
    c.bits = kind == std::string("fm") ? 20 : 22;
    auto m = model::MakeLearner(c).value();
    std::mt19937 rng(7);
    std::vector<model::Feature> data(samples * fields);
    std::vector<std::uint8_t> labels(samples);
    for (size_t s = 0; s < samples; ++s) {
      for (size_t f = 0; f < fields; ++f) {
        data[s * fields + f] = {model::HashFeature(std::to_string(f) + "=" + std::to_string(rng() % 1000), c.bits), 1};
      }
      labels[s] = rng() % 4 == 0;
    }
    auto run = [&](bool update) {
      std::uint64_t n = 0;
      double sink = 0;
      auto t0 = std::chrono::steady_clock::now();
      double el = 0;
      while (el < seconds) {
        for (size_t s = 0; s < samples; ++s) {
          model::Sample x(&data[s * fields], fields);
          sink += update ? m->Update(x, labels[s]) : m->Predict(x);
        }
        n += samples;
        el = Since(t0);
      }
      return static_cast<double>(n) / el + 0 * sink;
    };
    const double updates = run(true), predictions = run(false);
    std::printf("%s\"%s_predictions_per_s\":%.0f,\"%s_updates_per_s\":%.0f", sep, kind, predictions, kind, updates);
    sep = ",";
  }
  std::printf(",\"fields\":%zu}\n", fields);
  return 0;
}

}  // namespace herald::app
