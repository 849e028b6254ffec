// hueguard's IMA scanner: parses runs of ordinary ascii measurement-list lines, replays them into PCR 10 and looks
// their (path, digest) up in a digest table, in one call per run (src/integrity/ima-scan.ts states the contract).
//
// Why native: per entry, JavaScript spends ~2 µs on the bytes (hex, template data) and ~2 µs on four SHA-256
// compressions, and node:crypto costs ~1.5 µs a call; here a whole chunk costs one call, and the hashes are
// OpenSSL's (SHA-NI / AVX2 chosen by OpenSSL at run time).
// - OpenSSL is the one inside the running node (it exports its symbols), found with dlsym at load: no link-time
//   dependency and no second copy; a node without them makes the load fail and hueguard stays on JavaScript.
// - The scanner accepts only lines it can handle exactly as ima-log.ts does (a subset: ima-ng and unsigned ima-sig,
//   sha1/sha256/sha384/sha512 digests, no violation, no CR, not longer than the limit) and stops at any other
//   line: JavaScript parses that one, with its own errors and line numbers. So it never has to reproduce an error.
// - The hashing (about a third of the work) can run on a thread of the addon's own while JavaScript appraises the
//   lines just scanned; sync() waits for it. JavaScript's buffers are only ever written on JavaScript's thread.
#define NAPI_VERSION 8
#include <node_api.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace {

// ---- OpenSSL, from the process --------------------------------------------------------------------------------

// SHA256_CTX is 112 bytes, SHA_CTX 96 (public structs, sha.h); both start with the state words (h[8], h0..h4).
struct alignas(16) Ctx {
  unsigned char bytes[256];
};
typedef int (*InitFn)(Ctx*);
typedef void (*TransformFn)(Ctx*, const unsigned char*);
struct Digest {
  InitFn init;
  TransformFn transform;  // one 64-byte block: we pad ourselves (no Update/Final copies, no cleanse)
  int words;              // digest size in 32-bit words
};
Digest sha1 = {nullptr, nullptr, 5};
Digest sha256 = {nullptr, nullptr, 8};

bool resolve(Digest& d, const char* init, const char* transform) {
  d.init = reinterpret_cast<InitFn>(dlsym(RTLD_DEFAULT, init));
  d.transform = reinterpret_cast<TransformFn>(dlsym(RTLD_DEFAULT, transform));
  return d.init != nullptr && d.transform != nullptr;
}

// SHA-1 / SHA-256 of data[0..n): whole blocks, then the Merkle–Damgård padding (0x80, zeros, bit length BE).
void hash(const Digest& d, const uint8_t* data, size_t n, uint8_t* out) {
  Ctx c;
  d.init(&c);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) d.transform(&c, data + i);
  uint8_t tail[128];
  const size_t rest = n - i;
  if (rest > 0) std::memcpy(tail, data + i, rest);
  tail[rest] = 0x80;
  const size_t blocks = rest < 56 ? 1 : 2;
  std::memset(tail + rest + 1, 0, blocks * 64 - rest - 1 - 8);
  const uint64_t bits = uint64_t(n) * 8;
  for (int k = 0; k < 8; k++) tail[blocks * 64 - 1 - k] = uint8_t(bits >> (8 * k));
  d.transform(&c, tail);
  if (blocks == 2) d.transform(&c, tail + 64);
  for (int w = 0; w < d.words; w++) {
    uint32_t h;
    std::memcpy(&h, c.bytes + 4 * w, 4);
    out[4 * w] = uint8_t(h >> 24), out[4 * w + 1] = uint8_t(h >> 16), out[4 * w + 2] = uint8_t(h >> 8),
    out[4 * w + 3] = uint8_t(h);
  }
}

bool cpuHasShaNi() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (b >> 29) & 1;
#else
  return false;
#endif
}

// ---- the digest table (layout: src/integrity/digest-table.ts) -------------------------------------------------

inline uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
inline uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

// MurmurHash3 x86_32, seed 0: the table's hash (digest-table.ts has the same in JavaScript).
uint32_t murmur3(const uint8_t* p, size_t n) {
  const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
  uint32_t h = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t k = le32(p + i) * c1;
    k = rotl(k, 15) * c2;
    h ^= k;
    h = rotl(h, 13) * 5 + 0xe6546b64;
  }
  uint32_t k = 0;
  switch (n & 3) {
    case 3: k ^= uint32_t(p[i + 2]) << 16; [[fallthrough]];
    case 2: k ^= uint32_t(p[i + 1]) << 8; [[fallthrough]];
    case 1:
      k ^= p[i];
      k *= c1;
      k = rotl(k, 15) * c2;
      h ^= k;
  }
  h ^= uint32_t(n);
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

