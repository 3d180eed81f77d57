// A topic's consumer-group files as they travel with its log to the
// mirrors (cluster/README.md, "Consumer groups across a failover"): the
// leader sends every group's .offsets file (io/src/group_offsets.h) when
// one changes, the mirror keeps exactly that set in its copy's groups/, and
// a mirror that takes the lead restores the groups from there as a broker
// restart would (GroupKeeper::restore).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "flusher.h"
#include "ringbus/result.h"

namespace ringbus::cluster {

// Leader side. The group files in `dir` (a topic's groups/), if the set or
// any file changed since `signature` (which it updates; nullopt: nothing
// sent yet, so the set is sent even if empty): names, inodes, times and
// sizes, so a file the keeper replaced counts as changed. Files that fail
// their checks are logged and left out; a missing directory is an empty
// set. nullopt: nothing changed.
std::optional<std::vector<std::vector<std::byte>>> changed_group_files(const std::string& dir,
                                                                       std::optional<std::string>& signature,
                                                                       const io::LogFn& log);

// Mirror side. Makes `dir` hold exactly these group files: each checked
// (Errc::corrupt naming `from` and the fault: nothing is written then),
// written durably where it differs, and the files of groups not among
// them removed.
Status keep_group_files(const std::string& dir, std::span<const std::span<const std::byte>> files,
                        const std::string& from);

}  // namespace ringbus::cluster
