#include "group_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "group_offsets.h"
#include "small_files.h"

namespace ringbus::cluster {

namespace fs = std::filesystem;

namespace {

// The .offsets files in `dir`, by name (without the extension).
std::map<std::string, fs::path> group_paths(const std::string& dir) {
  std::map<std::string, fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const fs::path& p = e.path();
    if (e.is_regular_file(ec) && p.extension() == io::kGroupOffsetsExtension) out[p.stem().string()] = p;
  }
  return out;
}

}  // namespace

std::optional<std::vector<std::vector<std::byte>>> changed_group_files(const std::string& dir,
                                                                       std::optional<std::string>& signature,
                                                                       const io::LogFn& log) {
  const auto paths = group_paths(dir);
  std::string now;
  for (const auto& [name, path] : paths) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) continue;  // replaced or deleted meanwhile: the next look sees it
    now += name + ':' + std::to_string(st.st_ino) + ':' + std::to_string(st.st_mtim.tv_sec) + '.' +
           std::to_string(st.st_mtim.tv_nsec) + ':' + std::to_string(st.st_size) + '\n';
  }
  if (now == signature) return std::nullopt;
  signature = std::move(now);
  std::vector<std::vector<std::byte>> files;
  for (const auto& [name, path] : paths) {
    auto bytes = io::read_small_file(path.string());
    if (!bytes) {
      if (bytes.error().code != Errc::not_found) log("error", bytes.error().message + " (not sent to the mirrors)");
      continue;
    }
    auto group = io::decode_group_offsets(bytes.value(), path.string());
    if (!group) {
      log("error", group.error().message + " (not sent to the mirrors)");
      continue;
    }
    files.push_back(std::move(bytes.value()));
  }
  return files;
}

Status keep_group_files(const std::string& dir, std::span<const std::span<const std::byte>> files,
                        const std::string& from) {
  // Every file checked before any is written: a bad one changes nothing.
  std::map<std::string, std::span<const std::byte>> wanted;
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto group = io::decode_group_offsets(files[i], from + "'s group file " + std::to_string(i));
    if (!group) return group.error();
    wanted[group->name] = files[i];
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{Errc::io_error, "create " + dir + ": " + ec.message()};
  for (const auto& [name, bytes] : wanted) {
    const std::string file = name + io::kGroupOffsetsExtension;
    auto old = io::read_small_file(dir + "/" + file);
    if (old && std::ranges::equal(old.value(), bytes)) continue;
    if (auto s = io::replace_file_durably(dir, file, bytes); !s) return s;
  }
  for (const auto& [name, path] : group_paths(dir)) {
    if (wanted.contains(name)) continue;
    fs::remove(path, ec);
    if (ec) return Error{Errc::io_error, "remove " + path.string() + ": " + ec.message()};
  }
  return {};
}

}  // namespace ringbus::cluster