struct Table {
  const int32_t* slots = nullptr;  // [hash, record offset or -1] per slot; a power of two of slots
  size_t mask = 0;
  const uint8_t* arena = nullptr;  // records: u32 name length | name | u32 count | (u32 length | digest)*
  size_t arenaLen = 0;
};

enum Lookup { kOk = 0, kUnknown = 1, kMismatch = 2, kNotLooked = 3 };

// The record of the name (hash h), kUnknown-style -1 when absent. A corrupt table (not built by digest-table.ts)
// must not make us read outside the arena: every offset is checked.
int64_t findRecord(const Table& t, uint32_t h, const uint8_t* name, size_t len, size_t first) {
  for (size_t s = first, probes = 0; probes <= t.mask; s = (s + 1) & t.mask, probes++) {
    const int32_t at = t.slots[2 * s + 1];
    if (at < 0) return -1;
    if (uint32_t(t.slots[2 * s]) != h) continue;
    const size_t p = size_t(at);
    if (p + 4 > t.arenaLen || le32(t.arena + p) != len || p + 8 + len > t.arenaLen) continue;
    if (std::memcmp(t.arena + p + 4, name, len) != 0) continue;
    return int64_t(p);
  }
  return -1;
}

int digestListed(const Table& t, size_t p, size_t nameLen, const uint8_t* dg, size_t dlen) {
  p += 4 + nameLen;
  uint32_t count = le32(t.arena + p);
  p += 4;
  for (; count > 0; count--) {
    if (p + 4 > t.arenaLen) break;
    const uint32_t n = le32(t.arena + p);
    p += 4;
    if (p + n > t.arenaLen) break;
    if (n == dlen && std::memcmp(t.arena + p, dg, dlen) == 0) return kOk;
    p += n;
  }
  return kMismatch;
}

// A lookup waiting for its cache lines, in three stages a few lines apart: the slot is prefetched when the line is
// parsed, the record when the slot is probed, and the digests compared last, so that a million-path table (slots
// and records far apart in memory) costs little more than a small one.
struct Pending {
  const uint8_t* name;
  uint32_t nameLen;
  uint32_t hash;
  int64_t record;
  uint8_t dLen;
  uint8_t digest[64];
};

// ---- one line -------------------------------------------------------------------------------------------------

int8_t HEX[256];

inline bool hexInto(const uint8_t* s, size_t pairs, uint8_t* out) {
  int bad = 0;
  for (size_t i = 0; i < pairs; i++) {
    const int hi = HEX[s[2 * i]], lo = HEX[s[2 * i + 1]];
    bad |= hi | lo;
    out[i] = uint8_t((unsigned(hi) << 4) | unsigned(lo));  // garbage when bad: the caller discards it
  }
  return bad >= 0;
}

// Column layout per entry (Int32Array): line start, line end (before "\n"), name start, name end, flags.
const int kStride = 5;
enum Flags { kNonAscii = 2, kLookupShift = 4 };

// ---- the replay: inline, or on a thread of its own --------------------------------------------------------------

// The running PCR values, as PcrReplay keeps them: [PCR | extend value] per bank.
struct Banks {
  uint8_t s1[40];
  uint8_t s256[64];
  bool do1 = false, do256 = false;
  uint64_t mismatches = 0;  // stated template hashes that were wrong (sha1 bank only)
};

// One entry, as PcrReplay.extend does it.
inline void extendEntry(Banks& k, const uint8_t* td, size_t n, const uint8_t* stated, bool extend) {
  if (k.do1) {
    hash(sha1, td, n, k.s1 + 20);
    if (std::memcmp(k.s1 + 20, stated, 20) != 0) k.mismatches++;
    if (extend) hash(sha1, k.s1, 40, k.s1);
  }
  if (k.do256 && extend) {
    hash(sha256, td, n, k.s256 + 32);
    hash(sha256, k.s256, 64, k.s256);
  }
}

// Records of a job: u32 template data length | u8 extend | stated hash [20] | template data.
const size_t kRecordHead = 25;
const size_t kJobEntries = 256;  // small jobs: the hashing thread starts while the next ones are parsed
const size_t kMaxQueued = 64;    // then the parser waits: memory stays bounded whatever the chunk size
struct Job {
  std::vector<uint8_t> buf;
  size_t used = 0;
  size_t entries = 0;
};

