/*
 * Shared producers that commit with a plain store (issue 16), for the spin
 * model checker. bus/README.md ("Shared producers' plain commits") says
 * what it models and why; bus/model/check runs it.
 *
 * A ring of N one-slot records, as in exclusive_owner.pml: a record's slot
 * is its offset mod N, entry[o mod N] is its commit entry:
 *   COMMITTED(o)  the claim at offset o is published
 *   REVOKED(o)    it was revoked (its producer died, or a Claim was slow)
 *   anything else a value from an earlier lap: not yet published.
 *
 * Processes:
 *   Publisher(1), Publisher(2)  shared producers in try_publish: each owns a
 *                       publisher slot whose `floor` says "a claim of mine
 *                       from this offset on may be in flight". It reads the
 *                       claim word, stores the floor (a plain store), claims
 *                       with a locked CAS (its store buffer drains), then
 *                       stores the record and the commit entry and clears
 *                       the floor, all plain stores through an x86-TSO store
 *                       buffer (Drain(k) makes them visible in order). Held
 *                       back, it clears the floor before it waits. A claim
 *                       that must wait after its CAS (a gating reader joined)
 *                       clears the floor and commits by CAS, as a Claim does.
 *                       It may be killed at any step: its buffered stores
 *                       still land, and only then is it seen dead.
 *   Claimer()           a Claim (the zero-copy API): a locked claim, a
 *                       locked commit that fails if the claim was revoked;
 *                       may die after its claim, or be slow to commit.
 *   Reader()            a gating reader that revokes what it finds pending
 *                       (the abandoned-claim timeout may pass at any moment)
 *                       unless a live publisher's floor lies in the run; with
 *                       -DSLEEP it also sleeps.
 *
 * Not checked: progress. A reader spinning on a live publisher's floor is a
 * livelock to spin's safety search, not an invalid end state, so the
 * rule that a claim which waits after its CAS drops its floor (else the
 * reader it waits for could not revoke a dead claim before it) rests on
 * the code's comment and tests/bus/plain_commit_test, not on this model.
 *
 * Checked: every record delivered is the one published at its offset;
 * offsets are dense and each is delivered or skipped once; every
 * acknowledged record is delivered; a plain commit never lands on a
 * revoked entry; no producer overwrites a slot the reader has not consumed;
 * a sleeping reader is woken when a record is committed at its cursor.
 *
 * Three configurations keep each search small: by default the two
 * publishers (the first may die) and the revoker; with -DCLAIMER one
 * publisher and the Claimer (either may die); with -DSLEEP the same two,
 * nobody dies, and the reader sleeps.
 *
 * Mutants (bus/model/check expects each to fail):
 *   -DIGNORE_FLOORS     the revoker does not look at the floors: a plain
 *                       commit lands on its revoked entry;
 *   -DFLOOR_AFTER_CLAIM the floor is stored after the claim: a revoker can
 *                       see the claim and not the floor;
 *   -DSLEEP -DNO_MEMBARRIER  the sleeper does not fence the publishers'
 *                       store buffers: the wake-up is lost.
 */

#define N 2
#define MAXOFF 3
#define NONE 255
#define NPROD 2
/* Records each publisher publishes at most (two publishers: one each keeps
   the search to seconds; with one publisher it laps the ring). */
#ifndef PUBLISHES
#if defined(CLAIMER) || defined(SLEEP)
#define PUBLISHES MAXOFF
#else
#define PUBLISHES 1
#endif
#endif

#define COMMITTED(o) (2 * (o) + 1)
#define REVOKED(o)   (2 * (o) + 2)

/* A publisher's buffered stores: (what, offset). */
#define A_FLOOR  0
#define A_COMMIT 1   /* the record's bytes and its entry (nobody reads the
                        bytes before the entry, so they land together) */
#define A_CLEAR  2

byte tail;
byte entry[N];
byte data[N];
byte gate;
byte floor[3] = NONE;
bool alive[3];
bool killed[3];
byte waiters;
byte wake_seq;
bool acked[MAXOFF];
bool delivered[MAXOFF];
byte finished;

chan sb[3] = [3] of { byte, byte };

proctype Drain(byte k) {
  byte a, v;
end:
  do
  :: atomic {
       sb[k]?a, v ->
       if
       :: a == A_FLOOR -> floor[k] = v
       :: a == A_CLEAR -> floor[k] = NONE
       :: a == A_COMMIT ->
          assert(v < gate + N);                   /* the slot's last record was consumed */
          data[v % N] = v + 1;
          assert(entry[v % N] != REVOKED(v));     /* a plain commit never lands on a revocation */
          entry[v % N] = COMMITTED(v)
       fi
     }
  od
}

