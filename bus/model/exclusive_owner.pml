/*
 * The partition ring's claim/commit protocol with an exclusive owner
 * (issue 16), for the spin model checker. bus/README.md ("An exclusive
 * owner") says what it models and why; bus/model/check runs it.
 *
 * A ring of N one-slot records: positions are offsets, so a record's slot is
 * its offset mod N, and entry[o mod N] is its commit entry:
 *   COMMITTED(o)  the claim at offset o is published
 *   REVOKED(o)    it was revoked (its producer died, or was only slow)
 *   anything else a value from an earlier lap: not yet published.
 *
 * Processes:
 *   Owner(1), Owner(2)  exclusive owners: take the lease (the second waits
 *                       until the first releases it or dies), then claim and
 *                       commit with PLAIN stores, which pass through a store
 *                       buffer (x86-TSO: a later load may overtake them);
 *                       Drain(k) makes owner k's buffered stores visible in
 *                       order. An owner may be killed at any step: its
 *                       buffered stores still land (they were retired), and
 *                       only then is it seen dead (the kernel drops its
 *                       liveness lock after the process is gone).
 *   Shared()            a shared producer: a locked claim (cas16) refused
 *                       while the claim word carries the owned bit, a locked
 *                       commit (CAS) that fails if the claim was revoked; may
 *                       die after its claim, or be slow to commit.
 *   Reader()            a gating, blocking reader that also revokes claims
 *                       it finds pending (the abandoned-claim timeout may
 *                       pass at any moment), except those of a live owner.
 *
 * Checked: every record delivered is the one published at its offset (never
 * a stale one); offsets are dense and each is delivered or skipped exactly
 * once (the cursor steps by one); every acknowledged record is delivered; a
 * plain commit never lands on a revoked entry; no producer overwrites a slot
 * the reader has not consumed; a reader that sleeps is always woken when a
 * record is committed at its cursor (an invalid end state otherwise), unless
 * its producer was killed between the commit and the wake-up.
 *
 * Two configurations keep each search small: by default both owners, the
 * deaths and the revoker, with a reader that does not sleep; with -DSLEEP
 * one owner and the shared producer, nobody dies, and the reader sleeps.
 *
 * Mutants (bus/model/check expects each to fail):
 *   -DNO_MEMBARRIER    the sleeper does not fence the owners' store buffers:
 *                      a plain commit followed by a load of `waiters` is
 *                      reordered, and the wake-up is lost;
 *   -DREVOKE_OWNER     the revoker ignores the lease: an owner's plain commit
 *                      lands on its revoked entry;
 *   -DNO_OWNED_BIT     shared producers ignore the owned bit: they claim the
 *                      offsets the owner claims with plain stores.
 */

#define N 2
#define MAXOFF 3
#ifdef SLEEP
#define NPROD 2   /* one owner and the shared producer; nobody dies */
#else
#define NPROD 3
#endif

#define COMMITTED(o) (2 * (o) + 1)
#define REVOKED(o)   (2 * (o) + 2)

/* What an owner's store buffer carries: (what, offset). A_CLAIM is the
   claim word's store and the record's bytes (nobody reads the bytes before
   the entry, so they land together); A_COMMIT is the entry's store. */
#define A_CLAIM  0
#define A_COMMIT 1

byte tail;            /* the claim word's offset */
bool owned;           /* the claim word's owned bit (same word: read together) */
byte entry[N];
byte data[N];         /* a record's bytes: its offset + 1 */
byte gate;            /* the gating reader's published cursor */
byte lease_owner;     /* 0: none; else the owner's id (its liveness token) */
byte lease_start;     /* the first offset the current owner may claim */
bool alive[3];
bool killed[3];       /* set at any moment by init: the process dies */
byte waiters;
byte wake_seq;
bool acked[MAXOFF];
bool delivered[MAXOFF];
byte finished;        /* producers that are done (or dead) */
bool first_taken;

chan sb[3] = [2] of { byte, byte };

proctype Drain(byte k) {
  byte a, v;
end:
  do
  :: atomic {
       sb[k]?a, v ->
       if
       :: a == A_CLAIM ->
          tail = v + 1;
          /* the slot's previous record (offset v - N) was consumed */
          assert(v < gate + N);
          data[v % N] = v + 1
       :: a == A_COMMIT ->
          /* a plain commit must never land on a revocation */
          assert(entry[v % N] != REVOKED(v));
          entry[v % N] = COMMITTED(v)
       fi
     }
  od
}

proctype Owner(byte me) {
  byte o, t;
  {
    /* Take the lease: a CAS from none, or from an owner found dead (the
       second owner tries only after the first took it: the two orders
       are alike). */
    atomic { (me == 1 || first_taken) && (lease_owner == 0 || !alive[lease_owner]) -> lease_owner = me; first_taken = 1 };
    /* Set the owned bit in the claim word (cas16: a locked instruction,
       so the buffer is empty), then say where this owner's claims start. */
    atomic { len(sb[me]) == 0 -> owned = 1; t = tail };
    lease_start = t;
    do
    :: t < MAXOFF && t < gate + N ->
       o = t;
       t++;
       sb[me]!A_CLAIM, o;                      /* the claim and the record: plain stores */
       sb[me]!A_COMMIT, o;                     /* the commit: a plain store */
       assert(!acked[o]);                      /* an offset is published once */
       acked[o] = 1;                           /* try_publish returned ok */
       if
       :: waiters > 0 -> atomic { len(sb[me]) == 0 -> wake_seq++ }  /* futex_wake: a system call */
       :: else -> skip
       fi
    :: t >= MAXOFF -> break
    :: t < MAXOFF -> break                     /* the owner is done early */
    od;
    /* Release: clear the bit (cas16), then the lease. */
    atomic { len(sb[me]) == 0 -> owned = 0 };
    lease_owner = 0;
    finished++
  } unless {
    killed[me] ->
    (len(sb[me]) == 0);
    alive[me] = 0;
    finished++
  }
}