// Per node environment (instance data). Between the first scanAscii and sync() a "session" is open: `banks` holds
// the running values (copied from JavaScript's buffers, copied back by sync()); with a thread, only the thread
// touches `banks` while jobs are queued. JavaScript's buffers are written only by sync(), on JavaScript's thread.
struct Replayer {
  Banks banks;
  bool open = false;
  uint8_t* js1 = nullptr;
  uint8_t* js256 = nullptr;
  Job* current = nullptr;  // being filled by JavaScript's thread
  std::vector<Job*> spare;
  std::mutex m;
  std::condition_variable wake, progress;
  std::deque<Job*> queue;  // the front one is being hashed until it is popped
  bool stop = false;
  std::thread thread;

  void run() {
    std::unique_lock<std::mutex> lock(m);
    for (;;) {
      wake.wait(lock, [&] { return stop || !queue.empty(); });
      if (queue.empty()) return;
      Job* j = queue.front();
      lock.unlock();
      for (size_t at = 0; at < j->used;) {
        const uint8_t* r = j->buf.data() + at;
        const size_t n = le32(r);
        extendEntry(banks, r + kRecordHead, n, r + 5, r[4] != 0);
        at += kRecordHead + n;
      }
      lock.lock();
      queue.pop_front();
      j->used = j->entries = 0;
      spare.push_back(j);
      progress.notify_all();
    }
  }

  uint8_t* reserve(size_t n) {
    if (current == nullptr) {
      std::lock_guard<std::mutex> lock(m);
      if (spare.empty()) {
        current = new Job();
      } else {
        current = spare.back();
        spare.pop_back();
      }
    }
    if (current->buf.size() < current->used + n) current->buf.resize(current->used + n + 64 * 1024);
    return current->buf.data() + current->used;
  }

  void submit() {
    if (current == nullptr || current->entries == 0) return;
    std::unique_lock<std::mutex> lock(m);
    if (!thread.joinable()) thread = std::thread([this] { run(); });
    progress.wait(lock, [&] { return queue.size() < kMaxQueued; });
    queue.push_back(current);
    current = nullptr;
    wake.notify_one();
  }

  // Waits for every queued job; JavaScript's buffers then get the running values.
  uint64_t sync() {
    if (!open) return 0;
    submit();
    {
      std::unique_lock<std::mutex> lock(m);
      progress.wait(lock, [&] { return queue.empty(); });
    }
    if (js1 != nullptr) std::memcpy(js1, banks.s1, 40);
    if (js256 != nullptr) std::memcpy(js256, banks.s256, 64);
    open = false;
    const uint64_t n = banks.mismatches;
    banks.mismatches = 0;
    return n;
  }

  ~Replayer() {
    {
      std::lock_guard<std::mutex> lock(m);
      stop = true;
      wake.notify_all();
    }
    if (thread.joinable()) thread.join();
    delete current;
    for (Job* j : spare) delete j;
    for (Job* j : queue) delete j;
  }
};

struct Scan {
  const uint8_t* b;
  size_t maxLine;
  uint32_t pcrIndex;
  Replayer* replayer;
  bool threaded;
  Table table;
  bool haveTable;
  std::vector<uint8_t> td;  // template data of the current line (inline hashing)
  std::vector<Pending> pending;
};

inline bool anyHighBit(const uint8_t* p, size_t n) {
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc |= w;
  }
  for (; i < n; i++) acc |= p[i];
  return (acc & 0x8080808080808080ull) != 0;
}

