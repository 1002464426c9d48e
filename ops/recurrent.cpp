// The recurrent ops: RNN, GRU and LSTM (opset 7 semantics, plus opset 14's layout).
//
// The three share one driver — shapes, direction, sequence_lens, layout, activations and
// the writing of Y / Y_h / Y_c — and differ only in their cell, the step that turns one
// input row x_t and the previous state into the next. Inputs, in ONNX order:
//
//   0 X [seq, batch, input]   1 W [dirs, gates*hidden, input]   2 R [dirs, gates*hidden, hidden]
//   3 B [dirs, 2*gates*hidden] (W's biases, then R's)            4 sequence_lens [batch]
//   5 initial_h [dirs, batch, hidden]   6 initial_c (LSTM)       7 P [dirs, 3*hidden] (LSTM)
//
// with layout=1 putting batch first in X, Y, Y_h, Y_c and the initial states. Rows of W,
// R and B are gate-major: gate g, unit j is row g*hidden + j, gates in ONNX order (GRU
// z,r,h; LSTM i,o,f,c; P i,o,f). Steps past a batch entry's sequence length leave Y zero,
// and Y_h / Y_c hold the state after its last step (the initial state for length 0).
//
// Element types: float32 and float64 (all float inputs of one type); sequence_lens int32
// or int64. The reference computes in double. Activations: Relu, Tanh, Sigmoid, Affine,
// LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus (case
// ignored); activation_alpha / activation_beta are consumed in order by the functions
// that take them, ONNX's defaults where the lists run out. Another name is Unsupported.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/elementwise.hpp"
#include "ops/registry.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

namespace {

// ---- Activations ----------------------------------------------------------------------

struct Activation {
  enum class Kind {
    Relu,
    Tanh,
    Sigmoid,
    Affine,
    LeakyRelu,
    ThresholdedRelu,
    ScaledTanh,
    HardSigmoid,
    Elu,
    Softsign,
    Softplus
  };
  Kind kind = Kind::Tanh;
  double alpha = 0, beta = 0;

  double operator()(double x) const {
    switch (kind) {
      case Kind::Relu:
        return x > 0 ? x : 0;
      case Kind::Tanh:
        return std::tanh(x);
      case Kind::Sigmoid:
        return 1 / (1 + std::exp(-x));
      case Kind::Affine:
        return alpha * x + beta;
      case Kind::LeakyRelu:
        return x >= 0 ? x : alpha * x;
      case Kind::ThresholdedRelu:
        return x > alpha ? x : 0;
      case Kind::ScaledTanh:
        return alpha * std::tanh(beta * x);
      case Kind::HardSigmoid:
        return std::clamp(alpha * x + beta, 0.0, 1.0);
      case Kind::Elu:
        return x >= 0 ? x : alpha * (std::exp(x) - 1);
      case Kind::Softsign:
        return x / (1 + std::abs(x));
      case Kind::Softplus:
        return std::log1p(std::exp(-std::abs(x))) + std::max(x, 0.0);
    }
    return x;
  }
};

// Each name, whether it takes alpha and beta, and their defaults (those of the ONNX ops
// of the same name; the experimental Affine and ScaledTanh had none: 1 and 0, 1 and 1).
struct ActivationSpec {
  const char* name;
  Activation::Kind kind;
  bool takes_alpha, takes_beta;
  double alpha, beta;
};
constexpr ActivationSpec kActivations[] = {
    {"relu", Activation::Kind::Relu, false, false, 0, 0},
    {"tanh", Activation::Kind::Tanh, false, false, 0, 0},
    {"sigmoid", Activation::Kind::Sigmoid, false, false, 0, 0},
    {"affine", Activation::Kind::Affine, true, true, 1, 0},
    {"leakyrelu", Activation::Kind::LeakyRelu, true, false, 0.01, 0},
    {"thresholdedrelu", Activation::Kind::ThresholdedRelu, true, false, 1, 0},
    {"scaledtanh", Activation::Kind::ScaledTanh, true, true, 1, 1},
    {"hardsigmoid", Activation::Kind::HardSigmoid, true, true, 0.2, 0.5},
    {"elu", Activation::Kind::Elu, true, false, 1, 0},
    {"softsign", Activation::Kind::Softsign, false, false, 0, 0},
    {"softplus", Activation::Kind::Softplus, false, false, 0, 0},
};

const ActivationSpec* find_activation(const std::string& name) {
  std::string lower = name;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const ActivationSpec& s : kActivations)
    if (lower == s.name) return &s;
  return nullptr;
}

