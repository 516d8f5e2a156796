#include "schedules/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace paci {

namespace {

// A path as given when it is plain printable text, else an escaped excerpt.
std::string show_path(const std::string& p) {
  bool plain = !p.empty() && p.size() <= 200;
  for (unsigned char c : p) plain = plain && c >= 0x20 && c < 0x7f && c != '"';
  return plain ? p : "\"" + excerpt(p, 200) + "\"";
}

std::string describe_type(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  return "not a regular file";
}

// Opens a regular file for reading without blocking (a FIFO would block open(2) and read(2)).
// On failure returns -1 and sets *why.
int open_regular(const std::string& path, int64_t* size, std::string* why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *why = std::strerror(errno);
    return -1;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    *why = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    *why = describe_type(st.st_mode) + ", not a regular file";
    ::close(fd);
    return -1;
  }
  *size = static_cast<int64_t>(st.st_size);
  return fd;
}

bool read_all(int fd, int64_t size, std::string* out) {
  out->resize(static_cast<size_t>(size));
  size_t done = 0;
  while (done < out->size()) {
    const ssize_t n = ::read(fd, out->data() + done, out->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;  // shrank while reading
    done += static_cast<size_t>(n);
  }
  out->resize(done);
  return true;
}

}  // namespace

std::string read_file(const std::string& path) {
  int64_t size = 0;
  std::string why;
  const int fd = open_regular(path, &size, &why);
  if (fd < 0) throw std::runtime_error(path + ": cannot open (" + why + ")");
  std::string text;
  const bool ok = read_all(fd, size, &text);
  ::close(fd);
  if (!ok) throw std::runtime_error(path + ": read error");
  return text;
}

int64_t check_regular_file(const std::string& path, const std::string& what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw InputError(what + " " + show_path(path) + ": cannot open (" + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode))
    throw InputError(what + " " + show_path(path) + ": is " + describe_type(st.st_mode) +
                     "; a regular file is required");
  return static_cast<int64_t>(st.st_size);
}

std::string read_input_file(const std::string& path, const std::string& what, int64_t max_bytes) {
  int64_t size = 0;
  std::string why;
  const int fd = open_regular(path, &size, &why);
  if (fd < 0) {
    if (why.find("not a regular file") != std::string::npos)
      throw InputError(what + " " + show_path(path) + ": is " + why.substr(0, why.find(',')) +
                       "; a regular file is required");
    throw InputError(what + " " + show_path(path) + ": cannot open (" + why + ")");
  }
  if (size > max_bytes) {
    ::close(fd);
    throw InputError(what + " " + show_path(path) + ": " + std::to_string(size) +
                     " bytes, more than the " + std::to_string(max_bytes >> 20) +
                     " MiB paci reads (a schedule, cost or calibration file is far smaller)");
  }
  std::string text;
  const bool ok = read_all(fd, size, &text);
  ::close(fd);
  if (!ok) throw InputError(what + " " + show_path(path) + ": read error");
  return text;
}

void check_output_writable(const std::string& path, const std::string& flag) {
  namespace fs = std::filesystem;
  const std::string shown = flag + " " + show_path(path);
  if (path.empty()) throw InputError(flag + ": empty path");
  std::error_code ec;
  const fs::path target(path);
  if (fs::is_directory(target, ec))
    throw InputError(shown + ": is a directory; give a file name");
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // The nearest existing ancestor must be a writable directory (missing ones are created later).
  fs::path probe_dir = dir;
  while (!probe_dir.empty() && !fs::exists(probe_dir, ec)) {
    if (probe_dir == probe_dir.parent_path()) break;
    probe_dir = probe_dir.parent_path();
  }
  if (probe_dir.empty()) probe_dir = ".";
  if (!fs::is_directory(probe_dir, ec))
    throw InputError(shown + ": cannot write there (" + probe_dir.string() + " is not a directory)");
  std::string tmpl = (probe_dir / ".paci-write-probe-XXXXXX").string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = mkstemp(name.data());
  if (fd < 0)
    throw InputError(shown + ": cannot write there (" + std::strerror(errno) + ")");
  ::close(fd);
  ::unlink(name.data());
  if (fs::exists(target, ec) && ::access(path.c_str(), W_OK) != 0 && errno != ENOENT)
    throw InputError(shown + ": cannot write there (" + std::strerror(errno) + ")");
}

std::string excerpt(std::string_view text, size_t max_chars) {
  std::string out;
  size_t shown = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (shown >= max_chars) {
      out += "... (" + std::to_string(text.size()) + " bytes)";
      return out;
    }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
    ++shown;
  }
  return out;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) {
      throw std::runtime_error(target.parent_path().string() + ": cannot create directory (" +
                               ec.message() + ")");
    }
  }
  // mkstemp in the same directory: rename(2) is only atomic within one file system.
  std::string tmpl = path + ".tmp-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = mkstemp(name.data());
  if (fd < 0) {
    throw std::runtime_error(path + ": cannot create temporary file (" + std::strerror(errno) +
                             ")");
  }
  const std::string tmp_path(name.data());
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string reason = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp_path.c_str());
      throw std::runtime_error(path + ": write failed (" + reason + ")");
    }
    done += static_cast<size_t>(n);
  }
  // mkstemp creates 0600; data files are not secret, so use the usual 0644.
  ::fchmod(fd, 0644);
  const bool synced = ::fsync(fd) == 0;
  const int sync_errno = errno;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed) {
    const std::string reason = std::strerror(synced ? errno : sync_errno);
    ::unlink(tmp_path.c_str());
    throw std::runtime_error(path + ": write failed (" + reason + ")");
  }
  if (std::rename(tmp_path.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp_path.c_str());
    throw std::runtime_error(path + ": cannot rename temporary file into place (" + reason + ")");
  }
}

}  // namespace paci