// Handles the line b[s..e) (e: its "\n"), writing its columns; false when it is not one for the fast path.
bool line(Scan& sc, size_t s, size_t e, int32_t* col, Pending* look) {
  const uint8_t* b = sc.b;
  const size_t len = e - s;
  if (len == 0 || len > sc.maxLine || b[e - 1] == '\r') return false;
  size_t i = s;
  while (i < e && b[i] == ' ') i++;
  const size_t pcrStart = i;
  uint32_t pcr = 0;
  while (i < e && b[i] >= '0' && b[i] <= '9' && i - pcrStart < 9) pcr = pcr * 10 + (b[i++] - '0');
  if (i == pcrStart || i >= e || b[i] != ' ') return false;
  const size_t th = ++i;
  if (e - th < 41 || b[th + 40] != ' ') return false;
  uint8_t stated[20];
  if (!hexInto(b + th, 20, stated)) return false;
  uint8_t any = 0;
  for (int k = 0; k < 20; k++) any |= stated[k];
  if (any == 0) return false;  // a violation
  i = th + 41;
  bool sig;
  if (e - i > 7 && std::memcmp(b + i, "ima-ng ", 7) == 0) {
    sig = false;
    i += 7;
  } else if (e - i > 8 && std::memcmp(b + i, "ima-sig ", 8) == 0) {
    sig = true;
    i += 8;
  } else {
    return false;
  }
  const size_t alg = i;
  size_t algLen, dLen;
  if (e - i > 7 && std::memcmp(b + i, "sha256:", 7) == 0) {
    algLen = 6, dLen = 32;
  } else if (e - i > 5 && std::memcmp(b + i, "sha1:", 5) == 0) {
    algLen = 4, dLen = 20;
  } else if (e - i > 7 && std::memcmp(b + i, "sha384:", 7) == 0) {
    algLen = 6, dLen = 48;
  } else if (e - i > 7 && std::memcmp(b + i, "sha512:", 7) == 0) {
    algLen = 6, dLen = 64;
  } else {
    return false;
  }
  const size_t hex = alg + algLen + 1;
  if (e - hex < 2 * dLen + 2 || b[hex + 2 * dLen] != ' ') return false;
  const size_t ns = hex + 2 * dLen + 1;
  const void* sp = std::memchr(b + ns, ' ', e - ns);
  const size_t ne = sp == nullptr ? e : static_cast<const uint8_t*>(sp) - b;
  if (ne == ns) return false;
  if (ne < e && !(sig && ne + 1 == e)) return false;  // more fields: a signature, or an error for JavaScript
  const size_t nameLen = ne - ns;
  // template data: u32 | alg ":" NUL digest | u32 | name NUL [| u32 0: the empty signature]
  const size_t dng = algLen + 2 + dLen;
  const size_t tdLen = 4 + dng + 4 + nameLen + 1 + (sig ? 4 : 0);
  uint8_t* t;
  if (sc.threaded) {
    t = sc.replayer->reserve(kRecordHead + tdLen) + kRecordHead;
  } else {
    if (sc.td.size() < tdLen) sc.td.resize(tdLen + 256);
    t = sc.td.data();
  }
  auto put32 = [](uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v), p[1] = uint8_t(v >> 8), p[2] = uint8_t(v >> 16), p[3] = uint8_t(v >> 24);
  };
  put32(t, uint32_t(dng));
  std::memcpy(t + 4, b + alg, algLen);
  t[4 + algLen] = ':';
  t[5 + algLen] = 0;
  uint8_t* digest = t + 6 + algLen;
  if (!hexInto(b + hex, dLen, digest)) return false;
  put32(t + 4 + dng, uint32_t(nameLen + 1));
  std::memcpy(t + 8 + dng, b + ns, nameLen);
  t[8 + dng + nameLen] = 0;
  if (sig) put32(t + 9 + dng + nameLen, 0);

  int flags = anyHighBit(b + ns, nameLen) ? kNonAscii : 0;
  if (sc.haveTable) {
    look->name = b + ns;
    look->nameLen = uint32_t(nameLen);
    look->hash = murmur3(b + ns, nameLen);
    look->dLen = uint8_t(dLen);
    std::memcpy(look->digest, digest, dLen);
    __builtin_prefetch(sc.table.slots + 2 * (look->hash & sc.table.mask));
  }
  if (sc.threaded) {
    Job* j = sc.replayer->current;
    uint8_t* r = t - kRecordHead;
    put32(r, uint32_t(tdLen));
    r[4] = pcr == sc.pcrIndex;
    std::memcpy(r + 5, stated, 20);
    j->used += kRecordHead + tdLen;
    if (++j->entries == kJobEntries) sc.replayer->submit();
  } else {
    extendEntry(sc.replayer->banks, t, tdLen, stated, pcr == sc.pcrIndex);
  }
  col[0] = int32_t(s);
  col[1] = int32_t(e);
  col[2] = int32_t(ns);
  col[3] = int32_t(ne);
  col[4] = flags | (sc.haveTable ? 0 : kNotLooked << kLookupShift);
  return true;
}

// ---- N-API ----------------------------------------------------------------------------------------------------

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, "ERR_HUEGUARD_NATIVE", "N-API call failed: " #call); \
      return nullptr;                                                      \
    }                                                                      \
  } while (0)