// ---- The three ops: what differs besides the cell ---------------------------------------

struct Cell;
using CellFn = void (*)(const Cell&, const double* x, std::vector<double>& h, std::vector<double>& c);

struct RecurrentOp {
  const char* name;
  int gates;        // rows of W and R per hidden unit
  int activations;  // activation functions per direction
  const char* default_activations[3];
  int max_inputs, max_outputs;
  CellFn cell;
};

enum Input { kX, kW, kR, kB, kSeqLens, kInitialH, kInitialC, kP };

// ---- Attributes -------------------------------------------------------------------------

struct Config {
  int num_dir = 1;
  bool reverse_only = false;  // direction=reverse
  int64_t hidden = 0;
  bool batch_first = false;  // layout=1
  double clip = std::numeric_limits<double>::infinity();
  bool input_forget = false, linear_before_reset = false;
  std::vector<Activation> acts;  // op.activations per direction, forward first
};

// Reads and checks every attribute; `fail` and `unsupported` raise (they name the node).
template <class Fail, class Unsupported>
Config read_config(const Attributes& a, int opset, const RecurrentOp& op, Fail fail, Unsupported unsupported) {
  Config cfg;
  const std::string dir = a.get_string("direction", "forward");
  if (dir == "bidirectional")
    cfg.num_dir = 2;
  else if (dir == "reverse")
    cfg.reverse_only = true;
  else if (dir != "forward")
    fail("direction must be forward, reverse or bidirectional, got '" + dir + "'");

  if (!a.has("hidden_size")) fail("the hidden_size attribute is required");
  cfg.hidden = a.get_int("hidden_size", 0);
  // W and R must match it, so a value beyond any tensor's size is certainly wrong (and
  // would overflow the gate arithmetic).
  if (cfg.hidden <= 0 || cfg.hidden > (int64_t{1} << 32))
    fail("hidden_size must be in [1, 2^32], got " + std::to_string(cfg.hidden));

  auto flag = [&](const char* name) {
    const int64_t v = a.get_int(name, 0);
    if (v != 0 && v != 1) fail(std::string(name) + " must be 0 or 1, got " + std::to_string(v));
    return v != 0;
  };
  if (a.has("layout") && opset < 14)
    fail("the layout attribute needs opset 14, the model has " + std::to_string(opset));
  cfg.batch_first = flag("layout");
  if (std::string(op.name) == "LSTM") cfg.input_forget = flag("input_forget");
  if (std::string(op.name) == "GRU") cfg.linear_before_reset = flag("linear_before_reset");
  if (a.has("clip")) {
    const float clip = a.get_float("clip", 0);
    if (!(clip > 0)) fail("clip must be positive, got " + std::to_string(clip));
    cfg.clip = clip;
  }

  // One list for all directions; a bidirectional op given one direction's list uses it twice.
  std::vector<std::string> names = a.get_strings("activations");
  const auto per_dir = static_cast<std::size_t>(op.activations);
  if (names.empty()) names.assign(op.default_activations, op.default_activations + per_dir);
  if (cfg.num_dir == 2 && names.size() == per_dir) {
    const std::vector<std::string> one = names;
    names.insert(names.end(), one.begin(), one.end());
  }
  if (names.size() != per_dir * static_cast<std::size_t>(cfg.num_dir))
    fail("activations must list " + std::to_string(per_dir * static_cast<std::size_t>(cfg.num_dir)) + " functions (" +
         std::to_string(per_dir) + " per direction), got " + std::to_string(names.size()));
  const std::vector<float> alphas = a.get_floats("activation_alpha"), betas = a.get_floats("activation_beta");
  std::size_t next_alpha = 0, next_beta = 0;
  for (const std::string& n : names) {
    const ActivationSpec* s = find_activation(n);
    if (!s) unsupported("activation '" + n + "' is not supported");
    Activation act{s->kind, s->alpha, s->beta};
    if (s->takes_alpha && next_alpha < alphas.size()) act.alpha = alphas[next_alpha++];
    if (s->takes_beta && next_beta < betas.size()) act.beta = betas[next_beta++];
    cfg.acts.push_back(act);
  }
  return cfg;
}

// Unknown activation names, for the loader's list of problems.
void check_activations(const Attributes& a, const char* op, std::vector<std::string>& problems) {
  for (const std::string& n : a.get_strings("activations"))
    if (!find_activation(n)) problems.push_back(std::string(op) + " activation '" + n + "' is not supported");
}

// ---- Shape rule ---------------------------------------------------------------------------

