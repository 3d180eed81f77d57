#include "mirror_follower.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "group_files.h"
#include "record_batch.h"

namespace ringbus::cluster {

namespace {

// While streams follow, the loop wakes this often to pump the logs (syncs
// due by time) and acknowledge what they wrote.
constexpr int kPumpIntervalMs = 5;
constexpr std::chrono::milliseconds kMaxRedialPause{5000};

}  // namespace

MirrorFollower::MirrorFollower(FollowerOptions options, std::vector<FollowTarget> targets)
    : options_(std::move(options)) {
  for (auto& t : targets) streams_.push_back(Stream{std::move(t), {}, -1, UINT64_MAX, UINT64_MAX});
  published_.resize(streams_.size());
  if (!options_.log) options_.log = [](const char*, const std::string&) {};
  thread_ = std::thread([this] { run(); });
}

MirrorFollower::~MirrorFollower() { stop(); }

void MirrorFollower::stop() {
  if (!thread_.joinable()) return;
  stop_.request();
  thread_.join();
}

MirrorFollower::StreamState MirrorFollower::state(std::size_t target) const {
  std::lock_guard lock(mu_);
  return published_.at(target);
}

void MirrorFollower::publish(const Stream& s) {
  std::lock_guard lock(mu_);
  published_[id_of(s) - 1] = s.state;
}

void MirrorFollower::log(const char* level, const std::string& message) const { options_.log(level, message); }

void MirrorFollower::run() {
  // Pauses between tries double up to kMaxRedialPause while links fail or
  // end within a second (a leader that refuses us, a disk that stays full,
  // are not tried 5 times a second forever).
  std::chrono::milliseconds pause = options_.redial_pause;
  while (!stop_.requested()) {
    // A log whose writes fail (a full disk) holds batches it took but could
    // not place: it settles before the next link, whose divergence check
    // needs every batch placed.
    bool stuck = false;
    for (Stream& s : streams_) {
      if (!s.target.log->is_open()) continue;
      s.target.log->pump();  // the writer retries failed writes when due
      s.target.log->settle();
      stuck = stuck || s.target.log->stuck();
    }
    if (stuck) {
      pollfd p{stop_.fd(), POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(options_.redial_pause.count()));
      continue;
    }
    bool served = false;
    auto link = dial(options_.leader, options_.timeout);
    if (link) {
      auto leader = mirror_handshake(*link.value(), options_.me, options_.timeout);
      if (leader) {
        log("info", "following " + std::to_string(streams_.size()) + " partition(s) of leader node '" +
                        leader.value() + "' at " + options_.leader);
        const auto began = std::chrono::steady_clock::now();
        serve(*link.value());
        served = std::chrono::steady_clock::now() - began > std::chrono::seconds(1);
      } else {
        log("error", leader.error().message);
      }
    } else {
      log("warn", "mirror of " + options_.leader + ": " + link.error().message);
    }
    if (stop_.requested()) break;
    pause = served ? options_.redial_pause : std::min(pause * 2, kMaxRedialPause);
    pollfd p{stop_.fd(), POLLIN, 0};
    (void)::poll(&p, 1, static_cast<int>(pause.count()));
  }
}

void MirrorFollower::serve(PeerLink& link) {
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    Stream& s = streams_[i];
    if (s.state.phase == Phase::failed) continue;
    s.state.phase = Phase::connecting;
    s.acked_written = s.acked_durable = UINT64_MAX;
    publish(s);
    link.send(wire::Follow{static_cast<std::uint32_t>(i + 1), s.target.topic, s.target.topic_id, s.target.partition});
  }
  while (!stop_.requested()) {
    pollfd p[2] = {{link.fd(), static_cast<short>(POLLIN | (link.queued() ? POLLOUT : 0)), 0}, {stop_.fd(), POLLIN, 0}};
    if (::poll(p, 2, kPumpIntervalMs) < 0 && errno != EINTR) {
      log("error", "mirror of " + link.peer() + ": poll failed: " + std::strerror(errno));
      return;
    }
    auto open = link.read_some();
    if (!open) {
      log("warn", open.error().message);
      return;
    }
    for (;;) {
      auto m = link.next();
      if (!m) {
        log("error", m.error().message);
        link.refuse(wire::ErrorCode::protocol, m.error().message, options_.timeout);
        return;
      }
      if (!m->has_value()) break;
      if (auto s = handle(link, **m); !s) {
        log("error", s.error().message);
        (void)link.flush(options_.timeout);  // what it said about it (an error frame) first
        return;
      }
    }
    if (!open.value()) {
      log("warn", "mirror of " + link.peer() + ": the leader closed the link");
      return;
    }
    if (link.quiet_for(options_.idle_timeout)) {
      log("warn", "mirror of " + link.peer() + ": heard nothing for " + std::to_string(options_.idle_timeout.count()) +
                      " ms: the link is closed");
      return;
    }
    for (Stream& s : streams_)
      if (s.target.log->is_open()) s.target.log->pump();
    send_acks(link);
    link.keep_alive(options_.idle_timeout / 4);
    if (auto w = link.write_some(); !w) {
      log("warn", w.error().message);
      return;
    }
  }
}

