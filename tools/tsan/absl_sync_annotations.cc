// ThreadSanitizer builds only (--config=tsan): tells TSan what Debian's
// abseil does not.
//
// The system's abseil is not built with TSan, so its Mutex, CondVar,
// Notification and BlockingCounter carry no annotations: TSan sees neither
// their locking nor their atomics, and reports every access to data guarded
// by an absl::Mutex as a race. absl::Status's shared reference count is
// invisible the same way. This file defines
// those entry points in the program itself; each calls the library's own
// (found with dlsym(RTLD_NEXT)) and tells TSan what happened: a lock or a
// wait that returns holding the mutex acquires it, an unlock (or the
// unlocking at the start of a wait) releases it, a Condition's evaluation
// (which the library runs holding the mutex) acquires it; a notification, a
// counter's decrement and a barrier release into the object that a waiter
// acquires from. These are the happens-before edges an instrumented abseil
// gives TSan itself. Definitions in the executable take precedence over the
// shared library's for every caller, the project's code and the library's
// own (Notification and BlockingCounter lock their Mutex through it).
//
// Tied to the abseil ABI it was written for (Debian 12's 20220623, inline
// namespace debian3): a symbol that cannot be found stops the program at
// once instead of leaving TSan half-informed.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/synchronization/barrier.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

void* Real(const char* mangled) {
  void* f = dlsym(RTLD_NEXT, mangled);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan abseil annotations: %s not found in the abseil library\n",
                 mangled);
    std::abort();
  }
  return f;
}

// The library's function behind one of the definitions below, looked up once.
#define REAL(type, mangled)                               \
  static const auto real = reinterpret_cast<type>(Real(mangled))

void Acquire(const void* p) { __tsan_acquire(const_cast<void*>(p)); }
void Release(const void* p) { __tsan_release(const_cast<void*>(p)); }

// An atomic load in the caller's own code (Notification::HasBeenNotified is
// inline) acquires from the atomic's address: release every byte of the
// object, so whichever member it reads synchronises.
template <typename T>
void ReleaseAll(const T* object) {
  const char* p = reinterpret_cast<const char*>(object);
  for (size_t i = 0; i < sizeof(T); ++i) Release(p + i);
}

// A Condition is evaluated holding the mutex, inside the library: by the
// waiter once the library has taken the mutex back for it, or by another
// thread as it unlocks. Neither passes through the definitions below, so
// the Condition handed to the library is wrapped: the evaluation acquires
// the mutex first (and releases it after, should the condition write).
struct AnnotatedCondition {
  const absl::Condition* condition;
  const absl::Mutex* mu;

  static bool Eval(AnnotatedCondition* self) {
    Acquire(self->mu);
    const bool result = self->condition->Eval();
    Release(self->mu);
    return result;
  }
};

}  // namespace

// Wraps `cond` (a Condition of `mu`) as the Condition `name`, valid in the
// enclosing scope.
#define ANNOTATED_CONDITION(name, cond, mu)                 \
  AnnotatedCondition name##_context{&(cond), (mu)};         \
  const absl::Condition name(&AnnotatedCondition::Eval, &name##_context)

namespace absl {
ABSL_NAMESPACE_BEGIN

// --- Mutex -------------------------------------------------------------------

void Mutex::Lock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  Acquire(this);
}

void Mutex::ReaderLock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}

bool Mutex::TryLock() {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

void Mutex::Unlock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  Release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  ANNOTATED_CONDITION(annotated, cond, this);
  real(this, annotated);
  Acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&),
       "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  ANNOTATED_CONDITION(annotated, cond, this);
  real(this, annotated);
  Acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
       "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  ANNOTATED_CONDITION(annotated, cond, this);
  const bool met = real(this, annotated, timeout);
  Acquire(this);  // held on return either way
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Time),
       "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  ANNOTATED_CONDITION(annotated, cond, this);
  const bool met = real(this, annotated, deadline);
  Acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
       "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  ANNOTATED_CONDITION(annotated, cond, this);
  const bool met = real(this, annotated, timeout);
  Acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Time),
       "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  ANNOTATED_CONDITION(annotated, cond, this);
  const bool met = real(this, annotated, deadline);
  Acquire(this);
  return met;
}

// Await and the CondVar waits are called holding the mutex, let go of it
// while they wait, and hold it again when they return.
void Mutex::Await(const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  Release(this);
  ANNOTATED_CONDITION(annotated, cond, this);
  real(this, annotated);
  Acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
       "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Release(this);
  ANNOTATED_CONDITION(annotated, cond, this);
  const bool met = real(this, annotated, timeout);
  Acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  REAL(bool (*)(Mutex*, const Condition&, absl::Time),
       "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Release(this);
  ANNOTATED_CONDITION(annotated, cond, this);
  const bool met = real(this, annotated, deadline);
  Acquire(this);
  return met;
}

// --- CondVar -----------------------------------------------------------------

void CondVar::Wait(Mutex* mu) {
  REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  real(this, mu);
  Acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  REAL(bool (*)(CondVar*, Mutex*, absl::Duration),
       "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Release(mu);
  const bool timed_out = real(this, mu, timeout);
  Acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  REAL(bool (*)(CondVar*, Mutex*, absl::Time),
       "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  const bool timed_out = real(this, mu, deadline);
  Acquire(mu);
  return timed_out;
}

// --- Notification, BlockingCounter, Barrier -----------------------------------

void Notification::Notify() {
  REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv");
  ReleaseAll(this);
  real(this);
}

void Notification::WaitForNotification() const {
  REAL(void (*)(const Notification*), "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  Acquire(this);
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  REAL(bool (*)(const Notification*, absl::Duration),
       "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) Acquire(this);
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  REAL(bool (*)(const Notification*, absl::Time),
       "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) Acquire(this);
  return notified;
}

bool BlockingCounter::DecrementCount() {
  REAL(bool (*)(BlockingCounter*), "_ZN4absl7debian315BlockingCounter14DecrementCountEv");
  Release(this);
  return real(this);
}

void BlockingCounter::Wait() {
  REAL(void (*)(BlockingCounter*), "_ZN4absl7debian315BlockingCounter4WaitEv");
  real(this);
  Acquire(this);
}

bool Barrier::Block() {
  REAL(bool (*)(Barrier*), "_ZN4absl7debian37Barrier5BlockEv");
  Release(this);
  const bool last = real(this);
  Acquire(this);
  return last;
}

// --- Status ------------------------------------------------------------------

// absl::Status copies share one StatusRep through an atomic reference count
// that the library decrements, and frees at zero, out of TSan's sight: the
// thread dropping the last copy seemed to free what others had read. The
// decrement is done here, where TSan sees it (acquire-release, as the
// library's); the last reference is handed back to the library's own
// function as the only one, which it frees.
void Status::UnrefNonInlined(uintptr_t rep) {
  REAL(void (*)(uintptr_t), "_ZN4absl7debian36Status15UnrefNonInlinedEm");
  status_internal::StatusRep* r = RepToPointer(rep);
  if (r->ref.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  r->ref.store(1, std::memory_order_relaxed);
  real(rep);
}

ABSL_NAMESPACE_END
}  // namespace absl
