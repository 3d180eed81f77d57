#include "metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <fmt/core.h>

#include "ringbus/group.h"
#include "segment_files.h"

namespace ringbus::daemon {

namespace fs = std::filesystem;

namespace {

std::uint64_t segment_bytes(const std::string& dir) {
  std::uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == log::kLogExt) n += e.file_size(ec);
  }
  return n;
}

// A label value: backslash, quote and newline escaped (the text format).
std::string label(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Metrics::Metrics(Broker& broker, std::string data_dir) : broker_(broker), data_dir_(std::move(data_dir)) {}

void Metrics::sample(std::int64_t now_ns) {
  std::vector<PartitionSample> next;
  auto topics = broker_.list_topics();
  if (topics) {
    for (const std::string& t : topics.value()) {
      auto info = broker_.describe_topic(t);
      if (!info) continue;  // deleted meanwhile
      for (const PartitionInfo& p : info->partition_info) {
        PartitionSample s;
        s.topic = t;
        s.info = p;
        if (p.has_log) s.retained_bytes = segment_bytes(log::partition_log_directory(data_dir_ + "/" + t, p.partition));
        next.push_back(std::move(s));
      }
    }
  }
  std::vector<GroupSample> groups;
  for (const std::string& t : topics ? topics.value() : std::vector<std::string>{}) {
    auto names = list_groups(broker_.instance(), t);
    for (const std::string& g : names ? names.value() : std::vector<std::string>{}) {
      auto info = describe_group(broker_.instance(), t, g);
      if (!info) continue;
      for (const GroupPartitionInfo& p : info->partitions) {
        if (!p.has_committed) continue;
        groups.push_back(GroupSample{t, g, to_string(info->settings.mode), p.partition, p.committed, p.lag, 0});
      }
    }
  }
  const ScrubStats scrub = broker_.scrub_stats();
  std::lock_guard lock(mu_);
  scrub_ = scrub;
  const double seconds = sampled_ns_ == 0 ? 0 : static_cast<double>(now_ns - sampled_ns_) / 1e9;
  std::map<std::pair<std::string, std::uint32_t>, std::uint64_t> committed;
  for (GroupSample& g : groups) {
    const auto key = std::make_pair(g.topic + "/" + g.group, g.partition);
    if (auto it = previous_committed_.find(key); it != previous_committed_.end() && seconds > 0 && g.committed >= it->second) {
      g.records_out_per_second = static_cast<double>(g.committed - it->second) / seconds;
    }
    committed[key] = g.committed;
  }
  previous_committed_ = std::move(committed);
  groups_ = std::move(groups);
  std::map<std::pair<std::string, std::uint32_t>, std::uint64_t> ends;
  for (PartitionSample& s : next) {
    const auto key = std::make_pair(s.topic, s.info.partition);
    if (auto it = previous_.find(key); it != previous_.end() && seconds > 0 && s.info.end_offset >= it->second) {
      s.records_in_per_second = static_cast<double>(s.info.end_offset - it->second) / seconds;
    }
    ends[key] = s.info.end_offset;
  }
  previous_ = std::move(ends);
  samples_ = std::move(next);
  if (node_ != nullptr) {
    roles_ = node_->roles();
    link_faults_ = node_->link_faults();
  }
  sampled_ns_ = now_ns;
}

std::string Metrics::prometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  const auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    for (const PartitionSample& s : samples_) {
      out += fmt::format("{}{{topic=\"{}\",partition=\"{}\"}} {}\n", name, label(s.topic), s.info.partition, value(s));
    }
  };
  family("ringbus_partition_end_offset", "gauge", "Next offset to be published.",
         [](const PartitionSample& s) { return s.info.end_offset; });
  family("ringbus_partition_written_offset", "gauge", "Offsets below this are written to the commit log.",
         [](const PartitionSample& s) { return s.info.written_offset; });
  family("ringbus_partition_durable_offset", "gauge", "Offsets below this are durable by the topic's policy.",
         [](const PartitionSample& s) { return s.info.durable_offset; });
  family("ringbus_partition_log_start_offset", "gauge", "Earliest offset kept in the commit log.",
         [](const PartitionSample& s) { return s.info.log_start_offset; });
  family("ringbus_partition_retained_bytes", "gauge", "Bytes of the partition's segment files.",
         [](const PartitionSample& s) { return s.retained_bytes; });
  family("ringbus_partition_records_in_per_second", "gauge", "Records published per second over the last sample.",
         [](const PartitionSample& s) { return s.records_in_per_second; });
  family("ringbus_partition_log_error", "gauge", "errno the partition's flusher is stuck on (0: none).",
         [](const PartitionSample& s) { return s.info.log_error; });
  family("ringbus_partition_offline", "gauge",
         "1 if the partition's commit log could not be opened (the broker's log says why and what to do).",
         [](const PartitionSample& s) { return s.info.offline ? 1 : 0; });
  family("ringbus_partition_damaged_segments", "gauge",
         "Sealed segments the scrubber found damaged (the broker's log names them).",
         [](const PartitionSample& s) { return s.info.damaged_segments; });
  const auto group_family = [&](const char* name, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
    for (const GroupSample& g : groups_) {
      out += fmt::format("{}{{topic=\"{}\",group=\"{}\",mode=\"{}\",partition=\"{}\"}} {}\n", name, label(g.topic),
                         label(g.group), g.mode, g.partition, value(g));
    }
  };
  group_family("ringbus_group_committed_offset", "Next offset the consumer group reads (queue: all below acknowledged).",
               [](const GroupSample& g) { return g.committed; });
  group_family("ringbus_group_lag", "End offset minus the group's committed offset.", [](const GroupSample& g) { return g.lag; });
  group_family("ringbus_group_records_out_per_second", "Records the group consumed per second over the last sample.",
               [](const GroupSample& g) { return g.records_out_per_second; });
  if (node_ != nullptr) {
    const auto topic_family = [&](const char* name, const char* help, auto value) {
      out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
      for (const cluster::TopicRole& r : roles_) out += fmt::format("{}{{topic=\"{}\"}} {}\n", name, label(r.topic), value(r));
    };
    topic_family("ringbus_cluster_leading", "1 if this node leads the topic, 0 if it mirrors it.",
                 [](const cluster::TopicRole& r) { return r.leading ? 1 : 0; });
    topic_family("ringbus_cluster_leader_epoch", "The leader epoch this node leads or last followed the topic in (-1: none yet).",
                 [](const cluster::TopicRole& r) { return r.epoch; });
    topic_family("ringbus_cluster_in_sync_replicas", "In-sync replicas of the topic, the leader counted (as etcd holds them).",
                 [](const cluster::TopicRole& r) { return r.isr.size(); });
    out += "# HELP ringbus_replica_high_watermark Offsets below this are durable on every in-sync replica (led here).\n"
           "# TYPE ringbus_replica_high_watermark gauge\n";
    for (const cluster::TopicRole& r : roles_) {
      for (std::size_t p = 0; p < r.partitions.size(); ++p) {
        out += fmt::format("ringbus_replica_high_watermark{{topic=\"{}\",partition=\"{}\"}} {}\n", label(r.topic), p,
                           r.partitions[p].high_watermark);
      }
    }
    const auto mirror_family = [&](const char* name, const char* help, auto value) {
      out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
      for (const cluster::TopicRole& r : roles_) {
        for (std::size_t p = 0; p < r.partitions.size(); ++p) {
          for (const auto& m : r.partitions[p].mirrors) {
            out += fmt::format("{}{{topic=\"{}\",partition=\"{}\",mirror=\"{}\"}} {}\n", name, label(r.topic), p,
                               label(m.node), value(r, r.partitions[p], m));
          }
        }
      }
    };
    mirror_family("ringbus_replica_lag_offsets", "The leader's log end minus what the mirror has written (led here).",
                  [](const cluster::TopicRole&, const cluster::TopicRole::Partition& p, const auto& m) {
                    return p.end > m.written ? p.end - m.written : 0;
                  });
    mirror_family("ringbus_replica_lag_bytes",
                  "Bytes of the leader's log the mirror has not written (led here; estimated for a mirror behind "
                  "since before this node led).",
                  [](const cluster::TopicRole&, const cluster::TopicRole::Partition&, const auto& m) { return m.lag_bytes; });
    mirror_family("ringbus_replica_in_sync", "1 if the mirror is in the topic's in-sync set (led here).",
                  [](const cluster::TopicRole& r, const cluster::TopicRole::Partition&, const auto& m) {
                    return std::find(r.isr.begin(), r.isr.end(), m.node) != r.isr.end() ? 1 : 0;
                  });
  }
  const auto counter = [&](const char* name, const char* help, std::uint64_t value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, value);
  };
  counter("ringbus_scrub_passes_total", "Passes of the scrubber over every sealed segment.", scrub_.passes);
  counter("ringbus_scrub_segments_total", "Sealed segments the scrubber checked.", scrub_.segments_checked);
  counter("ringbus_scrub_bytes_total", "Bytes the scrubber read back and checked.", scrub_.bytes_checked);
  counter("ringbus_broker_errors_total", "Errors the broker logged (disk, flusher, retention).",
          errors_.load(std::memory_order_relaxed));
  if (node_ != nullptr) {
    counter("ringbus_cluster_link_faults_total",
            "Faults of this node's replication links (refused, cut, timed out, a peer speaking garbage).", link_faults_);
  }
  return out;
}

