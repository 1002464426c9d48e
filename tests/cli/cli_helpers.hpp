// Helpers for the CLI tests: run the nnjit binary without a shell, write small ONNX models
// and .npy files into a temp dir, and check a JSON line's keys.
//
//   TempDir dir;
//   write_file(dir / "m.onnx", relu_model("x", "y").SerializeAsString());
//   CliResult r = run_cli({"run", dir / "m.onnx"});
//   CHECK(r.exited); CHECK(r.status == 0);
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "onnx.pb.h"

extern char** environ;

namespace nnjit::testing::cli {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "nnjit_cli_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

struct CliResult {
  bool exited = false;  // a normal exit, not a signal
  int status = -1;      // the exit status when exited, else the signal number
  std::string out, err;
};

// Runs the nnjit binary with `args` (no shell), stdout and stderr captured through files
// so that neither pipe can fill and block. Kills it after `timeout_s`.
// `stdout_fd` >= 0 replaces the captured stdout (e.g. a pipe nobody reads).
inline CliResult run_cli(const std::vector<std::string>& args, int timeout_s = 120, int stdout_fd = -1) {
  static int counter = 0;
  const std::string base = (fs::temp_directory_path() / ("nnjit_cli_out_" + std::to_string(::getpid()) + "_" +
                                                         std::to_string(counter++)))
                               .string();
  const std::string out_path = base + ".out", err_path = base + ".err";
  std::vector<std::string> argv_s = {NNJIT_CLI};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (stdout_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
  else
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // The child starts with default signal handling whatever the test runner ignores, so a
  // test of "no death by SIGPIPE" means something.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  CliResult r;
  if (rc != 0) {
    r.err = std::string("posix_spawn failed: ") + std::strerror(rc);
    return r;
  }
  int wstatus = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    pid_t w = ::waitpid(pid, &wstatus, WNOHANG);
    if (w == pid) break;
    if (w < 0) {
      r.err = "waitpid failed";
      return r;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &wstatus, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.exited = WIFEXITED(wstatus);
  r.status = r.exited ? WEXITSTATUS(wstatus) : (WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : -1);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  std::error_code ec;
  fs::remove(out_path, ec);
  fs::remove(err_path, ec);
  return r;
}

inline std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// ---- ONNX models ------------------------------------------------------------------------

inline onnx::ModelProto empty_model(int opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("nnjit-cli-test");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

inline void add_value_info(onnx::ValueInfoProto* vi, const std::string& name, int elem_type,
                           const std::vector<int64_t>& dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

inline void add_input(onnx::ModelProto& m, const std::string& name, const std::vector<int64_t>& dims,
                      int elem_type = onnx::TensorProto::FLOAT) {
  add_value_info(m.mutable_graph()->add_input(), name, elem_type, dims);
}

inline void add_output(onnx::ModelProto& m, const std::string& name, const std::vector<int64_t>& dims,
                       int elem_type = onnx::TensorProto::FLOAT) {
  add_value_info(m.mutable_graph()->add_output(), name, elem_type, dims);
}

inline onnx::NodeProto* add_node(onnx::ModelProto& m, const std::string& op, const std::vector<std::string>& in,
                                 const std::vector<std::string>& out, const std::string& name = "") {
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  if (!name.empty()) n->set_name(name);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return n;
}

// x [2,3] -> Relu -> y [2,3]
inline onnx::ModelProto relu_model(const std::string& x, const std::string& y, std::vector<int64_t> dims = {2, 3}) {
  onnx::ModelProto m = empty_model();
  add_input(m, x, dims);
  add_node(m, "Relu", {x}, {y}, "relu0");
  add_output(m, y, dims);
  return m;
}

// x [n] + W [n] -> y, W an initializer of `n` floats 0, 1, 2, ...
inline onnx::ModelProto add_const_model(int64_t n) {
  onnx::ModelProto m = empty_model();
  add_input(m, "x", {n});
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("W");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(n);
  std::string raw(static_cast<std::size_t>(n) * 4, '\0');
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(i);
    std::memcpy(raw.data() + i * 4, &v, 4);
  }
  w->set_raw_data(raw);
  add_node(m, "Add", {"x", "W"}, {"y"}, "add0");
  add_output(m, "y", {n});
  return m;
}

// ---- .npy -------------------------------------------------------------------------------

// A version-1.0 .npy with the given descr ("<f4", "<i8"), shape and raw little-endian data.
inline std::string npy_bytes(const std::string& descr, const std::vector<int64_t>& shape, const std::string& data) {
  std::string shape_s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) shape_s += std::to_string(shape[i]) + (shape.size() == 1 ? "," : i + 1 < shape.size() ? ", " : "");
  shape_s += ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_s + ", }";
  const std::size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  const auto len = static_cast<uint16_t>(header.size());
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>(len >> 8);
  return out + header + data;
}

inline std::string float_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// ---- JSON -------------------------------------------------------------------------------

// A strict little JSON reader that only validates and records, for each key path
// ("load_ms.parse"), the kind of value found: 's' string, 'n' number, 'o' object,
// 'a' array, 'b' bool, 'z' null. ok() is false on any syntax error or trailing text.
class JsonKeys {
 public:
  explicit JsonKeys(const std::string& text) : s_(text) {
    ws();
    ok_ = value("") && (ws(), i_ == s_.size());
  }
  bool ok() const { return ok_; }
  const std::map<std::string, char>& kinds() const { return kinds_; }
  const std::map<std::string, std::string>& strings() const { return strings_; }
  // The number at `path` (throws std::out_of_range when there is none).
  double number(const std::string& path) const { return numbers_.at(path); }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool lit(const char* w) {
    std::size_t n = std::strlen(w);
    if (s_.compare(i_, n, w) != 0) return false;
    i_ += n;
    return true;
  }
  bool string(std::string& out) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (static_cast<unsigned char>(s_[i_]) < 0x20) return false;
      if (s_[i_] == '\\') {
        ++i_;
        if (i_ >= s_.size()) return false;
        char c = s_[i_];
        if (c == 'u') {
          if (i_ + 4 >= s_.size()) return false;
          for (int k = 1; k <= 4; ++k)
            if (!std::isxdigit(static_cast<unsigned char>(s_[i_ + k]))) return false;
          i_ += 4;
          out += '?';
        } else if (std::strchr("\"\\/bfnrt", c)) {
          out += c;
        } else {
          return false;
        }
      } else {
        out += s_[i_];
      }
      ++i_;
    }
    if (i_ >= s_.size()) return false;
    ++i_;
    return true;
  }
  bool number() {
    std::size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    auto digits = [&] {
      std::size_t d = i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      return i_ > d;
    };
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digits()) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    return i_ > start;
  }
  bool value(const std::string& path) {
    ws();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '{') {
      kinds_[path] = 'o';
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
      while (true) {
        ws();
        std::string key;
        if (!string(key)) return false;
        ws();
        if (i_ >= s_.size() || s_[i_] != ':') return false;
        ++i_;
        std::string sub = path.empty() ? key : path + "." + key;
        if (kinds_.count(sub)) return false;  // duplicate key
        if (!value(sub)) return false;
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
        return false;
      }
    }
    if (c == '[') {
      kinds_[path] = 'a';
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
      for (int k = 0;; ++k) {
        if (!value(path + "[" + std::to_string(k) + "]")) return false;
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
        return false;
      }
    }
    if (c == '"') {
      std::string str;
      if (!string(str)) return false;
      kinds_[path] = 's';
      strings_[path] = str;
      return true;
    }
    if (lit("true") || lit("false")) return kinds_[path] = 'b', true;
    if (lit("null")) return kinds_[path] = 'z', true;
    kinds_[path] = 'n';
    const std::size_t start = i_;
    if (!number()) return false;
    numbers_[path] = std::strtod(s_.substr(start, i_ - start).c_str(), nullptr);
    return true;
  }

  std::string s_;
  std::size_t i_ = 0;
  bool ok_ = false;
  std::map<std::string, double> numbers_;
  std::map<std::string, char> kinds_;
  std::map<std::string, std::string> strings_;
};

}  // namespace nnjit::testing::cli
