#include "model/learner.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/bytes.h"
#include "log/crc32c.h"

namespace herald::model {
namespace {

constexpr char kMagic[4] = {'H', 'M', 'D', 'L'};
constexpr std::uint8_t kVersion = 1;

double Sigmoid(double x) {
  x = std::clamp(x, -35.0, 35.0);
  return 1.0 / (1.0 + std::exp(-x));
}

std::uint64_t Mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

void PutConfig(ByteWriter& w, const LearnerConfig& c) {
  w.String(c.kind);
  w.Varint(c.bits);
  for (double d : {c.alpha, c.beta, c.l1, c.l2, c.fm_step, c.fm_l2_w, c.fm_l2_v, c.fm_init}) w.Fixed<double>(d);
  w.Varint(c.factors);
}

bool GetConfig(ByteReader& r, LearnerConfig* c) {
  std::uint64_t bits = 0, factors = 0;
  bool ok = r.String(&c->kind) && r.Varint(&bits);
  for (double* d : {&c->alpha, &c->beta, &c->l1, &c->l2, &c->fm_step, &c->fm_l2_w, &c->fm_l2_v, &c->fm_init}) {
    ok = ok && r.Fixed(d);
  }
  ok = ok && r.Varint(&factors);
  c->bits = static_cast<unsigned>(bits);
  c->factors = static_cast<unsigned>(factors);
  return ok;
}

void PutFloats(ByteWriter& w, const std::vector<float>& v) {
  w.Varint(v.size());
  w.Raw(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
}

bool GetFloats(ByteReader& r, std::vector<float>* v, size_t want) {
  std::uint64_t n = 0;
  std::string_view raw;
  if (!r.Varint(&n) || n != want || !r.Raw(n * sizeof(float), &raw)) return false;
  v->resize(n);
  std::memcpy(v->data(), raw.data(), raw.size());
  return true;
}

// A snapshot: magic, version and config, then what `body` writes, then the CRC32C
// of everything before it (the frame DeserializeLearner checks).
template <typename Body>
std::string Snapshot(const LearnerConfig& c, Body body) {
  std::string out(kMagic, 4);
  ByteWriter w(&out);
  w.Byte(kVersion);
  PutConfig(w, c);
  body(w);
  w.Fixed<std::uint32_t>(eventlog::crc32c::Value(out));
  return out;
}

Status CheckConfig(const LearnerConfig& c) {
  if (c.kind != "lr" && c.kind != "fm") return Status::InvalidArgument("model kind must be lr or fm, not " + c.kind);
  if (c.bits < 4 || c.bits > 28) return Status::InvalidArgument("model bits must be between 4 and 28");
  if (c.kind == "fm" && (c.factors < 1 || c.factors > 64)) {
    return Status::InvalidArgument("fm factors must be between 1 and 64");
  }
  if (!(c.alpha > 0) || !(c.beta >= 0) || !(c.l1 >= 0) || !(c.l2 >= 0) || !(c.fm_step > 0)) {
    return Status::InvalidArgument("model step sizes must be positive and regularisation non-negative");
  }
  return Status::Ok();
}

// FTRL-Proximal logistic regression: per coordinate z and sqrt(n) (the root of
// the sum of squared gradients), and the weight they imply, kept up to date so
// that a prediction is a dot product. The bias is not L1-regularised.
class Ftrl final : public Learner {
 public:
  explicit Ftrl(const LearnerConfig& c)
      : c_(c), mask_((1u << c.bits) - 1), coord_(1u << c.bits) {}

  double Predict(Sample x) const override { return Sigmoid(Margin(x)); }

  double Update(Sample x, int label) override {
    const double p = Predict(x);
    const double g0 = p - label;
    Step(z0_, sn0_, w0_, g0, 0.0);
    for (const Feature& f : x) {
      Coord& k = coord_[f.index & mask_];
      Step(k.z, k.sn, k.w, g0 * f.value, c_.l1);
    }
    return p;
  }

  std::unique_ptr<Learner> Clone() const override { return std::make_unique<Ftrl>(*this); }
  const LearnerConfig& config() const override { return c_; }

  // The parameters are the weights w(z, n); moving w by delta moves z by
  // -delta times the step's denominator (exact where |z| > l1).
  Probe ProbeGradient(Sample x, int label) override {
    Probe p;
    const double g0 = Predict(x) - label;
    p.gradient.push_back(g0);
    for (const Feature& f : x) p.gradient.push_back(g0 * f.value);
    std::vector<std::uint32_t> idx;
    for (const Feature& f : x) idx.push_back(f.index & mask_);
    p.perturb = [this, idx](size_t i, double delta) {
      float& z = i == 0 ? z0_ : coord_[idx[i - 1]].z;
      const float sn = i == 0 ? sn0_ : coord_[idx[i - 1]].sn;
      float& w = i == 0 ? w0_ : coord_[idx[i - 1]].w;
      z = static_cast<float>(z - delta * ((c_.beta + sn) / c_.alpha + c_.l2));
      w = static_cast<float>(Weight(z, sn, i == 0 ? 0.0 : c_.l1));
    };
    return p;
  }

  std::string Serialize() const override {
    return Snapshot(c_, [&](ByteWriter& w) {
      w.Fixed<float>(z0_);
      w.Fixed<float>(sn0_);
      std::vector<float> z(coord_.size()), sn(coord_.size());
      for (size_t i = 0; i < coord_.size(); ++i) {
        z[i] = coord_[i].z;
        sn[i] = coord_[i].sn;
      }
      PutFloats(w, z);
      PutFloats(w, sn);
    });
  }

  bool Load(ByteReader& r) {
    std::vector<float> z, sn;
    if (!(r.Fixed(&z0_) && r.Fixed(&sn0_) && GetFloats(r, &z, 1u << c_.bits) && GetFloats(r, &sn, 1u << c_.bits))) {
      return false;
    }
    w0_ = static_cast<float>(Weight(z0_, sn0_, 0.0));
    for (size_t i = 0; i < z.size(); ++i) {
      if (!(sn[i] >= 0)) return false;
      coord_[i] = {z[i], sn[i], static_cast<float>(Weight(z[i], sn[i], c_.l1))};
    }
    return true;
  }

 private:
  // McMahan et al., algorithm 1, with sqrt(n) kept instead of n.
  double Weight(float z, float sn, double l1) const {
    if (std::fabs(z) <= l1) return 0.0;
    const double sign = z < 0 ? -1.0 : 1.0;
    return -(z - sign * l1) / ((c_.beta + sn) / c_.alpha + c_.l2);
  }
  double Margin(Sample x) const {
    double m = w0_;
    for (const Feature& f : x) m += coord_[f.index & mask_].w * f.value;
    return m;
  }
  void Step(float& z, float& sn, float& w, double g, double l1) {
    const double next = std::sqrt(static_cast<double>(sn) * sn + g * g);
    const double sigma = (next - sn) / c_.alpha;
    z = static_cast<float>(z + g - sigma * w);
    sn = static_cast<float>(next);
    w = static_cast<float>(Weight(z, sn, l1));
  }

  LearnerConfig c_;
  std::uint32_t mask_;
  struct Coord {
    float z = 0, sn = 0, w = 0;  // one coordinate's state in one cache line
  };
  float z0_ = 0, sn0_ = 0, w0_ = 0;
  std::vector<Coord> coord_;
};

// A second-order factorization machine with per-coordinate AdaGrad. Each
// coordinate's parameters sit together: w, its squared-gradient sum, then the k
// factors and their sums, so that a feature costs one or two cache lines.
class Fm final : public Learner {
 public:
  explicit Fm(const LearnerConfig& c)
      : c_(c), mask_((1u << c.bits) - 1), k_(c.factors), stride_(2 + 2 * c.factors),
        p_(static_cast<size_t>(1u << c.bits) * (2 + 2 * c.factors)) {
    // Deterministic small random factors, so that two runs learn the same model.
    for (size_t i = 0; i < (1u << c.bits); ++i) {
      float* v = V(static_cast<std::uint32_t>(i));
      for (unsigned q = 0; q < k_; ++q) {
        const double u = static_cast<double>(Mix64(i * 64 + q + 1) >> 11) / 9007199254740992.0;  // [0, 1)
        v[q] = static_cast<float>((u - 0.5) * 2 * c_.fm_init);
      }
    }
  }

  double Predict(Sample x) const override {
    float sum[64];
    return Sigmoid(Margin(x, sum));
  }

  double Update(Sample x, int label) override {
    float sum[64];
    const double p = Sigmoid(Margin(x, sum));
    const double g = p - label;
    Ada(w0_, gw0_, g);
    const float step = static_cast<float>(c_.fm_step), l2w = static_cast<float>(c_.fm_l2_w),
                l2 = static_cast<float>(c_.fm_l2_v);
    for (const Feature& f : x) {
      float* c = Coord(f.index & mask_);
      const float gx = static_cast<float>(g * f.value), xv = f.value;
      const float gw = gx + l2w * c[0];
      c[1] += gw * gw;
      c[0] -= step * gw / std::sqrt(c[1] + 1e-8f);
      float* v = c + 2;
      float* gv = c + 2 + k_;
      for (unsigned q = 0; q < k_; ++q) {  // float and no errno: the loop vectorises
        const float grad = gx * (sum[q] - v[q] * xv) + l2 * v[q];
        gv[q] += grad * grad;
        v[q] -= step * grad / std::sqrt(gv[q] + 1e-8f);
      }
    }
    return p;
  }

  std::unique_ptr<Learner> Clone() const override { return std::make_unique<Fm>(*this); }
  const LearnerConfig& config() const override { return c_; }

  // Parameters: w0, then per feature w_i and v_i1..v_ik (without regularisation).
  Probe ProbeGradient(Sample x, int label) override {
    float sum[64];
    const double g = Sigmoid(Margin(x, sum)) - label;
    Probe p;
    std::vector<float*> params{&w0_};
    p.gradient.push_back(g);
    for (const Feature& f : x) {
      float* c = Coord(f.index & mask_);
      params.push_back(&c[0]);
      p.gradient.push_back(g * f.value);
      float* v = c + 2;
      for (unsigned q = 0; q < k_; ++q) {
        params.push_back(&v[q]);
        p.gradient.push_back(g * f.value * (sum[q] - v[q] * f.value));
      }
    }
    p.perturb = [params](size_t i, double delta) { *params[i] = static_cast<float>(*params[i] + delta); };
    return p;
  }

  std::string Serialize() const override {
    return Snapshot(c_, [&](ByteWriter& w) {
      w.Fixed<float>(w0_);
      w.Fixed<float>(gw0_);
      PutFloats(w, p_);
    });
  }

  bool Load(ByteReader& r) { return r.Fixed(&w0_) && r.Fixed(&gw0_) && GetFloats(r, &p_, p_.size()); }

 private:
  float* Coord(std::uint32_t i) { return &p_[static_cast<size_t>(i) * stride_]; }
  const float* Coord(std::uint32_t i) const { return &p_[static_cast<size_t>(i) * stride_]; }
  float* V(std::uint32_t i) { return Coord(i) + 2; }

  // The margin, and per factor the sum of v_if x_i over the sample (sum[k_]).
  double Margin(Sample x, float* sum) const {
    double m = w0_;
    float squares = 0;
    for (unsigned q = 0; q < k_; ++q) sum[q] = 0;
    for (const Feature& f : x) {
      const float* c = Coord(f.index & mask_);
      m += c[0] * f.value;
      const float* v = c + 2;
      for (unsigned q = 0; q < k_; ++q) {
        const float vx = v[q] * f.value;
        sum[q] += vx;
        squares += vx * vx;
      }
    }
    float pair = 0;
    for (unsigned q = 0; q < k_; ++q) pair += sum[q] * sum[q];
    return m + 0.5 * (static_cast<double>(pair) - squares);
  }
  void Ada(float& p, float& g2, double g) {
    g2 = static_cast<float>(g2 + g * g);
    p = static_cast<float>(p - c_.fm_step * g / std::sqrt(g2 + 1e-8));
  }

  LearnerConfig c_;
  std::uint32_t mask_;
  unsigned k_;
  size_t stride_;
  float w0_ = 0, gw0_ = 0;
  std::vector<float> p_;
};

}  // namespace

Result<std::unique_ptr<Learner>> MakeLearner(const LearnerConfig& config) {
  HERALD_RETURN_IF_ERROR(CheckConfig(config));
  if (config.kind == "fm") return std::unique_ptr<Learner>(std::make_unique<Fm>(config));
  return std::unique_ptr<Learner>(std::make_unique<Ftrl>(config));
}

Result<std::unique_ptr<Learner>> DeserializeLearner(std::string_view bytes) {
  if (bytes.size() < 9 || std::memcmp(bytes.data(), kMagic, 4) != 0) {
    return Status::Corruption("model snapshot: not a herald model (bad magic)");
  }
  std::uint32_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - 4, 4);
  if (eventlog::crc32c::Value(bytes.substr(0, bytes.size() - 4)) != stored) {
    return Status::Corruption("model snapshot: checksum mismatch (truncated or damaged)");
  }
  ByteReader r(bytes.substr(4, bytes.size() - 8));
  std::uint8_t version = 0;
  if (!r.Byte(&version) || version != kVersion) {
    return Status::Corruption("model snapshot: unknown version " + std::to_string(version));
  }
  LearnerConfig c;
  if (!GetConfig(r, &c)) return Status::Corruption("model snapshot: malformed config");
  if (Status s = CheckConfig(c); !s.ok()) return Status::Corruption("model snapshot: " + s.message());
  if (c.kind == "fm") {
    auto fm = std::make_unique<Fm>(c);
    if (!fm->Load(r) || !r.done()) return Status::Corruption("model snapshot: malformed weights");
    return std::unique_ptr<Learner>(std::move(fm));
  }
  auto lr = std::make_unique<Ftrl>(c);
  if (!lr->Load(r) || !r.done()) return Status::Corruption("model snapshot: malformed weights");
  return std::unique_ptr<Learner>(std::move(lr));
}

std::uint32_t HashFeature(std::string_view name, unsigned bits) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<std::uint32_t>(Mix64(h) & ((1ull << bits) - 1));
}

}  // namespace herald::model