Status MirrorFollower::handle(PeerLink& link, const wire::Message& m) {
  auto stream_of = [&](std::uint32_t id) -> Stream* {
    return id >= 1 && id <= streams_.size() ? &streams_[id - 1] : nullptr;
  };
  auto bad = [&](const std::string& why) -> Status {
    link.refuse(wire::ErrorCode::protocol, why, options_.timeout);
    return Error{Errc::corrupt, "mirror of " + link.peer() + ": " + why};
  };
  if (const auto* f = std::get_if<wire::Following>(&m)) {
    Stream* s = stream_of(f->stream);
    if (!s || s->state.phase != Phase::connecting) return bad("following for stream " + std::to_string(f->stream) + ", which did not ask");
    return on_following(link, *s, *f);
  }
  if (const auto* e = std::get_if<wire::EpochEnd>(&m)) {
    Stream* s = stream_of(e->stream);
    if (!s || s->state.phase != Phase::finding_divergence) return bad("epoch_end for stream " + std::to_string(e->stream) + ", which did not ask");
    return on_epoch_end(link, *s, *e);
  }
  if (const auto* b = std::get_if<wire::Batches>(&m)) {
    Stream* s = stream_of(b->stream);
    if (!s) return bad("batches for stream " + std::to_string(b->stream) + ", which is unknown");
    if (s->state.phase == Phase::failed) return {};  // sent before our error reached the leader
    if (s->state.phase != Phase::following) return bad("batches for stream " + std::to_string(b->stream) + " before a fetch");
    return on_batches(link, *s, *b);
  }
  if (const auto* g = std::get_if<wire::Groups>(&m)) {
    Stream* s = stream_of(g->stream);
    if (!s || s->target.partition != 0) {
      return bad("groups for stream " + std::to_string(g->stream) + ", which is not a topic's partition 0");
    }
    if (s->state.phase == Phase::failed || s->target.groups_dir.empty()) return {};
    if (s->state.phase != Phase::following) return bad("groups for stream " + std::to_string(g->stream) + " before a fetch");
    auto kept = keep_group_files(s->target.groups_dir, g->files, "the leader " + link.peer());
    if (!kept && kept.error().code == Errc::corrupt) return bad(kept.error().message);
    if (!kept) return storage_failure(link, *s, kept.error().message);
    return {};
  }
  if (const auto* e = std::get_if<wire::ErrorMsg>(&m)) {
    if (e->stream == 0)
      return Error{Errc::invalid_argument, "mirror of " + link.peer() + ": the leader closed the link (" +
                                               to_string(e->code) + "): " + e->message};
    Stream* s = stream_of(e->stream);
    if (!s) return bad("an error for stream " + std::to_string(e->stream) + ", which is unknown");
    if (e->code == wire::ErrorCode::not_leader) {
      // Leadership moves (an election, a node taking a topic up): not for
      // good. The link ends and is dialled again after the pause; the node
      // points the follower elsewhere if another node leads now.
      return Error{Errc::busy, s->target.log->where() + ": " + link.peer() + " does not lead it (yet): " + e->message};
    }
    if (e->code == wire::ErrorCode::out_of_range) {
      // The leader's retention went past the offset asked for since it said
      // where its log starts: dialled again, the copy starts over.
      return Error{Errc::busy, s->target.log->where() + ": " + link.peer() + " no longer holds the offset asked for: " +
                                   e->message};
    }
    s->state.phase = Phase::failed;
    s->state.error = std::string("the leader refused it (") + to_string(e->code) + "): " + e->message;
    log("error", s->target.log->where() + ": " + s->state.error);
    publish(*s);
    return {};
  }
  return bad(std::string("a leader does not send ") + wire::to_string(wire::type_of(m)));
}