nlohmann::json Metrics::json() const {
  std::lock_guard lock(mu_);
  nlohmann::json parts = nlohmann::json::array();
  for (const PartitionSample& s : samples_) {
    parts.push_back({{"topic", s.topic},
                     {"partition", s.info.partition},
                     {"end_offset", s.info.end_offset},
                     {"written_offset", s.info.written_offset},
                     {"durable_offset", s.info.durable_offset},
                     {"log_start_offset", s.info.log_start_offset},
                     {"retained_bytes", s.retained_bytes},
                     {"records_in_per_second", s.records_in_per_second},
                     {"log_error", s.info.log_error},
                     {"offline", s.info.offline},
                     {"damaged_segments", s.info.damaged_segments}});
  }
  nlohmann::json groups = nlohmann::json::array();
  for (const GroupSample& g : groups_) {
    groups.push_back({{"topic", g.topic},
                      {"group", g.group},
                      {"mode", g.mode},
                      {"partition", g.partition},
                      {"committed", g.committed},
                      {"lag", g.lag},
                      {"records_out_per_second", g.records_out_per_second}});
  }
  const nlohmann::json scrub{{"passes", scrub_.passes},
                             {"segments_checked", scrub_.segments_checked},
                             {"bytes_checked", scrub_.bytes_checked},
                             {"damaged_segments", scrub_.damaged_segments}};
  return {{"partitions", std::move(parts)},
          {"groups", std::move(groups)},
          {"scrub", scrub},
          {"errors", errors_.load(std::memory_order_relaxed)}};
}

