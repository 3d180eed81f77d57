// Cross-process synchronisation primitives for the rings: the 16-byte
// compare-and-swap of the claim word, a consistent read of a two-word pair,
// and futex wait/wake on words in shared memory.
//
// These work between processes because they are single instructions or
// system calls on the shared mapping: nothing here uses a process-local lock
// (which is why the 16-byte CAS is inline asm: libatomic may fall back to a
// lock table that other processes cannot see).
#pragma once

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>

namespace ringbus::detail {

struct Pair {
  std::uint64_t first;   // claim: position       lap marker: position
  std::uint64_t second;  // claim: next offset    lap marker: offset
};

// lock cmpxchg16b: if *words == expected, store desired and return true;
// otherwise load *words into expected and return false. A full barrier on
// x86-64 (every locked instruction is), so it is also sequentially
// consistent with respect to the atomics around it. words must be 16-aligned.
struct alignas(16) Words16 {
  std::uint64_t w[2];
};

inline bool cas16(std::uint64_t* words, Pair& expected, Pair desired) noexcept {
  bool ok;
  asm volatile("lock cmpxchg16b %1"
               : "=@ccz"(ok), "+m"(*reinterpret_cast<Words16*>(words)),
                 "+a"(expected.first), "+d"(expected.second)
               : "b"(desired.first), "c"(desired.second)
               : "memory");
  return ok;
}

// Stores a pair unconditionally: a cas16 loop (on failure cas16 loads the
// current value into `expected`, so the next try succeeds unless it changed).
inline void store16(std::uint64_t* words, Pair desired) noexcept {
  Pair expected{0, 0};
  while (!cas16(words, expected, desired)) {
  }
}

inline std::uint64_t load_acquire(const std::uint64_t* word) noexcept {
  return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

// Reads {first, second} as one consistent pair without a locked instruction.
// Valid for pairs changed only by cas16 where every change strictly increases
// `second` (the claim word: every claim takes at least one offset; the lap
// marker: offsets only grow). If `second` reads the same before and after,
// no cas16 happened in between, so `first` belongs to that same state.
inline Pair load_pair(const std::uint64_t* words) noexcept {
  for (;;) {
    const std::uint64_t s1 = load_acquire(words + 1);
    const std::uint64_t f = load_acquire(words);
    const std::uint64_t s2 = load_acquire(words + 1);
    if (s1 == s2) return {f, s1};
  }
}

// load_pair with sequentially consistent loads, for the Dekker handshakes
// (a seq_cst read-modify-write, then this): the C++ model needs the load
// seq_cst too; on x86 it is the same instruction as an acquire load.
inline Pair load_pair_seq_cst(const std::uint64_t* words) noexcept {
  for (;;) {
    const std::uint64_t s1 = __atomic_load_n(words + 1, __ATOMIC_SEQ_CST);
    const std::uint64_t f = __atomic_load_n(words, __ATOMIC_SEQ_CST);
    const std::uint64_t s2 = __atomic_load_n(words + 1, __ATOMIC_SEQ_CST);
    if (s1 == s2) return {f, s1};
  }
}

// Stores a pair with one aligned 16-byte store (movdqa): atomic on every
// x86-64 processor with AVX (Intel SDM vol. 3, 9.1.1; AMD APM vol. 2, 7.3.2),
// which has_atomic_store16() checks. Not a locked instruction: the store
// buffer keeps it, in order with the stores before and after it. Only for a
// pair that one writer owns (an exclusive owner's claim word), read with
// load_pair (its `second` grows with every store).
inline void store_pair(std::uint64_t* words, Pair desired) noexcept {
  asm volatile("movdqa %1, %0"
               : "=m"(*reinterpret_cast<Words16*>(words))
               : "x"(__extension__(__attribute__((vector_size(16))) unsigned long long){desired.first, desired.second})
               : "memory");
}
inline bool has_atomic_store16() noexcept { return __builtin_cpu_supports("avx"); }

// Raises the pair to `desired` if desired.second is greater than the current
// second (a monotonic maximum, used for the lap marker).
inline void raise_pair(std::uint64_t* words, Pair desired) noexcept {
  Pair cur = load_pair(words);
  while (cur.second < desired.second) {
    if (cas16(words, cur, desired)) return;
  }
}

// Raises the word to `desired` if that is greater (a monotonic maximum: the
// slots' high waters).
inline void raise_to(std::atomic<std::uint32_t>& word, std::uint32_t desired, std::memory_order order) noexcept {
  std::uint32_t cur = word.load(std::memory_order_relaxed);
  while (cur < desired && !word.compare_exchange_weak(cur, desired, order)) {
  }
}

// Futex wait on a 32-bit word shared between processes. Returns when woken,
// when *word != expected, on a signal, or at the timeout; callers re-check
// their condition in every case.
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                std::chrono::nanoseconds timeout) noexcept;
// Waits on several words at once (futex_waitv, Linux 5.16+); falls back to a
// short timed wait on the first word where the kernel lacks it.
void futex_wait_any(std::span<std::atomic<std::uint32_t>* const> words,
                    std::span<const std::uint32_t> expected,
                    std::chrono::nanoseconds timeout) noexcept;
void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept;

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

// The asymmetric fence of an exclusive owner's wake-up handshake
// (bus/README.md, "An exclusive owner"). The owner commits with a plain
// store and then loads `waiters`, which x86 may reorder; a sleeper that has
// announced itself calls heavy_fence(), which runs a full barrier on every
// CPU running a process that called register_heavy_fence()
// (membarrier(2), MEMBARRIER_CMD_GLOBAL_EXPEDITED): after it, either the
// owner's commit is visible or its next load of `waiters` sees the sleeper.
// register_heavy_fence() returns false where the kernel lacks it; such an
// owner fences each commit itself.
bool register_heavy_fence() noexcept;
void heavy_fence() noexcept;

std::int64_t monotonic_ns() noexcept;
// monotonic_ns() + timeout, saturating (a timeout of nanoseconds::max()
// means "forever", not an overflow).
inline std::int64_t deadline_after(std::int64_t timeout_ns) noexcept {
  const std::int64_t now = monotonic_ns();
  return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}
// CLOCK_REALTIME in nanoseconds.
inline std::int64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// True if the process `pid` is gone (kill(pid, 0) says ESRCH).
bool process_is_dead(std::int32_t pid) noexcept;

// True if some process holds an OFD write lock on the file at `path` (the
// broker holds one on broker.lock while it lives; the kernel drops it when the
// broker dies, whatever its pid namespace). Tests without taking the lock, so
// it never races a starting broker. False if the file does not exist.
bool lock_is_held(const char* path) noexcept;

}  // namespace ringbus::detail
