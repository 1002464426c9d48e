// Einsum (opset 12): float32, float64, int32 and int64 operands of one type.
//
// The equation names each operand's dims with letters ("bij,bjk->bik"); "..." stands for
// dims broadcast numpy-style (right-aligned, size 1 stretches) across the operands that
// have it. A letter repeated within one operand takes its diagonal; a letter missing from
// the output is summed over. Without "->" (implicit form) the output is "..." (when any
// operand has one) followed by the letters that appear exactly once, in ASCII order.
// Spaces are ignored. Other than under "...", every occurrence of a letter must have the
// same size. With an explicit output lacking "...", the "..." dims must number 0 (as numpy).
//
// The reference is a plain loop over every assignment of the letters: output dims first,
// then the summed ones, each operand read through its own stride per loop axis (a
// repeated letter's strides add up, which walks the diagonal). Floats accumulate in
// double; integers wrap as numpy's do.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/elementwise.hpp"
#include "ops/gemm.hpp"
#include "ops/registry.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

namespace {

constexpr int kEllipsis = -1;  // the "..." in a parsed term; letters are their char codes

// The subscripts of the operands and of the output, as written.
struct EinsumEquation {
  std::vector<std::vector<int>> inputs;
  bool explicit_output = false;
  std::vector<int> output;
};

// One term ("bij", "...ii", ""): letters and at most one "...".
std::vector<int> parse_term(const std::string& term, const std::string& fail_prefix) {
  std::vector<int> labels;
  bool ellipsis = false;
  for (std::size_t i = 0; i < term.size(); ++i) {
    const char ch = term[i];
    if (ch == '.') {
      if (term.compare(i, 3, "...") != 0)
        throw_invalid(fail_prefix + "a '.' that is not part of '...' in '" + term + "'");
      if (ellipsis) throw_invalid(fail_prefix + "'...' twice in '" + term + "'");
      ellipsis = true;
      labels.push_back(kEllipsis);
      i += 2;
    } else if (std::isalpha(static_cast<unsigned char>(ch))) {
      labels.push_back(ch);
    } else {
      throw_invalid(fail_prefix + "unexpected character '" + std::string(1, ch) + "' in '" + term + "'");
    }
  }
  return labels;
}

EinsumEquation parse_equation(const std::string& equation, const std::string& where) {
  std::string eq;
  for (char ch : equation)
    if (ch != ' ') eq += ch;
  const std::string prefix = where + ": equation '" + equation + "': ";
  EinsumEquation e;
  std::string lhs = eq;
  if (const std::size_t arrow = eq.find("->"); arrow != std::string::npos) {
    lhs = eq.substr(0, arrow);
    e.explicit_output = true;
    e.output = parse_term(eq.substr(arrow + 2), prefix);  // a second "->" fails here on '-'
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = lhs.find(',', start);
    e.inputs.push_back(
        parse_term(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start), prefix));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return e;
}

std::string label_str(int label) { return label == kEllipsis ? "..." : std::string(1, static_cast<char>(label)); }
std::string term_str(const std::vector<int>& term) {
  std::string s;
  for (int l : term) s += label_str(l);
  return s;
}

// The loop Einsum runs: its axes are the output's dims, then the summed letters.
struct EinsumPlan {
  Shape loop;                                 // the size of each loop axis
  int out_rank = 0;                           // the first out_rank loop axes are the output's dims, in order
  std::vector<std::vector<int64_t>> strides;  // per operand, its element stride along each loop axis
  Shape output() const { return Shape(loop.begin(), loop.begin() + out_rank); }
};

// Checks the equation against the operands' shapes; InvalidInput names what does not fit.
EinsumPlan plan_einsum(const std::string& equation, const std::vector<Shape>& shapes, const std::string& where) {
  const EinsumEquation eq = parse_equation(equation, where);
  const std::string prefix = where + ": equation '" + equation + "': ";
  if (eq.inputs.size() != shapes.size())
    throw_invalid(prefix + "it names " + std::to_string(eq.inputs.size()) + " operands, the node has " +
                  std::to_string(shapes.size()) + " inputs");

  // Sizes: each letter's, and the broadcast shape of the "..." dims.
  std::map<int, int64_t> size;
  std::map<int, std::string> sized_by;  // the operand that gave each letter its size
  std::map<int, int> count;             // occurrences of each letter over all operands
  std::vector<int> first_seen;
  Shape ell;  // the "..." dims, broadcast
  bool any_ellipsis = false;
  for (std::size_t k = 0; k < shapes.size(); ++k) {
    const std::vector<int>& term = eq.inputs[k];
    const Shape& s = shapes[k];
    const bool has_ell = std::count(term.begin(), term.end(), kEllipsis) != 0;
    const int letters = static_cast<int>(term.size()) - (has_ell ? 1 : 0), r = static_cast<int>(s.size());
    const std::string operand =
        "operand " + std::to_string(k) + " ('" + term_str(term) + "', shape " + shape_str(s) + ")";
    if (has_ell ? r < letters : r != letters)
      throw_invalid(prefix + operand + " has rank " + std::to_string(r) + " but its subscripts name " +
                    (has_ell ? "at least " : "") + std::to_string(letters) + " dims");
    const int ell_rank = r - letters;
    int d = 0;
    for (int label : term) {
      if (label == kEllipsis) {
        any_ellipsis = true;
        const Shape mine(s.begin() + d, s.begin() + d + ell_rank);
        try {
          ell = broadcast_shapes(ell, mine);
        } catch (const Error&) {
          throw_invalid(prefix + "the '...' dims " + shape_str(mine) + " of " + operand + " do not broadcast with " +
                        shape_str(ell) + " of the operands before");
        }
        d += ell_rank;
        continue;
      }
      const int64_t dim = s[static_cast<std::size_t>(d++)];
      if (!count[label]++) {
        first_seen.push_back(label);
        size[label] = dim;
        sized_by[label] = operand;
      } else if (size[label] != dim) {
        throw_invalid(prefix + "subscript '" + label_str(label) + "' has size " + std::to_string(size[label]) + " in " +
                      sized_by[label] + " and " + std::to_string(dim) + " in " + operand);
      }
    }
  }

  // The output's labels.
  std::vector<int> out = eq.output;
  if (eq.explicit_output) {
    std::map<int, int> seen;
    for (int label : out) {
      if (seen[label]++) throw_invalid(prefix + "output subscript '" + label_str(label) + "' appears twice");
      if (label != kEllipsis && !count.count(label))
        throw_invalid(prefix + "output subscript '" + label_str(label) + "' names no operand dim");
    }
    if (!seen.count(kEllipsis) && !ell.empty())
      throw_invalid(prefix + "the operands' '...' stands for " + std::to_string(ell.size()) +
                    " dims, but the output has no '...' to put them in");
  } else {
    if (any_ellipsis) out.push_back(kEllipsis);
    std::vector<int> once;
    for (int label : first_seen)
      if (count[label] == 1) once.push_back(label);
    std::sort(once.begin(), once.end());
    out.insert(out.end(), once.begin(), once.end());
  }

  // Loop axes: the output's, then each summed letter.
  EinsumPlan p;
  std::map<int, int> axis_of;  // letter -> loop axis
  int ell_axis = 0;            // the first "..." loop axis
  for (int label : out) {
    if (label == kEllipsis) {
      ell_axis = static_cast<int>(p.loop.size());
      p.loop.insert(p.loop.end(), ell.begin(), ell.end());
    } else {
      axis_of[label] = static_cast<int>(p.loop.size());
      p.loop.push_back(size[label]);
    }
  }
  p.out_rank = static_cast<int>(p.loop.size());
  for (int label : first_seen)
    if (!axis_of.count(label)) {
      axis_of[label] = static_cast<int>(p.loop.size());
      p.loop.push_back(size[label]);
    }

  for (std::size_t k = 0; k < shapes.size(); ++k) {
    const Shape& s = shapes[k];
    const std::vector<int64_t> own = strides_of(s);
    std::vector<int64_t> st(p.loop.size(), 0);
    const int ell_rank = static_cast<int>(s.size() + 1 - eq.inputs[k].size());  // used only with a "..."
    int d = 0;
    for (int label : eq.inputs[k]) {
      if (label == kEllipsis) {
        // Right-aligned within the broadcast "..." dims; a size-1 dim repeats (stride 0).
        const int lead = static_cast<int>(ell.size()) - ell_rank;
        for (int j = 0; j < ell_rank; ++j, ++d)
          if (s[static_cast<std::size_t>(d)] != 1)
            st[static_cast<std::size_t>(ell_axis + lead + j)] = own[static_cast<std::size_t>(d)];
        continue;
      }
      st[static_cast<std::size_t>(axis_of[label])] += own[static_cast<std::size_t>(d)];
      ++d;
    }
    p.strides.push_back(std::move(st));
  }
  return p;
}

std::string equation_of(const Attributes& attrs, const std::string& where) {
  if (!attrs.has("equation")) throw_invalid(where + ": attribute 'equation' is required");
  return attrs.get_string("equation", "");
}

void infer_einsum(InferContext& c) {
  if (c.num_inputs() < 1) c.fail("needs at least one input");
  std::vector<Shape> shapes;
  for (int k = 0; k < c.num_inputs(); ++k) {
    if (k == 0)
      c.require_type(0, {DType::Float32, DType::Float64, DType::Int32, DType::Int64});
    else
      c.require_same_type(0, k);  // input() fails for an absent one
    shapes.push_back(c.shape(k));
  }
  const EinsumPlan p = plan_einsum(equation_of(c.attrs, c.where()), shapes, c.where());
  c.set_output(0, c.dtype(0), p.output());
}

template <class T>
void einsum_reference(const EinsumPlan& p, const std::vector<const Tensor*>& inputs, Tensor& y) {
  // Floats multiply and sum in double; integers in their own type, wrapping.
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
  const std::size_t n = inputs.size();
  std::vector<const T*> src;
  for (const Tensor* t : inputs) src.push_back(t->data<T>());
  const Shape out = p.output(), summed(p.loop.begin() + p.out_rank, p.loop.end());
  std::vector<std::vector<int64_t>> out_strides, sum_strides;
  for (const std::vector<int64_t>& st : p.strides) {
    out_strides.emplace_back(st.begin(), st.begin() + p.out_rank);
    sum_strides.emplace_back(st.begin() + p.out_rank, st.end());
  }
  T* dst = y.data<T>();
  for_each_broadcast(out, out_strides, [&](int64_t e, const std::vector<int64_t>& base) {
    Acc total = 0;
    for_each_broadcast(summed, sum_strides, [&](int64_t, const std::vector<int64_t>& off) {
      Acc product = 1;
      for (std::size_t k = 0; k < n; ++k) {
        const Acc v = src[k][base[k] + off[k]];
        if constexpr (std::is_floating_point_v<T>)
          product *= v;
        else
          product = ew::wrap_mul(product, v);
      }
      if constexpr (std::is_floating_point_v<T>)
        total += product;
      else
        total = ew::wrap_add(total, product);
    });
    dst[e] = static_cast<T>(total);
  });
}

// Two float32 operands whose every summed letter both read (no sum over one operand
// alone): a batched matrix product, as attention writes it ("bhid,bhjd->bhij"). The
// operands are gathered into [batch][M][K] and [batch][K][N], multiplied by
// gemm_reference (float sums, as MatMul's) and scattered into the output. Returns false
// for any other equation, which the loop above then runs.
bool einsum_as_gemm(const EinsumPlan& p, const Tensor& a, const Tensor& b, Tensor& y) {
  if (a.dtype() != DType::Float32) return false;
  // Loop axes by role: batch (both operands or neither), M (A alone), N (B alone) — of
  // the output — and K (summed, both operands).
  std::vector<int> batch, m, n, k;
  for (int i = 0; i < static_cast<int>(p.loop.size()); ++i) {
    const bool in_a = p.strides[0][static_cast<std::size_t>(i)] != 0, in_b = p.strides[1][static_cast<std::size_t>(i)] != 0;
    if (i < p.out_rank) (in_a == in_b ? batch : in_a ? m : n).push_back(i);
    else if (in_a && in_b) k.push_back(i);
    else if (p.loop[static_cast<std::size_t>(i)] != 1) return false;
  }
  const std::vector<int64_t> out_strides = strides_of(p.output());
  auto walk = [&](std::initializer_list<const std::vector<int>*> groups, const std::vector<int64_t>& strides,
                  auto&& f) {  // f(flat index over the groups' axes, offset by `strides`)
    Shape shape;
    std::vector<int64_t> st;
    for (const auto* g : groups)
      for (int i : *g) {
        shape.push_back(p.loop[static_cast<std::size_t>(i)]);
        st.push_back(strides[static_cast<std::size_t>(i)]);
      }
    for_each_broadcast(shape, {st}, [&](int64_t e, const std::vector<int64_t>& off) { f(e, off[0]); });
  };
  auto extent = [&](const std::vector<int>& axes) {
    int64_t n_ = 1;
    for (int i : axes) n_ *= p.loop[static_cast<std::size_t>(i)];
    return n_;
  };
  const int64_t batches = extent(batch), M = extent(m), N = extent(n), K = extent(k);
  std::vector<float> pa(static_cast<std::size_t>(batches * M * K)), pb(static_cast<std::size_t>(batches * K * N)),
      pc(static_cast<std::size_t>(batches * M * N));
  const float* sa = a.data<float>();
  const float* sb = b.data<float>();
  walk({&batch, &m, &k}, p.strides[0], [&](int64_t e, int64_t off) { pa[static_cast<std::size_t>(e)] = sa[off]; });
  walk({&batch, &k, &n}, p.strides[1], [&](int64_t e, int64_t off) { pb[static_cast<std::size_t>(e)] = sb[off]; });
  for (int64_t t = 0; t < batches; ++t)
    gemm_reference(false, false, M, N, K, 1.f, pa.data() + t * M * K, pb.data() + t * K * N, 0.f, pc.data() + t * M * N);
  std::vector<int64_t> to_out(p.loop.size(), 0);
  for (int i = 0; i < p.out_rank; ++i) to_out[static_cast<std::size_t>(i)] = out_strides[static_cast<std::size_t>(i)];
  float* dst = y.data<float>();
  walk({&batch, &m, &n}, to_out, [&](int64_t e, int64_t off) { dst[off] = pc[static_cast<std::size_t>(e)]; });
  return true;
}

void compute_einsum(const ComputeContext& c) {
  std::vector<Shape> shapes;
  std::vector<const Tensor*> inputs;
  for (std::size_t k = 0; k < c.inputs.size(); ++k) {
    inputs.push_back(&c.in(static_cast<int>(k)));
    shapes.push_back(inputs.back()->shape());
  }
  const EinsumPlan p = plan_einsum(equation_of(c.attrs, "Einsum"), shapes, "Einsum");
  Tensor& y = c.out(0);
  if (inputs.size() == 2 && einsum_as_gemm(p, *inputs[0], *inputs[1], y)) return;
  ew::dispatch<float, double, int32_t, int64_t>(
      y.dtype(), [&](auto tag) { einsum_reference<typename decltype(tag)::type>(p, inputs, y); });
}

}  // namespace

void register_einsum_ops(std::vector<OpSchema>& out) {
  out.push_back({"Einsum", 12, infer_einsum, compute_einsum, nullptr});
}

}  // namespace nnjit::ops