Status MirrorFollower::on_following(PeerLink& link, Stream& s, const wire::Following& f) {
  s.state.leader_epoch = f.leader_epoch;
  s.state.high_watermark = f.high_watermark;
  MirrorLog& mlog = *s.target.log;
  // A mirror without a log starts it where the leader's starts.
  if (auto st = mlog.ensure_open(f.log_start); !st) return storage_failure(link, s, st.error().message);
  const auto id = id_of(s);
  if (!mlog.epochs().empty() && f.leader_epoch < mlog.epochs().back().epoch) {
    // A leader that was deposed and does not know it yet (KIP-320): its log
    // is not the one to cut ours to.
    fail_stream(link, s, wire::ErrorCode::not_leader,
                "the leader's epoch " + std::to_string(f.leader_epoch) + " is below this mirror's latest, " +
                    std::to_string(mlog.epochs().back().epoch) + ": a stale leader, nothing cut");
    return {};
  }
  s.leader_start = f.log_start;
  if (auto st = start_over_if_behind(link, s); !st) return st;
  if (mlog.epochs().empty()) {
    // No batch yet: nothing to diverge.
    s.state.phase = Phase::following;
    link.send(wire::Fetch{id, mlog.end()});
  } else {
    s.state.phase = Phase::finding_divergence;
    s.query_epoch = mlog.epochs().back().epoch;
    link.send(wire::EpochQuery{id, s.query_epoch});
  }
  publish(s);
  return {};
}

// KIP-279 (cluster/README.md, "Where a mirror's log leaves its leader's").
Status MirrorFollower::on_epoch_end(PeerLink& link, Stream& s, const wire::EpochEnd& e) {
  MirrorLog& mlog = *s.target.log;
  const auto id = id_of(s);
  if (e.epoch > s.query_epoch) {
    fail_stream(link, s, wire::ErrorCode::protocol,
                "asked for epoch " + std::to_string(s.query_epoch) + ", the leader answered a later one, " +
                    std::to_string(e.epoch));
    return {};
  }
  std::uint64_t cut;
  if (e.epoch < 0) {
    // The leader has no epoch this old: nothing of ours is known to be its.
    cut = mlog.start();
  } else {
    const auto own = mlog.end_of_epoch(e.epoch);
    if (own && own->epoch < e.epoch) {
      // We skipped the leader's epoch: ask about our largest below it.
      s.query_epoch = own->epoch;
      link.send(wire::EpochQuery{id, s.query_epoch});
      return {};
    }
    cut = own ? std::min(e.end_offset, own->start_offset) : mlog.start();
  }
  if (cut < mlog.end()) {
    const std::uint64_t before = mlog.end();
    auto end = mlog.truncate_to(std::max(cut, mlog.start()));
    if (!end) return storage_failure(link, s, end.error().message);
    log("warn", mlog.where() + ": the log left the leader's at offset " + std::to_string(cut) + " (epoch " +
                    std::to_string(e.epoch) + "); truncated from " + std::to_string(before) + " to " +
                    std::to_string(end.value()));
  }
  if (auto st = start_over_if_behind(link, s); !st) return st;
  if (mlog.epochs().empty() && mlog.end() > mlog.start()) {
    // Cannot happen: a log with batches has epochs. Guard the fetch anyway.
    fail_stream(link, s, wire::ErrorCode::storage, "the log has batches but no epochs");
    return {};
  }
  s.state.phase = Phase::following;
  link.send(wire::Fetch{id, mlog.end()});
  publish(s);
  return {};
}