// A typed array argument of the given type (null/undefined allowed when `optional`), as pointer and element count.
// `given` tells null from an empty array (whose data pointer may be null).
bool typedArg(napi_env env, napi_value v, napi_typedarray_type want, bool optional, void** data, size_t* length,
              const char* what, bool* given = nullptr) {
  napi_valuetype vt;
  if (napi_typeof(env, v, &vt) != napi_ok) return false;
  if (given != nullptr) *given = true;
  if (optional && (vt == napi_null || vt == napi_undefined)) {
    *data = nullptr;
    *length = 0;
    if (given != nullptr) *given = false;
    return true;
  }
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type type;
  if (is && napi_get_typedarray_info(env, v, &type, length, data, nullptr, nullptr) == napi_ok && type == want) {
    return true;
  }
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return false;
}

bool u32Arg(napi_env env, napi_value v, uint32_t* out, const char* what) {
  if (napi_get_value_uint32(env, v, out) == napi_ok) return true;
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return false;
}

Replayer* replayerOf(napi_env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok) return nullptr;
  return static_cast<Replayer*>(data);
}

// scanAscii(buf, start, end, maxLine, pcrIndex, s1, s256, slots, arena, out, threaded) → entries scanned
napi_value ScanAscii(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 11) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "scanAscii takes 11 arguments");
    return nullptr;
  }
  bool threaded = false;
  if (napi_get_value_bool(env, argv[10], &threaded) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "threaded must be a boolean");
    return nullptr;
  }
  void *buf, *s1, *s256, *slots, *arena, *out;
  size_t bufLen, s1Len, s256Len, slotsLen, arenaLen, outLen;
  uint32_t start, end, maxLine, pcrIndex;
  bool haveS1, haveS256, haveSlots, haveArena;
  if (!typedArg(env, argv[0], napi_uint8_array, false, &buf, &bufLen, "buf must be a Uint8Array") ||
      !u32Arg(env, argv[1], &start, "start must be a u32") || !u32Arg(env, argv[2], &end, "end must be a u32") ||
      !u32Arg(env, argv[3], &maxLine, "maxLine must be a u32") ||
      !u32Arg(env, argv[4], &pcrIndex, "pcrIndex must be a u32") ||
      !typedArg(env, argv[5], napi_uint8_array, true, &s1, &s1Len, "s1 must be a Uint8Array or null", &haveS1) ||
      !typedArg(env, argv[6], napi_uint8_array, true, &s256, &s256Len, "s256 must be a Uint8Array or null",
                &haveS256) ||
      !typedArg(env, argv[7], napi_int32_array, true, &slots, &slotsLen, "slots must be an Int32Array or null",
                &haveSlots) ||
      !typedArg(env, argv[8], napi_uint8_array, true, &arena, &arenaLen, "arena must be a Uint8Array or null",
                &haveArena) ||
      !typedArg(env, argv[9], napi_int32_array, false, &out, &outLen, "out must be an Int32Array")) {
    return nullptr;
  }
  if (start > end || end > bufLen || bufLen > 0x7fffffff || (haveS1 && s1Len < 40) || (haveS256 && s256Len < 64) ||
      haveSlots != haveArena ||
      (haveSlots && (slotsLen < 2 || (slotsLen / 2 & (slotsLen / 2 - 1)) != 0 || slotsLen % 2 != 0))) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "scan: bad range or buffer sizes");
    return nullptr;
  }
  Replayer* rp = replayerOf(env);
  if (rp == nullptr) {
    napi_throw_error(env, "ERR_HUEGUARD_NATIVE", "no replay state");
    return nullptr;
  }
  if (!rp->open) {
    rp->open = true;
    rp->js1 = haveS1 ? static_cast<uint8_t*>(s1) : nullptr;
    rp->js256 = haveS256 ? static_cast<uint8_t*>(s256) : nullptr;
    rp->banks.do1 = haveS1;
    rp->banks.do256 = haveS256;
    if (haveS1) std::memcpy(rp->banks.s1, s1, 40);
    if (haveS256) std::memcpy(rp->banks.s256, s256, 64);
  } else if (rp->js1 != (haveS1 ? s1 : nullptr) || rp->js256 != (haveS256 ? s256 : nullptr)) {
    napi_throw_error(env, "ERR_HUEGUARD_NATIVE", "scanAscii: another replay's buffers before sync()");
    return nullptr;
  }
  thread_local Scan sc;
  sc.b = static_cast<const uint8_t*>(buf);
  sc.maxLine = maxLine;
  sc.pcrIndex = pcrIndex;
  sc.replayer = rp;
  sc.threaded = threaded;
  sc.haveTable = haveSlots;
  sc.table.slots = static_cast<const int32_t*>(slots);
  sc.table.mask = slots != nullptr ? slotsLen / 2 - 1 : 0;
  sc.table.arena = static_cast<const uint8_t*>(arena);
  sc.table.arenaLen = arenaLen;
  int32_t* col = static_cast<int32_t*>(out);
  const size_t cap = outLen / kStride;
  if (sc.haveTable && sc.pending.size() < cap) sc.pending.resize(cap);
  Pending* look = sc.pending.data();
  const Table& t = sc.table;
  const size_t D = 4;  // lines between the stages: each line's parse and hashes outlast a cache miss
  auto probe = [&](size_t k) {
    Pending& q = look[k];
    q.record = findRecord(t, q.hash, q.name, q.nameLen, q.hash & t.mask);
    if (q.record >= 0) __builtin_prefetch(t.arena + q.record + 4 + q.nameLen);
  };
  auto compare = [&](size_t k) {
    const Pending& q = look[k];
    const int found = q.record < 0 ? kUnknown : digestListed(t, size_t(q.record), q.nameLen, q.digest, q.dLen);
    col[k * kStride + 4] |= found << kLookupShift;
  };
  size_t n = 0;
  size_t pos = start;
  while (n < cap && pos < end) {
    const void* nl = std::memchr(sc.b + pos, '\n', end - pos);
    if (nl == nullptr) break;
    const size_t e = static_cast<const uint8_t*>(nl) - sc.b;
    if (!line(sc, pos, e, col + n * kStride, look + n)) break;
    n++;
    pos = e + 1;
    if (sc.haveTable) {
      if (n > D) probe(n - 1 - D);
      if (n > 2 * D) compare(n - 1 - 2 * D);
    }
  }
  if (sc.haveTable) {
    for (size_t k = n > D ? n - D : 0; k < n; k++) probe(k);
    for (size_t k = n > 2 * D ? n - 2 * D : 0; k < n; k++) compare(k);
  }
  if (threaded) rp->submit();  // hashed while JavaScript appraises these lines
  napi_value r;
  CHECK(napi_create_uint32(env, uint32_t(n), &r));
  return r;
}