void infer_recurrent(InferContext& c, const RecurrentOp& op) {
  c.require_inputs(3, op.max_inputs);
  if (c.num_outputs() > op.max_outputs)
    c.fail("has " + std::to_string(c.num_outputs()) + " outputs, at most " + std::to_string(op.max_outputs) +
           " allowed");
  const Config cfg = read_config(
      c.attrs, c.opset, op, [&](const std::string& m) { c.fail(m); }, [&](const std::string& m) { c.unsupported(m); });

  c.require_type(kX, {DType::Float32, DType::Float64});
  for (int i : {kW, kR, kB, kInitialH, kInitialC, kP})
    if (c.has_input(i)) c.require_same_type(kX, i);
  if (c.rank(kX) != 3) c.fail("X must have rank 3, got shape " + shape_str(c.shape(kX)));
  const Shape& x = c.shape(kX);
  const int64_t seq = x[cfg.batch_first ? 1 : 0], batch = x[cfg.batch_first ? 0 : 1], input = x[2];
  const int64_t dirs = cfg.num_dir, h = cfg.hidden, gh = op.gates * h;

  // Each input's expected shape, named in the message when it differs.
  auto expect = [&](int i, const char* what, const Shape& want, const std::string& dims) {
    if (c.has_input(i) && c.shape(i) != want)
      c.fail(std::string(what) + " must have shape " + shape_str(want) + " " + dims + ", got " + shape_str(c.shape(i)) +
             " (num_directions " + std::to_string(dirs) + ", hidden_size " + std::to_string(h) + ")");
  };
  const std::string rows = op.gates == 1 ? "hidden_size" : std::to_string(op.gates) + "*hidden_size";
  expect(kW, "W", {dirs, gh, input}, "[num_directions, " + rows + ", input_size]");
  expect(kR, "R", {dirs, gh, h}, "[num_directions, " + rows + ", hidden_size]");
  expect(kB, "B", {dirs, 2 * gh}, "[num_directions, 2*" + rows + "]");
  const Shape state = cfg.batch_first ? Shape{batch, dirs, h} : Shape{dirs, batch, h};
  const char* state_dims =
      cfg.batch_first ? "[batch, num_directions, hidden_size]" : "[num_directions, batch, hidden_size]";
  expect(kInitialH, "initial_h", state, state_dims);
  expect(kInitialC, "initial_c", state, state_dims);
  expect(kP, "P", {dirs, 3 * h}, "[num_directions, 3*hidden_size]");
  if (c.has_input(kSeqLens)) {
    if (c.dtype(kSeqLens) != DType::Int32 && c.dtype(kSeqLens) != DType::Int64)
      c.fail("sequence_lens must be int32 or int64, got " + dtype_name(c.dtype(kSeqLens)));
    if (c.shape(kSeqLens) != Shape{batch})
      c.fail("sequence_lens must have shape [batch] = " + shape_str({batch}) + ", got " + shape_str(c.shape(kSeqLens)));
  }

  c.set_output(0, c.dtype(kX), cfg.batch_first ? Shape{batch, seq, dirs, h} : Shape{seq, dirs, batch, h});
  for (int o = 1; o < op.max_outputs; ++o) c.set_output(o, c.dtype(kX), state);
}

// ---- The cells ----------------------------------------------------------------------------

// One direction's weights (all as double) and activations, and the gate arithmetic the
// cells share. Gate g of unit j reads row g*hidden + j of W, R and the biases.
struct Cell {
  int64_t hidden = 0, input = 0;
  const double *w = nullptr, *r = nullptr, *wb = nullptr, *rb = nullptr, *p = nullptr;
  const Activation* act = nullptr;  // this direction's functions (f, g, h)
  const Config* cfg = nullptr;

  // x W^T + Wb and h R^T + Rb for gate g, unit j.
  double xw(int g, int64_t j, const double* x) const {
    const int64_t row = g * hidden + j;
    double s = wb[row];
    for (int64_t i = 0; i < input; ++i) s += w[row * input + i] * x[i];
    return s;
  }
  double hr(int g, int64_t j, const double* h) const {
    const int64_t row = g * hidden + j;
    double s = rb[row];
    for (int64_t i = 0; i < hidden; ++i) s += r[row * hidden + i] * h[i];
    return s;
  }
  // Activation k applied to a gate's pre-activation, clipped first when clip is set.
  double gate(int k, double v) const { return act[k](std::clamp(v, -cfg->clip, cfg->clip)); }
};

