#include "certstore/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace tlsedge::certstore {
namespace {

Error sysError(const std::string& what, const std::string& path, int err) {
  return makeError(what + " " + path + ": " + std::strerror(err));
}

std::string parentOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// mkdir -p with mode 0700: state directories hold private keys.
Status makeParents(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Ok{};
    return sysError("cannot use", dir, ENOTDIR);
  }
  if (errno != ENOENT) return sysError("cannot stat", dir, errno);
  std::string parent = parentOf(dir);
  if (parent != dir) {
    if (Status made = makeParents(parent); !made.ok()) return made;
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return sysError("cannot create directory", dir, errno);
  }
  return Ok{};
}

// Unique per process and call; O_EXCL catches a leftover from a crashed run.
std::string tempNameFor(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  std::string dir = parentOf(path);
  std::string base = path.substr(path.find_last_of('/') + 1);
  return (dir == "/" ? "" : dir) + "/." + base + ".tmp-" + std::to_string(getpid()) + "-" +
         std::to_string(counter.fetch_add(1));
}

Status writeAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sysError("cannot write", path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return Ok{};
}

}  // namespace

Status writeNewFile(const std::string& path, const std::string& data, unsigned mode, bool sync) {
  // The final mode from creation on: a key is never briefly world-readable.
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) {
    const int err = errno;
    return makeError("cannot create " + path + ": " + std::strerror(err),
                     err == EEXIST ? ErrorKind::kConflict : ErrorKind::kFailed);
  }
  auto fail = [&](Error error) -> Status {
    if (fd >= 0) close(fd);
    unlink(path.c_str());
    return error;
  };
  // The umask may have removed bits the caller asked for (0644 under umask 077).
  if (fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    return fail(sysError("cannot chmod", path, errno));
  }
  if (Status written = writeAll(fd, data, path); !written.ok()) return fail(written.error());
  if (sync && fsync(fd) != 0) return fail(sysError("cannot fsync", path, errno));
  const int rc = close(fd);
  fd = -1;
  if (rc != 0) return fail(sysError("cannot close", path, errno));
  return Ok{};
}

Status syncFilesystem(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sysError("cannot open", path, errno);
  const int rc = syncfs(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return sysError("cannot syncfs", path, err);
  return Ok{};
}

Status syncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sysError("cannot open directory", dir, errno);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return sysError("cannot fsync directory", dir, err);
  return Ok{};
}

Status writeFileAtomic(const std::string& path, const std::string& data, unsigned mode,
                       bool create) {
  if (path.empty() || path.back() == '/')
    return makeError("cannot write '" + path + "': not a file path");
  const std::string dir = parentOf(path);
  if (Status made = makeParents(dir); !made.ok()) return made;

  std::string temp;
  Status written = makeError("", ErrorKind::kConflict);
  for (int attempt = 0; attempt < 100 && !written.ok(); ++attempt) {
    temp = tempNameFor(path);  // O_EXCL catches a leftover of a crashed run: next name
    written = writeNewFile(temp, data, mode, /*sync=*/true);
    if (!written.ok() && written.error().kind != ErrorKind::kConflict) return written;
  }
  if (!written.ok()) return sysError("cannot create", temp, EEXIST);
  auto fail = [&](Error error) -> Status {
    unlink(temp.c_str());
    return error;
  };
  if (create) {
    const int linked = link(temp.c_str(), path.c_str()) == 0 ? 0 : errno;
    unlink(temp.c_str());
    if (linked == EEXIST) return makeError(path + " exists", ErrorKind::kConflict);
    if (linked != 0) return sysError("cannot link into", path, linked);
  } else if (rename(temp.c_str(), path.c_str()) != 0) {
    return fail(sysError("cannot rename into", path, errno));
  }
  return syncDirectory(dir);
}

Result<std::string> readFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sysError("cannot open", path, errno);
  std::string out;
  struct stat st {};
  size_t expected = 0;  // the size fstat gives, when it does
  if (fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      close(fd);
      return sysError("cannot read", path, EISDIR);
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) expected = static_cast<size_t>(st.st_size);
  }
  // Read straight into the string. Asking for one byte more than the file
  // holds makes the usual case one read(): a regular file's short read is
  // its end (a store start reads 200k files).
  size_t have = 0;
  for (;;) {
    if (out.size() - have < 1) out.resize(std::max(expected + 1, out.size() * 2 + 4096));
    ssize_t n = read(fd, out.data() + have, out.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return sysError("cannot read", path, err);
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
    if (expected != 0 && have < out.size() && have >= expected) break;
  }
  close(fd);
  out.resize(have);
  return out;
}

}  // namespace tlsedge::certstore