// sync() → template-hash mismatches since the last sync; the replay's buffers then hold the running values
napi_value SyncFn(napi_env env, napi_callback_info) {
  Replayer* rp = replayerOf(env);
  napi_value r;
  CHECK(napi_create_double(env, rp == nullptr ? 0 : double(rp->sync()), &r));
  return r;
}

// digest(alg, data) → Buffer: OpenSSL's digest as the scanner calls it (for tests against node:crypto)
napi_value DigestFn(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  uint32_t alg = 0;
  void* data;
  size_t len;
  if (argc < 2 || !u32Arg(env, argv[0], &alg, "alg must be 1 (sha1) or 256 (sha256)") ||
      !typedArg(env, argv[1], napi_uint8_array, false, &data, &len, "data must be a Uint8Array")) {
    return nullptr;
  }
  if (alg != 1 && alg != 256) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "alg must be 1 (sha1) or 256 (sha256)");
    return nullptr;
  }
  const size_t size = alg == 1 ? 20 : 32;
  void* outData;
  napi_value outBuf;
  CHECK(napi_create_buffer(env, size, &outData, &outBuf));
  hash(alg == 1 ? sha1 : sha256, static_cast<const uint8_t*>(data), len, static_cast<uint8_t*>(outData));
  return outBuf;
}

// murmur3(data) → u32: the table's hash, for the test that JavaScript computes the same
napi_value Murmur3Fn(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  void* data;
  size_t len;
  if (argc < 1 || !typedArg(env, argv[0], napi_uint8_array, false, &data, &len, "data must be a Uint8Array")) {
    return nullptr;
  }
  napi_value r;
  CHECK(napi_create_uint32(env, murmur3(static_cast<const uint8_t*>(data), len), &r));
  return r;
}

// ---- Looking at files for the measurer ------------------------------------------------------------------------

