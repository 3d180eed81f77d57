#include "replication_server.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "group_files.h"
#include "group_offsets.h"
#include "record_batch.h"

namespace ringbus::cluster {

namespace {

// A frame gathers batches up to this; a link holds at most kMaxQueued
// unsent bytes before its streams wait (a slow mirror's backlog stays on
// disk, not in memory).
constexpr std::size_t kFrameTarget = 1 << 20;
constexpr std::size_t kMaxQueued = 8 << 20;
// How often a stream at the end of the written log looks again.
constexpr int kTailPollMs = 1;
constexpr int kIdlePollMs = 100;
// How often a topic's group files are looked at (the broker's group keeper
// writes them every few milliseconds while groups commit).
constexpr auto kGroupsEvery = std::chrono::milliseconds(200);

}  // namespace

Result<std::unique_ptr<ReplicationServer>> ReplicationServer::start(ServerOptions options, LedPartitions& partitions) {
  auto listener = listen_on(options.listen);
  if (!listener) return listener.error();
  return std::unique_ptr<ReplicationServer>(new ReplicationServer(std::move(options), partitions, listener.value()));
}

ReplicationServer::ReplicationServer(ServerOptions options, LedPartitions& partitions, Listener listener)
    : options_(std::move(options)), partitions_(partitions), listener_(listener) {
  if (!options_.log) options_.log = [](const char*, const std::string&) {};
  thread_ = std::thread([this] { run(); });
}

ReplicationServer::~ReplicationServer() { stop(); }

void ReplicationServer::stop() {
  if (!thread_.joinable()) return;
  stop_.request();
  thread_.join();
  links_.clear();
  ::close(listener_.fd);
}

void ReplicationServer::log(const char* level, const std::string& message) const { options_.log(level, message); }

void ReplicationServer::run() {
  bool tailing = false;
  while (!stop_.requested()) {
    std::vector<pollfd> fds{{listener_.fd, POLLIN, 0}, {stop_.fd(), POLLIN, 0}, {news_.fd(), POLLIN, 0}};
    for (const auto& l : links_)
      fds.push_back({l->link->fd(), static_cast<short>(POLLIN | (l->link->queued() ? POLLOUT : 0)), 0});
    (void)::poll(fds.data(), fds.size(), tailing ? kTailPollMs : kIdlePollMs);
    if (fds[2].revents & POLLIN) news_.drain();
    if (fds[0].revents & POLLIN) accept_link_waiting();
    tailing = false;
    for (std::size_t i = 0; i < links_.size();) {
      Link& l = *links_[i];
      bool keep = serve(l);
      if (keep && l.link->quiet_for(options_.idle_timeout)) {
        log("warn", "heard nothing from " + l.link->peer() + " for " + std::to_string(options_.idle_timeout.count()) +
                        " ms: the link is closed");
        keep = false;
      }
      if (keep) {
        tailing |= feed(l);
        l.link->keep_alive(options_.idle_timeout / 4);
        if (auto w = l.link->write_some(); !w) {
          log("warn", w.error().message);
          keep = false;
        }
      }
      if (keep) {
        ++i;
      } else {
        links_.erase(links_.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }
}

void ReplicationServer::accept_link_waiting() {
  auto link = accept_link(listener_.fd);
  if (!link) {
    log("error", link.error().message);
    return;
  }
  if (!link.value()) return;
  // The handshake runs here, within its deadline: a peer that stalls it
  // holds the streams up that long. One per pass of the loop, so they are
  // served between handshakes.
  auto mirror = leader_handshake(*link.value(), options_.me, options_.handshake_timeout);
  if (!mirror) {
    log("error", mirror.error().message);
    return;
  }
  log("info", "mirror node '" + mirror.value() + "' connected from " + link.value()->peer());
  auto l = std::make_unique<Link>();
  l->link = std::move(link.value());
  l->mirror = mirror.value();
  links_.push_back(std::move(l));
}

bool ReplicationServer::serve(Link& l) {
  auto open = l.link->read_some();
  if (!open) {
    log("warn", open.error().message);
    return false;
  }
  for (;;) {
    auto m = l.link->next();
    if (!m) {
      log("error", m.error().message);
      l.link->refuse(wire::ErrorCode::protocol, m.error().message, options_.handshake_timeout);
      return false;
    }
    if (!m->has_value()) break;
    if (auto s = handle(l, **m); !s) {
      log("error", s.error().message);
      return false;
    }
  }
  if (!open.value()) {
    log("info", "mirror node '" + l.mirror + "' closed the link");
    return false;
  }
  return true;
}

Status ReplicationServer::handle(Link& l, const wire::Message& m) {
  auto bad = [&](const std::string& why) -> Status {
    l.link->refuse(wire::ErrorCode::protocol, why, options_.handshake_timeout);
    return Error{Errc::corrupt, "replication link from " + l.link->peer() + ": " + why};
  };
  auto stream_of = [&](std::uint32_t id) -> Stream* {
    const auto it = l.streams.find(id);
    return it == l.streams.end() ? nullptr : &it->second;
  };
  if (const auto* f = std::get_if<wire::Follow>(&m)) {
    auto found = partitions_.find(f->topic, f->topic_id, f->partition);
    if (!found.partition) {
      log("warn", "mirror node '" + l.mirror + "' asked for partition " + std::to_string(f->partition) +
                      " of topic '" + f->topic + "': " + found.why);
      l.link->send(wire::ErrorMsg{f->stream, found.code, found.why});
      return {};
    }
    Stream s;
    s.part = found.partition;
    s.where = "partition " + std::to_string(f->partition) + " of topic '" + f->topic + "' to node '" + l.mirror + "'";
    s.io = log::make_pwrite_io();
    s.reader = std::make_unique<log::LogReader>(*s.io, s.part->log_dir());
    if (f->partition == 0) {
      s.groups_dir = (std::filesystem::path(s.part->log_dir()).parent_path() / io::kGroupsDirName).string();
    }
    l.link->send(wire::Following{f->stream, s.part->leader_epoch(), s.part->log_start(), s.part->written(),
                                 s.part->high_watermark()});
    l.streams[f->stream] = std::move(s);
    return {};
  }
  if (const auto* q = std::get_if<wire::EpochQuery>(&m)) {
    Stream* s = stream_of(q->stream);
    if (!s) return bad("epoch_query for stream " + std::to_string(q->stream) + ", which it did not follow");
    const auto answer = s->part->end_of_epoch(q->epoch);
    if (!answer) {
      l.link->send(wire::ErrorMsg{0, wire::ErrorCode::storage, "the leader cannot read its epochs: " + answer.error().message});
      return Error{answer.error().code, s->where + ": " + answer.error().message};
    }
    const auto& e = answer.value();
    // The log's end may be booked ahead of its writes: never promise more than is written.
    l.link->send(wire::EpochEnd{q->stream, e ? e->epoch : -1, e ? std::min(e->start_offset, s->part->written()) : 0});
    return {};
  }
  if (const auto* f = std::get_if<wire::Fetch>(&m)) {
    Stream* s = stream_of(f->stream);
    if (!s) return bad("fetch for stream " + std::to_string(f->stream) + ", which it did not follow");
    const std::uint64_t start = s->part->log_start(), written = s->part->written();
    if (f->offset < start || f->offset > written) {
      const std::string why = "offset " + std::to_string(f->offset) + " is outside the log's " + std::to_string(start) +
                              ".." + std::to_string(written);
      l.link->send(wire::ErrorMsg{f->stream, wire::ErrorCode::out_of_range, why});
      l.streams.erase(f->stream);
      return {};
    }
    const auto st = s->reader->seek(f->offset);
    if (st != log::ReadStatus::batch) {
      const std::string why = "cannot read the log at offset " + std::to_string(f->offset) + ": " + s->reader->error();
      log("error", s->where + ": " + why);
      l.link->send(wire::ErrorMsg{f->stream, st == log::ReadStatus::out_of_range ? wire::ErrorCode::out_of_range
                                                                                  : wire::ErrorCode::storage,
                                  why});
      l.streams.erase(f->stream);
      return {};
    }
    s->next = f->offset;
    s->file.reset();  // the reader opened its segment again
    s->sending = true;
    return {};
  }
  if (const auto* a = std::get_if<wire::Ack>(&m)) {
    Stream* s = stream_of(a->stream);
    if (!s) return bad("ack for stream " + std::to_string(a->stream) + ", which it did not follow");
    s->part->acknowledged(l.mirror, a->written, a->durable);
    return {};
  }
  if (const auto* e = std::get_if<wire::ErrorMsg>(&m)) {
    if (e->stream == 0)
      return Error{Errc::invalid_argument, "replication link from " + l.link->peer() + ": the mirror closed it (" +
                                               to_string(e->code) + "): " + e->message};
    if (Stream* s = stream_of(e->stream))
      log("error", s->where + ": the mirror stopped it (" + to_string(e->code) + "): " + e->message);
    l.streams.erase(e->stream);
    return {};
  }
  return bad(std::string("a mirror does not send ") + wire::to_string(wire::type_of(m)));
}

void ReplicationServer::feed_groups(Link& l, std::uint32_t id, Stream& s) {
  const auto now = std::chrono::steady_clock::now();
  if (now - s.groups_checked < kGroupsEvery) return;
  s.groups_checked = now;
  const auto files = changed_group_files(s.groups_dir, s.groups_signature, options_.log);
  if (!files) return;
  wire::Groups g{id, {}};
  std::size_t bytes = 0;
  for (const auto& f : *files) {
    bytes += 4 + f.size();
    g.files.emplace_back(f);
  }
  if (bytes > wire::kMaxBatchesBytes) {
    log("error", s.where + ": its consumer groups' files (" + std::to_string(files->size()) + ", " +
                     std::to_string(bytes) + " bytes) do not fit a frame: the mirror does not get them");
    return;
  }
  l.link->send(g);
}

bool ReplicationServer::feed(Link& l) {
  bool tailing = false;
  // Topped up once half is sent: fewer, larger rounds (each looks at the
  // high watermark and the group files).
  if (l.link->queued() > kMaxQueued / 2) return tailing;
  bool full = false;
  // Rounds of one frame per stream, so that one partition's backlog does
  // not hold the others back, until the queue is full: the loop then waits
  // for room on the socket, never for a frame from the mirror.
  for (bool more = true; more;) {
    more = false;
    for (auto it = l.streams.begin(); it != l.streams.end();) {
      if (!it->second.sending) {
        ++it;
        continue;
      }
      switch (feed_frame(l, it->first, it->second)) {
        case Fed::more:
          more = true;
          break;
        case Fed::at_end:
          tailing = true;
          break;
        case Fed::full:
          full = true;
          break;
        case Fed::failed:
          it = l.streams.erase(it);
          continue;
      }
      ++it;
    }
    more = more && !full;
  }
  return tailing;
}

ReplicationServer::Fed ReplicationServer::feed_frame(Link& l, std::uint32_t id, Stream& s) {
  if (!s.groups_dir.empty()) feed_groups(l, id, s);
  const std::uint64_t limit = s.part->written();
  std::string failure;
  wire::ErrorCode code = wire::ErrorCode::storage;
  Fed fed = Fed::more;
  l.link->begin_batches();
  for (;;) {
    if (l.link->queued() >= kMaxQueued) {
      fed = Fed::full;
      break;
    }
    if (l.link->batches_added() >= kFrameTarget) break;
    // Only the header is read here: the mirror checks the batch whole (its
    // CRC and records) before it takes it.
    log::BatchInfo batch;
    const auto st = s.reader->next_unread(limit, batch);
    if (st == log::ReadStatus::end) {
      fed = Fed::at_end;
      break;
    }
    if (st != log::ReadStatus::batch) {
      code = st == log::ReadStatus::out_of_range ? wire::ErrorCode::out_of_range : wire::ErrorCode::storage;
      failure = "cannot read the log at offset " + std::to_string(s.next) + ": " + s.reader->error();
      break;
    }
    const std::uint64_t base = batch.base_offset, end = base + batch.offset_span;
    if (s.reader->batch_format() != log::kSegmentVersion) {
      // Segments of the old format (RBB1) hold no Kafka batches to ship.
      failure = "the batch at offset " + std::to_string(base) +
                " lies in a segment of the old format (RBB1), which mirrors cannot take";
      break;
    }
    if (base != s.next) {
      // Replicas' logs hold the same batches: a fetch lands on a batch's start.
      code = wire::ErrorCode::out_of_range;
      failure = "offset " + std::to_string(s.next) + " is not where a batch starts (the batch there is " +
                std::to_string(base) + ".." + std::to_string(end) + ")";
      break;
    }
    // The batch's bytes go from the file (sendfile), not through this
    // process. The pwrite FileIo's handles are file descriptors: a copy of
    // the segment's stays open for the link.
    if (!s.file || s.file_segment != s.reader->batch_segment()) {
      const int fd = ::fcntl(s.reader->batch_file(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        failure = std::string("cannot keep the segment open to send from: ") + std::strerror(errno);
        break;
      }
      s.file = std::make_shared<const SharedFile>(fd);
      s.file_segment = s.reader->batch_segment();
    }
    l.link->add_file_batch(s.file, s.reader->batch_position(), batch.batch_length);
    s.next = end;
  }
  const std::uint64_t hw = s.part->high_watermark();
  if (l.link->batches_added() > 0 || hw != s.sent_hw) {
    l.link->end_batches(id, hw, s.part->log_start());
    s.sent_hw = hw;
  } else {
    l.link->drop_batches();
  }
  if (!failure.empty()) {
    log("error", s.where + ": " + failure);
    l.link->send(wire::ErrorMsg{id, code, failure});
    return Fed::failed;
  }
  return fed;
}

}  // namespace ringbus::cluster