// h = f(x Wi^T + h Ri^T + Wbi + Rbi)
void rnn_cell(const Cell& p, const double* x, std::vector<double>& h, std::vector<double>&) {
  std::vector<double> next(h.size());
  for (int64_t j = 0; j < p.hidden; ++j) next[j] = p.gate(0, p.xw(0, j, x) + p.hr(0, j, h.data()));
  h = std::move(next);
}

// z = f(.z), r = f(.r), h~ = g(x Wh^T + (r . h) Rh^T + Rbh + Wbh), or with
// linear_before_reset g(x Wh^T + r . (h Rh^T + Rbh) + Wbh); h = (1 - z) . h~ + z . h.
void gru_cell(const Cell& p, const double* x, std::vector<double>& h, std::vector<double>&) {
  const auto n = static_cast<std::size_t>(p.hidden);
  std::vector<double> z(n), r(n), rh(n), next(n);
  for (std::size_t j = 0; j < n; ++j) {
    z[j] = p.gate(0, p.xw(0, j, x) + p.hr(0, j, h.data()));
    r[j] = p.gate(0, p.xw(1, j, x) + p.hr(1, j, h.data()));
    rh[j] = r[j] * h[j];
  }
  for (std::size_t j = 0; j < n; ++j) {
    const double recurrent = p.cfg->linear_before_reset ? r[j] * p.hr(2, j, h.data()) : p.hr(2, j, rh.data());
    const double cand = p.gate(1, p.xw(2, j, x) + recurrent);
    next[j] = (1 - z[j]) * cand + z[j] * h[j];
  }
  h = std::move(next);
}

// i = f(.i + Pi . c), f = f(.f + Pf . c) (1 - i with input_forget), c~ = g(.c),
// c = f . c + i . c~, o = f(.o + Po . c), h = o . h(c). Gates i, o, f, c; P holds i, o, f.
void lstm_cell(const Cell& p, const double* x, std::vector<double>& h, std::vector<double>& c) {
  const auto n = static_cast<std::size_t>(p.hidden);
  std::vector<double> next_h(n), next_c(n);
  for (std::size_t j = 0; j < n; ++j) {
    const double i = p.gate(0, p.xw(0, j, x) + p.hr(0, j, h.data()) + p.p[j] * c[j]);
    const double f =
        p.cfg->input_forget ? 1 - i : p.gate(0, p.xw(2, j, x) + p.hr(2, j, h.data()) + p.p[2 * n + j] * c[j]);
    const double cand = p.gate(1, p.xw(3, j, x) + p.hr(3, j, h.data()));
    next_c[j] = f * c[j] + i * cand;
    const double o = p.gate(0, p.xw(1, j, x) + p.hr(1, j, h.data()) + p.p[n + j] * next_c[j]);
    next_h[j] = o * p.act[2](next_c[j]);
  }
  h = std::move(next_h);
  c = std::move(next_c);
}

// ---- The driver ---------------------------------------------------------------------------

// All elements as double (zeros of `n` elements for an absent optional input).
std::vector<double> doubles(const ComputeContext& c, int i, int64_t n) {
  std::vector<double> v(static_cast<std::size_t>(n), 0.0);
  if (c.has(i))
    for (int64_t e = 0; e < n; ++e) v[e] = number_at(c.in(i), e);
  return v;
}

// Output o, or nullptr where the node leaves it out.
Tensor* optional_output(const ComputeContext& c, int o) {
  return o < static_cast<int>(c.outputs.size()) ? c.outputs[static_cast<std::size_t>(o)] : nullptr;
}

void store(Tensor* t, const std::vector<double>& v) {
  if (!t) return;
  ew::dispatch<float, double>(t->dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* dst = t->data<T>();
    for (std::size_t e = 0; e < v.size(); ++e) dst[e] = static_cast<T>(v[e]);
  });
}

