#include "loaders/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nnjit/error.hpp"

namespace nnjit::loaders {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw_invalid("cannot open '" + path + "': " + why);
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  if (path.find('\0') != std::string::npos) fail(path, "the path contains a NUL byte");
  // O_NONBLOCK: opening a FIFO named by a hostile model must not hang the loader; a
  // FIFO is then refused as not a regular file.
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (f.fd < 0) fail(path, std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");

  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<std::size_t>(st.st_size);
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  m->reserved_ = (m->size_ + kReadPastEnd + page - 1) / page * page;

  // Reserve zero pages for file + padding, then lay the file over the front: reading
  // past end-of-file then hits zeros instead of SIGBUS.
  void* base = ::mmap(nullptr, m->reserved_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) fail(path, std::string("cannot reserve address space: ") + std::strerror(errno));
  m->base_ = base;  // from here the destructor unmaps
  if (m->size_ > 0) {
    void* p = ::mmap(base, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, f.fd, 0);
    if (p == MAP_FAILED) fail(path, std::string("mmap failed: ") + std::strerror(errno));
  }
  return m;
}

MappedFile::~MappedFile() {
  if (base_) ::munmap(base_, reserved_);
}

}  // namespace nnjit::loaders
