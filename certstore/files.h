// Durable file writes for TLS secrets.
//
// Thread: blocking disk I/O: control loop or thread pool only, never a worker.
#pragma once

#include <string>

#include "base/result.h"

namespace tlsedge::certstore {

// Writes `data` to `path` atomically: a temporary file in the same
// directory, fsync, rename over `path`, fsync the directory. A crash at any
// point leaves the old file or the new one, never a torn one. `mode` applies
// from creation (0600 for private keys: never briefly world-readable).
// Creates missing parent directories (mode 0700). `create` true: link(2)
// instead of rename, so an existing `path` is kept and the write fails with
// ErrorKind::kConflict (two writers creating one file: one wins).
Status writeFileAtomic(const std::string& path, const std::string& data, unsigned mode,
                       bool create = false);

// Creates `path`, which must not exist (ErrorKind::kConflict when it
// does), holding `data`, with `mode` from creation; `sync`: fsynced before
// it is closed. On an error nothing is left at `path`. Not atomic by
// itself: for the files of a directory that a rename then publishes whole
// (FileStorage's groups), and for writeFileAtomic's temporary.
Status writeNewFile(const std::string& path, const std::string& data, unsigned mode, bool sync);

// syncfs(2) on the filesystem that holds `path`: everything written there so
// far is durable (one call where a batch would fsync file after file).
Status syncFilesystem(const std::string& path);

// fsyncs a directory: a rename in it is durable only once its entry is on disk.
Status syncDirectory(const std::string& dir);

// Reads a whole file; the error names the path and errno text.
Result<std::string> readFile(const std::string& path);

}  // namespace tlsedge::certstore