void compute_recurrent(const ComputeContext& c, const RecurrentOp& op) {
  const std::string name = op.name;
  const Config cfg = read_config(
      c.attrs, c.opset, op, [&](const std::string& m) { throw_invalid(name + ": " + m); },
      [&](const std::string& m) { throw_unsupported(name + ": " + m); });
  const Tensor& xt = c.in(kX);
  const int64_t seq = xt.dim(cfg.batch_first ? 1 : 0), batch = xt.dim(cfg.batch_first ? 0 : 1), input = xt.dim(2);
  const int64_t dirs = cfg.num_dir, h = cfg.hidden, gh = op.gates * h;

  std::vector<int64_t> lens(static_cast<std::size_t>(batch), seq);
  if (c.has(kSeqLens))
    for (int64_t b = 0; b < batch; ++b) {
      lens[b] = int_at(c.in(kSeqLens), b);
      if (lens[b] < 0 || lens[b] > seq)
        throw_invalid(name + ": sequence_lens[" + std::to_string(b) + "] = " + std::to_string(lens[b]) +
                      " is outside [0, " + std::to_string(seq) + "] (the sequence length of X)");
    }

  const std::vector<double> x = doubles(c, kX, seq * batch * input), w = doubles(c, kW, dirs * gh * input),
                            r = doubles(c, kR, dirs * gh * h), bias = doubles(c, kB, dirs * 2 * gh),
                            h0 = doubles(c, kInitialH, dirs * batch * h), c0 = doubles(c, kInitialC, dirs * batch * h),
                            peep = doubles(c, kP, dirs * 3 * h);
  // Flat offsets under either layout.
  auto x_at = [&](int64_t t, int64_t b) { return (cfg.batch_first ? b * seq + t : t * batch + b) * input; };
  auto y_at = [&](int64_t t, int64_t d, int64_t b) {
    return ((cfg.batch_first ? (b * seq + t) * dirs + d : (t * dirs + d) * batch + b)) * h;
  };
  auto state_at = [&](int64_t d, int64_t b) { return (cfg.batch_first ? b * dirs + d : d * batch + b) * h; };

  std::vector<double> y(static_cast<std::size_t>(seq * dirs * batch * h), 0.0);  // zero past each length
  std::vector<double> y_h(static_cast<std::size_t>(dirs * batch * h)), y_c(y_h.size());
  for (int64_t d = 0; d < dirs; ++d) {
    const bool reverse = cfg.reverse_only || d == 1;
    Cell cell;
    cell.hidden = h;
    cell.input = input;
    cell.w = w.data() + d * gh * input;
    cell.r = r.data() + d * gh * h;
    cell.wb = bias.data() + d * 2 * gh;
    cell.rb = cell.wb + gh;
    cell.p = peep.data() + d * 3 * h;
    cell.act = cfg.acts.data() + d * op.activations;
    cell.cfg = &cfg;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t s0 = state_at(d, b);
      std::vector<double> hs(h0.begin() + s0, h0.begin() + s0 + h), cs(c0.begin() + s0, c0.begin() + s0 + h);
      for (int64_t step = 0; step < lens[b]; ++step) {
        const int64_t t = reverse ? lens[b] - 1 - step : step;
        op.cell(cell, x.data() + x_at(t, b), hs, cs);
        std::copy(hs.begin(), hs.end(), y.begin() + y_at(t, d, b));
      }
      std::copy(hs.begin(), hs.end(), y_h.begin() + s0);
      std::copy(cs.begin(), cs.end(), y_c.begin() + s0);
    }
  }
  store(optional_output(c, 0), y);
  store(optional_output(c, 1), y_h);
  store(optional_output(c, 2), y_c);
}

constexpr RecurrentOp kRnn{"RNN", 1, 1, {"Tanh"}, 6, 2, rnn_cell};
constexpr RecurrentOp kGru{"GRU", 3, 2, {"Sigmoid", "Tanh"}, 6, 2, gru_cell};
constexpr RecurrentOp kLstm{"LSTM", 4, 3, {"Sigmoid", "Tanh", "Tanh"}, 8, 3, lstm_cell};

void infer_rnn(InferContext& c) { infer_recurrent(c, kRnn); }
void infer_gru(InferContext& c) { infer_recurrent(c, kGru); }
void infer_lstm(InferContext& c) { infer_recurrent(c, kLstm); }
void compute_rnn(const ComputeContext& c) { compute_recurrent(c, kRnn); }
void compute_gru(const ComputeContext& c) { compute_recurrent(c, kGru); }
void compute_lstm(const ComputeContext& c) { compute_recurrent(c, kLstm); }
void check_rnn(const Attributes& a, int, std::vector<std::string>& problems) { check_activations(a, "RNN", problems); }
void check_gru(const Attributes& a, int, std::vector<std::string>& problems) { check_activations(a, "GRU", problems); }
void check_lstm(const Attributes& a, int, std::vector<std::string>& problems) {
  check_activations(a, "LSTM", problems);
}

}  // namespace

void register_recurrent_ops(std::vector<OpSchema>& out) {
  out.push_back({"RNN", 7, infer_rnn, compute_rnn, check_rnn});
  out.push_back({"GRU", 7, infer_gru, compute_gru, check_gru});
  out.push_back({"LSTM", 7, infer_lstm, compute_lstm, check_lstm});
}

}  // namespace nnjit::ops