// ---------------------------------------------------------------------------

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::start(std::uint16_t port, const Metrics& metrics) {
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->metrics_ = &metrics;
  s->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return Error{Errc::io_error, std::string("metrics socket: ") + std::strerror(errno)};
  const int one = 1;
  ::setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(s->listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(s->listen_fd_, 16) != 0 ||
      ::getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return Error{Errc::io_error, "metrics: cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno) +
                                     " (set [metrics] port, or 0 for any free port)"};
  }
  s->port_ = ntohs(a.sin_port);
  if (::pipe2(s->wake_, O_CLOEXEC) != 0) return Error{Errc::io_error, std::string("pipe: ") + std::strerror(errno)};
  MetricsHttpServer* p = s.get();
  s->thread_ = std::thread([p] { p->run(); });
  return s;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (thread_.joinable()) {
    const char x = 1;
    (void)!::write(wake_[1], &x, 1);
    thread_.join();
  }
  for (const int fd : {listen_fd_, wake_[0], wake_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

void MetricsHttpServer::run() {
  for (;;) {
    pollfd fds[2] = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval tv{1, 0};  // a client that does not send its request in a second is dropped
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.find("\n\n") == std::string::npos &&
           request.size() < 16384) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      request.append(buf, static_cast<std::size_t>(n));
    }
    std::string status = "200 OK";
    std::string body;
    if (request.rfind("GET /metrics ", 0) == 0 || request.rfind("GET / ", 0) == 0) {
      body = metrics_->prometheus();
    } else if (request.rfind("GET ", 0) == 0) {
      status = "404 Not Found";
      body = "ringbusd serves /metrics\n";
    } else {
      status = "400 Bad Request";
      body = "ringbusd serves GET /metrics\n";
    }
    const std::string response = "HTTP/1.0 " + status +
                                 "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    std::string_view rest = response;
    while (!rest.empty()) {
      const ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(fd);
  }
}

}  // namespace ringbus::daemon