proctype Shared() {
  byte o;
  {
    atomic {
      if
#ifdef NO_OWNED_BIT
      :: tail < MAXOFF && tail < gate + N ->
#else
      :: !owned && tail < MAXOFF && tail < gate + N ->
#endif
         o = tail;
         tail++;
         /* Its record's bytes with the claim: a shared producer stopped
            while it writes them past the abandoned-claim timeout can
            corrupt a newer record (bus/README.md, "Abandoned claims", as
            in Aeron); not modelled. Slow to commit is. */
         data[o % N] = o + 1
#ifndef NO_OWNED_BIT
      :: owned -> goto refused                 /* not_leader: the partition is owned */
#endif
      :: tail >= MAXOFF -> goto refused
      fi
    };
    /* The commit: a CAS from a value of an earlier lap. A revocation, or
       a later lap's value once the revoked slot was reused, makes it fail. */
    atomic {
      if
      :: entry[o % N] < COMMITTED(o) -> entry[o % N] = COMMITTED(o); assert(!acked[o]); acked[o] = 1
      :: else -> skip                           /* claim_revoked */
      fi
    };
    if
    :: waiters > 0 -> wake_seq++
    :: else -> skip
    fi;
refused:
    finished++
  } unless {
    killed[0] -> finished++
  }
}

proctype Reader() {
  byte cur, v, t, s, w, j, x, seen;
  bool ow;
  do
  :: cur >= MAXOFF -> break
  :: cur < MAXOFF ->
     v = entry[cur % N];
     if
     :: v == COMMITTED(cur) ->
        assert(data[cur % N] == cur + 1);
        delivered[cur] = 1;
        cur++;
        gate = cur
     :: v == REVOKED(cur) ->
        cur++;
        gate = cur
     :: else ->
        if
        :: finished == NPROD && cur >= tail -> break   /* nothing more will come */
        :: skip ->
           /* The abandoned-claim timeout passed: revoke what is pending at
              the cursor, except a live owner's claims. */
           atomic { t = tail; ow = owned };
           if
           :: t > cur ->
              w = lease_owner;
              s = lease_start;
#ifdef REVOKE_OWNER
              if
              :: true -> j = t
              fi;
#else
              if
              :: ow && w != 0 && cur >= s && alive[w] -> j = cur   /* wait for it */
              :: else ->
                 j = t;
                 if
                 :: ow && w != 0 && alive[w] && s < j -> j = s
                 :: else -> skip
                 fi
              fi;
#endif
              /* highest first */
              x = j;
              do
              :: x > cur ->
                 x--;
                 atomic {
                   if
                   :: entry[x % N] != COMMITTED(x) && entry[x % N] != REVOKED(x) -> entry[x % N] = REVOKED(x)
                   :: else -> skip
                   fi
                 }
              :: else -> break
              od
           :: else -> skip
           fi
#ifdef SLEEP
        :: skip ->
           /* Sleep: announce, fence the owners (membarrier), look again. */
           atomic { waiters++ };
           atomic {
#ifndef NO_MEMBARRIER
             if
             :: owned -> (len(sb[1]) == 0 && len(sb[2]) == 0)
             :: else -> skip
             fi;
#endif
             seen = wake_seq;
             v = entry[cur % N]
           };
           if
           :: v == COMMITTED(cur) || v == REVOKED(cur) -> skip
           :: else ->
              if
              :: wake_seq != seen -> skip           /* woken */
              /* A producer killed between its commit and its wake-up wakes
                 nobody: the sleep's 100 ms slice ends it (only then). */
              :: killed[0] || killed[1] || killed[2] -> skip
              /* a pending claim is waited for with the abandoned-claim timeout */
              :: tail > cur && entry[cur % N] != COMMITTED(cur) -> skip
              :: finished == NPROD && cur >= tail -> skip
              fi
           fi;
           atomic { waiters-- }
#endif
        fi
     fi
  od;
  /* Every acknowledged record was delivered. */
  x = 0;
  do
  :: x < MAXOFF -> assert(!acked[x] || delivered[x]); x++
  :: else -> break
  od
}

init {
  alive[1] = 1;
  alive[2] = 1;
  atomic {
    run Drain(1);
    run Drain(2);
    run Owner(1);
#ifndef SLEEP
    run Owner(2);
#endif
    run Shared();
    run Reader()
  };
#ifndef SLEEP
  /* Any producer may die at any moment (or none). */
  if
  :: killed[1] = 1
  :: killed[0] = 1
  :: skip
  fi
#endif
}