proctype Publisher(byte me) {
  byte o, t, claims;
  {
    do
    :: tail >= MAXOFF || claims == PUBLISHES -> break
    :: tail < MAXOFF && claims < PUBLISHES ->
       t = tail;                                  /* the claim word, as read */
#ifndef FLOOR_AFTER_CLAIM
       sb[me]!A_FLOOR, t;
#endif
       atomic {
         len(sb[me]) == 0 ->                      /* cas16: a locked instruction */
         if
         :: tail == t && t < MAXOFF && t < gate + N -> o = t; tail++
         :: tail == t && (t >= MAXOFF || t >= gate + N) -> o = NONE  /* held back (or done) */
         :: tail != t -> o = NONE                 /* the CAS failed: read again */
         fi
       };
       if
       :: o == NONE -> sb[me]!A_CLEAR, 0          /* no floor while it waits */
       :: o != NONE ->
          claims++;
#ifdef FLOOR_AFTER_CLAIM
          sb[me]!A_FLOOR, o;
#endif
          if
          :: skip ->
             sb[me]!A_COMMIT, o;                  /* the record and the commit: plain stores */
             assert(!acked[o]);
             acked[o] = 1;                        /* try_publish returned ok */
             sb[me]!A_CLEAR, 0;
             if
             :: waiters > 0 -> atomic { len(sb[me]) == 0 -> wake_seq++ }  /* futex_wake */
             :: else -> skip
             fi
          :: skip ->
             /* A gating reader joined behind the claim: wait until it has
                read up to it (a stronger wait than the code's, which
                times out and withdraws the claim). */
             sb[me]!A_CLEAR, 0;
             (len(sb[me]) == 0 && gate >= o);      /* waits; then a CAS commit */
             atomic {
               if
               :: entry[o % N] < COMMITTED(o) -> data[o % N] = o + 1; entry[o % N] = COMMITTED(o);
                  assert(!acked[o]); acked[o] = 1
               :: else -> skip                    /* claim_revoked */
               fi
             };
             if
             :: waiters > 0 -> atomic { len(sb[me]) == 0 -> wake_seq++ }
             :: else -> skip
             fi
          fi
       fi
    od;
    (len(sb[me]) == 0);
    finished++
  } unless {
    killed[me] ->
    (len(sb[me]) == 0);
    alive[me] = 0;
    finished++
  }
}

proctype Claimer() {
  byte o;
  {
    atomic {
      if
      :: tail < MAXOFF && tail < gate + N -> o = tail; tail++; data[o % N] = o + 1
      :: tail >= MAXOFF -> goto gone
      fi
    };
    atomic {
      if
      :: entry[o % N] < COMMITTED(o) -> entry[o % N] = COMMITTED(o); assert(!acked[o]); acked[o] = 1
      :: else -> skip                             /* claim_revoked (or a later lap's value) */
      fi
    };
    if
    :: waiters > 0 -> wake_seq++
    :: else -> skip
    fi;
gone:
    finished++
  } unless {
    killed[0] -> finished++
  }
}

proctype Reader() {
  byte cur, v, t, j, x, seen, f1, f2;
  bool a1, a2;
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
        :: finished == NPROD && cur >= tail -> break
        :: skip ->
           /* The timeout passed: the claim word, then the floors and their
              owners' liveness, then revoke the run highest first. */
           t = tail;
           f1 = floor[1];
           a1 = alive[1];
           f2 = floor[2];
           a2 = alive[2];
           if
           :: t > cur ->
              j = t;
#ifndef IGNORE_FLOORS
              if
              :: (f1 != NONE && f1 < j && a1) || (f2 != NONE && f2 < j && a2) -> j = cur  /* wait */
              :: else -> skip
              fi;
#endif
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
           atomic { waiters++ };
           atomic {
#ifndef NO_MEMBARRIER
             (len(sb[1]) == 0 && len(sb[2]) == 0);  /* membarrier */
#endif
             seen = wake_seq;
             v = entry[cur % N]
           };
           if
           :: v == COMMITTED(cur) || v == REVOKED(cur) -> skip
           :: else ->
              if
              :: wake_seq != seen -> skip
              :: tail > cur && entry[cur % N] != COMMITTED(cur) -> skip  /* pending: the timeout ends the wait */
              :: finished == NPROD && cur >= tail -> skip
              fi
           fi;
           atomic { waiters-- }
#endif
        fi
     fi
  od;
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
    run Publisher(1);
#if defined(CLAIMER) || defined(SLEEP)
    run Claimer();
#else
    run Drain(2);
    run Publisher(2);
#endif
    run Reader()
  };
#ifndef SLEEP
  /* A producer may die at any moment (or none). */
  if
  :: killed[1] = 1
#ifdef CLAIMER
  :: killed[0] = 1
#endif
  :: skip
  fi
#endif
}