// lookPacked(paths, hints) → {meta, digests, templates: ArrayBuffer, errors: {}}: what measure-read.ts's
// lookPacked gives for the same batch (its packed layout: per path a 40-byte record — kind, has-stat, then size,
// mtimeNs, ctimeNs, ino as big-endian u64 at 8, 16, 24, 32 — and a 32-byte SHA-256), and for a file also the
// SHA-1 template hash of its `ima-ng` entry (measure-entry.ts: the name is the path with every byte 0x00–0x20 and
// 0x7f made `_`), which the measurer's thread would otherwise compute (~2 µs an entry); for the cases it can answer
// exactly: a regular file up to 1 MiB (open without following links, fstat, read, SHA-256, close), a directory,
// another kind of file, a path that is gone. Everything else — a link, a larger file, any other error, a file that
// grew while read — is "again" (kind 6): the measurer looks at it itself, on its own thread, as for large files.
// Why: per small file JavaScript spends ~23 µs here (open/fstat/read/close through node:fs, bigint stats, a hash
// call), of which the syscalls are a fraction; a worker thread hashes a batch in one call.
constexpr uint8_t K_FILE = 0, K_ABSENT = 3, K_DIR = 4, K_OTHER = 5, K_AGAIN = 6;
constexpr size_t LOOK_META = 40;
constexpr size_t LOOK_SMALL_MAX = size_t(1) << 20;

void putBE64(uint8_t* p, uint64_t v) {
  for (int k = 0; k < 8; k++) p[k] = uint8_t(v >> (56 - 8 * k));
}

void putStat(uint8_t* rec, const struct stat& st) {
  rec[1] = 1;
  putBE64(rec + 8, uint64_t(st.st_size));
  putBE64(rec + 16, uint64_t(st.st_mtim.tv_sec) * 1000000000ull + uint64_t(st.st_mtim.tv_nsec));
  putBE64(rec + 24, uint64_t(st.st_ctim.tv_sec) * 1000000000ull + uint64_t(st.st_ctim.tv_nsec));
  putBE64(rec + 32, uint64_t(st.st_ino));
}

// The ima-ng template hash (SHA-1 of the template data) of a file's entry: u32 40 | "sha256:" 0 | digest |
// u32 len | name 0, little-endian lengths, the name the path made safe.
void templateHash(const char* path, size_t len, const uint8_t* digest, uint8_t* out, std::vector<uint8_t>& scratch) {
  const size_t n = 48 + len + 1;
  if (scratch.size() < n) scratch.resize(n);
  uint8_t* t = scratch.data();
  const uint32_t head = 40, nameLen = uint32_t(len + 1);
  std::memcpy(t, &head, 4);  // little-endian hosts only (x86, arm64): the binding builds for those
  std::memcpy(t + 4, "sha256:\0", 8);
  std::memcpy(t + 12, digest, 32);
  std::memcpy(t + 44, &nameLen, 4);
  for (size_t k = 0; k < len; k++) {
    const uint8_t c = uint8_t(path[k]);
    t[48 + k] = (c <= 0x20 || c == 0x7f) ? uint8_t('_') : c;
  }
  t[48 + len] = 0;
  hash(sha1, t, n, out);
}

// One path: the record's kind (and stat, digest) written in place.
void lookOne(const char* path, uint8_t* rec, uint8_t* digest, std::vector<uint8_t>& buf) {
  const int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    rec[0] = (errno == ENOENT || errno == ENOTDIR) ? K_ABSENT : K_AGAIN;
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    rec[0] = K_AGAIN;
  } else if (S_ISDIR(st.st_mode)) {
    rec[0] = K_DIR;
    putStat(rec, st);
  } else if (!S_ISREG(st.st_mode)) {
    rec[0] = K_OTHER;
  } else if (uint64_t(st.st_size) > LOOK_SMALL_MAX) {
    rec[0] = K_AGAIN;
  } else {
    // read to the end (a short read of a regular file is its end); more than the limit: it grew, look again
    size_t n = 0;
    bool ok = true;
    for (;;) {
      const ssize_t r = pread(fd, buf.data() + n, buf.size() - n, off_t(n));
      if (r < 0) {
        if (errno == EINTR) continue;
        ok = false;
        break;
      }
      if (r == 0) break;
      n += size_t(r);
      if (n == buf.size()) break;
    }
    if (!ok || n > LOOK_SMALL_MAX) {
      rec[0] = K_AGAIN;
    } else {
      rec[0] = K_FILE;
      putStat(rec, st);
      hash(sha256, buf.data(), n, digest);
    }
  }
  close(fd);
}