// Everything such a copy holds is below what the leader still has: none of
// it can be compared, and none of it is needed.
Status MirrorFollower::start_over_if_behind(PeerLink& link, Stream& s) {
  MirrorLog& mlog = *s.target.log;
  if (mlog.end() >= s.leader_start) return {};
  const std::uint64_t end = mlog.end();
  if (auto st = mlog.start_over(s.leader_start); !st) return storage_failure(link, s, st.error().message);
  log("warn", mlog.where() + ": the copy ended at offset " + std::to_string(end) + ", below the leader's log start " +
                  std::to_string(s.leader_start) + " (its retention deleted the rest): it starts over there");
  return {};
}

Status MirrorFollower::on_batches(PeerLink& link, Stream& s, const wire::Batches& b) {
  s.state.high_watermark = b.high_watermark;
  MirrorLog& mlog = *s.target.log;
  mlog.set_high_watermark(b.high_watermark);
  // The log writes from the frame's bytes, which the link reuses once this
  // returns, whichever way it returns.
  struct Release {
    MirrorLog& log;
    ~Release() { log.release_input(); }
  } release{mlog};
  // The decoder checked the framing: whole batches, contiguous.
  for (std::size_t at = 0; at < b.batches.size();) {
    log::v2::BatchHeader h;
    (void)log::v2::peek_header(b.batches.subspan(at), h);
    if (auto st = mlog.append(b.batches.subspan(at, h.size()), io::LogWriter::Hold::borrow); !st) {
      if (st.error().code == Errc::io_error) return storage_failure(link, s, st.error().message);
      fail_stream(link, s, wire::ErrorCode::bad_batch,
                  "the leader's batch at offset " + std::to_string(h.base_offset) + " was refused: " + st.error().message);
      return {};
    }
    at += h.size();
  }
  publish(s);
  return {};
}

Status MirrorFollower::storage_failure(PeerLink& link, Stream& s, const std::string& why) {
  link.send(wire::ErrorMsg{id_of(s), wire::ErrorCode::storage, why});
  return Error{Errc::io_error, why + "; the link to " + link.peer() + " is tried again later"};
}

void MirrorFollower::fail_stream(PeerLink& link, Stream& s, wire::ErrorCode code, const std::string& why) {
  if (s.target.log->is_open()) s.target.log->settle();  // what it accepted before stays
  s.state.phase = Phase::failed;
  s.state.error = why;
  log("error", s.target.log->where() + ": mirroring stopped: " + why);
  link.send(wire::ErrorMsg{id_of(s), code, why});
  publish(s);
}

void MirrorFollower::send_acks(PeerLink& link) {
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    Stream& s = streams_[i];
    if (s.state.phase != Phase::following) continue;
    const std::uint64_t w = s.target.log->written(), d = s.target.log->durable();
    if (w == s.acked_written && d == s.acked_durable) continue;
    link.send(wire::Ack{static_cast<std::uint32_t>(i + 1), w, d});
    s.acked_written = w;
    s.acked_durable = d;
  }
}

}  // namespace ringbus::cluster