napi_value LookPackedFn(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  size_t plen = 0, hlen = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], nullptr, 0, &plen) != napi_ok ||
      napi_get_value_string_latin1(env, argv[1], nullptr, 0, &hlen) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "lookPacked(paths: string, hints: string)");
    return nullptr;
  }
  std::vector<char> paths(plen + 1), hints(hlen + 1);
  CHECK(napi_get_value_string_utf8(env, argv[0], paths.data(), paths.size(), &plen));
  CHECK(napi_get_value_string_latin1(env, argv[1], hints.data(), hints.size(), &hlen));
  const size_t count = hlen;  // one hint a path; no paths when there are no hints
  void* metaData;
  void* digestData;
  void* templateData;
  napi_value meta, digests, templates;
  CHECK(napi_create_arraybuffer(env, count * LOOK_META, &metaData, &meta));
  CHECK(napi_create_arraybuffer(env, count * 32, &digestData, &digests));
  CHECK(napi_create_arraybuffer(env, count * 20, &templateData, &templates));
  uint8_t* m = static_cast<uint8_t*>(metaData);
  uint8_t* d = static_cast<uint8_t*>(digestData);
  uint8_t* th = static_cast<uint8_t*>(templateData);
  std::memset(m, 0, count * LOOK_META);
  std::memset(d, 0, count * 32);
  std::memset(th, 0, count * 20);
  std::vector<uint8_t> buf(LOOK_SMALL_MAX + 1), scratch(4096);
  size_t at = 0;
  for (size_t i = 0; i < count; i++) {
    const char* path = paths.data() + at;
    const size_t len = std::strlen(path);
    if (at + len > plen) {  // fewer paths than hints
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "lookPacked: fewer paths than hints");
      return nullptr;
    }
    at += len + 1;
    uint8_t* rec = m + i * LOOK_META;
    if (hints[i] != 'f') rec[0] = K_AGAIN;  // a link: the measurer reads links itself
    else lookOne(path, rec, d + i * 32, buf);
    if (rec[0] == K_FILE) templateHash(path, len, d + i * 32, th + i * 20, scratch);
  }
  napi_value out, errors;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_object(env, &errors));
  CHECK(napi_set_named_property(env, out, "meta", meta));
  CHECK(napi_set_named_property(env, out, "digests", digests));
  CHECK(napi_set_named_property(env, out, "templates", templates));
  CHECK(napi_set_named_property(env, out, "errors", errors));
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  if (!resolve(sha1, "SHA1_Init", "SHA1_Transform") || !resolve(sha256, "SHA256_Init", "SHA256_Transform")) {
    napi_throw_error(env, "ERR_HUEGUARD_NATIVE", "this node does not export OpenSSL's SHA1_/SHA256_Init and _Transform");
    return nullptr;
  }
  for (int c = 0; c < 256; c++) HEX[c] = -1;
  for (int c = 0; c < 10; c++) HEX['0' + c] = int8_t(c);
  for (int c = 0; c < 6; c++) HEX['a' + c] = HEX['A' + c] = int8_t(10 + c);
  Replayer* rp = new Replayer();
  if (napi_set_instance_data(env, rp, [](napi_env, void* data, void*) { delete static_cast<Replayer*>(data); }, nullptr) != napi_ok) {
    delete rp;
    napi_throw_error(env, "ERR_HUEGUARD_NATIVE", "napi_set_instance_data failed");
    return nullptr;
  }
  napi_value fn;
  CHECK(napi_create_function(env, "sync", NAPI_AUTO_LENGTH, SyncFn, nullptr, &fn));
  CHECK(napi_set_named_property(env, exports, "sync", fn));
  CHECK(napi_create_function(env, "scanAscii", NAPI_AUTO_LENGTH, ScanAscii, nullptr, &fn));
  CHECK(napi_set_named_property(env, exports, "scanAscii", fn));
  CHECK(napi_create_function(env, "digest", NAPI_AUTO_LENGTH, DigestFn, nullptr, &fn));
  CHECK(napi_set_named_property(env, exports, "digest", fn));
  CHECK(napi_create_function(env, "murmur3", NAPI_AUTO_LENGTH, Murmur3Fn, nullptr, &fn));
  CHECK(napi_set_named_property(env, exports, "murmur3", fn));
  CHECK(napi_create_function(env, "lookPacked", NAPI_AUTO_LENGTH, LookPackedFn, nullptr, &fn));
  CHECK(napi_set_named_property(env, exports, "lookPacked", fn));
  napi_value v;
  CHECK(napi_get_boolean(env, cpuHasShaNi(), &v));
  CHECK(napi_set_named_property(env, exports, "shaNi", v));
  CHECK(napi_create_uint32(env, 3, &v));
  CHECK(napi_set_named_property(env, exports, "abi", v));
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
