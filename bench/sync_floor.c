// The floor under a durable commit on this machine, without any database:
// what one small write plus fdatasync costs, alone and with every CPU busy,
// and how many device requests each sync makes depending on what the file
// and its neighbours went through. Built and run by bench/sync_floor.mjs
// (`npm run bench:sync-floor`); Linux only (it reads /proc/diskstats).
//
//   sync_floor DIR N
//
// Prints one JSON object per measurement on stdout.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define RECORD 851           // a 4-put commit record of the concurrency benchmark
#define PAGES (8 * 16384)    // the pages such a commit writes to the data file
#define PREALLOC (256 << 10) // LOG_PREALLOC_BYTES (spec/file_format_v1.md §8.5)

static char dev_name[64];

static void die(const char *what) {
  fprintf(stderr, "sync_floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

// The block device holding `path`, as /proc/diskstats names it (a partition's
// requests are counted on it too).
static void find_device(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) die("stat");
  char link[128], target[512];
  snprintf(link, sizeof link, "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) die("readlink /sys/dev/block");
  target[n] = 0;
  const char *slash = strrchr(target, '/');
  snprintf(dev_name, sizeof dev_name, "%s", slash ? slash + 1 : target);
}

// Writes completed plus flushes completed on the device so far.
static long long device_requests(void) {
  FILE *f = fopen("/proc/diskstats", "r");
  if (!f) die("/proc/diskstats");
  char line[512];
  long long total = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned ma, mi;
    char name[64];
    long long v[17] = {0};
    int got = sscanf(line, " %u %u %63s %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &ma, &mi, name, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13], &v[14], &v[15], &v[16]);
    if (got < 10 || strcmp(name, dev_name) != 0) continue;
    // Field 5 (v[4]): writes completed; field 19 (v[15]): flushes completed (Linux 5.5+).
    total = v[4] + (got >= 19 ? v[15] : 0);
  }
  fclose(f);
  if (total < 0) {
    errno = ENOENT;
    die("device not in /proc/diskstats");
  }
  return total;
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static atomic_int stop_spinning;

static void *spin(void *arg) {
  if (arg) {
    struct sched_param p = {0};
    sched_setscheduler(0, SCHED_IDLE, &p); // this thread only (Linux: per-thread policy)
  }
  volatile unsigned long x = 0;
  while (!atomic_load(&stop_spinning)) x++;
  return NULL;
}

enum extra { NONE, FSTAT_DATA, LSEEK_DATA };

// n commits: optionally 8 pages to the data file, then a record to the log
// (appended, or over preallocated zeros), then fdatasync of the log.
static void run(const char *dir, int n, const char *name, int prealloc, int pages, enum extra extra, int spinners, int idle) {
  char log_path[512], data_path[512];
  snprintf(log_path, sizeof log_path, "%s/log", dir);
  snprintf(data_path, sizeof data_path, "%s/data", dir);
  unlink(log_path);
  unlink(data_path);
  int log = open(log_path, O_RDWR | O_CREAT, 0644), data = open(data_path, O_RDWR | O_CREAT, 0644);
  if (log < 0 || data < 0) die("open");
  static char record[RECORD], page_bytes[PAGES], zeros[PREALLOC];
  memset(record, 7, sizeof record);
  memset(page_bytes, 3, sizeof page_bytes);
  long long reach = 0;
  pthread_t threads[16];
  atomic_store(&stop_spinning, 0);
  for (int i = 0; i < spinners; i++) pthread_create(&threads[i], NULL, spin, idle ? (void *)1 : NULL);
  double *lat = malloc(sizeof(double) * n);
  long long before = device_requests();
  double start = now_us();
  for (int i = 0; i < n; i++) {
    double t0 = now_us();
    if (pages && pwrite(data, page_bytes, PAGES, (off_t)i * PAGES) != PAGES) die("pwrite data");
    if (extra == FSTAT_DATA) {
      struct stat st;
      fstat(data, &st);
    } else if (extra == LSEEK_DATA) lseek(data, 0, SEEK_END);
    off_t at = (off_t)i * RECORD;
    if (pwrite(log, record, RECORD, at) != RECORD) die("pwrite log");
    if (prealloc && at + RECORD > reach) {
      // In 4 KiB writes, as LogFile does (LOG_PREALLOC_CHUNK): Linux sizes page-cache
      // folios by the write that fills them, and a record in a large folio syncs slower.
      for (int z = 0; z < PREALLOC; z += 4096)
        if (pwrite(log, zeros, 4096, at + RECORD + z) != 4096) die("pwrite zeros");
      reach = at + RECORD + PREALLOC;
    }
    if (fdatasync(log) != 0) die("fdatasync");
    lat[i] = now_us() - t0;
  }
  double secs = (now_us() - start) / 1e6;
  long long requests = device_requests() - before;
  atomic_store(&stop_spinning, 1);
  for (int i = 0; i < spinners; i++) pthread_join(threads[i], NULL);
  qsort(lat, n, sizeof(double), cmp);
  printf("{\"case\":\"%s\",\"commits\":%d,\"commits_per_sec\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"requests_per_sync\":%.2f}\n", name, n, n / secs, lat[n / 2], lat[(int)(n * 0.99)], (double)requests / n);
  fflush(stdout);
  free(lat);
  close(log);
  close(data);
  unlink(log_path);
  unlink(data_path);
}

// One round of a commit's CPU work without its I/O: copy three 16 KiB pages
// (a leaf, a branch and a root made copy-on-write) and read 64 scattered
// cache lines of a 4 MiB working set (searches, the page cache's map).
static unsigned char arena[4 << 20];
#define WORK_ROUNDS 16 // about 10 µs back to back here: a 1-put commit's CPU is 24 µs
static unsigned char copies[3 * 16384];

static unsigned long commit_work(unsigned long seed) {
  unsigned long sum = 0;
  for (int p = 0; p < 3; p++) {
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    memcpy(copies + p * 16384, arena + (seed >> 33) % (sizeof arena - 16384), 16384);
  }
  for (int i = 0; i < 64; i++) {
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    sum += arena[(seed >> 33) % sizeof arena];
  }
  return sum + copies[seed % sizeof copies];
}

// The same CPU work timed alone (back to back), and timed right after each
// small write + fdatasync of a log: a thread that slept in the sync finds its
// caches and its core colder, so the work costs more (spec/file_format_v1.md
// §8.5's note on the 1-put floor). The p50/p99 are of the work alone.
static void work_after_sync(const char *dir, int n, int sync) {
  char log_path[512];
  snprintf(log_path, sizeof log_path, "%s/log", dir);
  unlink(log_path);
  int log = open(log_path, O_RDWR | O_CREAT, 0644);
  if (log < 0) die("open");
  static char record[RECORD], zeros[PREALLOC];
  memset(record, 7, sizeof record);
  memset(arena, 5, sizeof arena);
  for (int z = 0; z < PREALLOC; z += 4096)
    if (pwrite(log, zeros, 4096, z) != 4096) die("pwrite zeros");
  if (fsync(log) != 0) die("fsync");
  double *lat = malloc(sizeof(double) * n);
  volatile unsigned long sink = 0;
  long long before = device_requests();
  double start = now_us();
  for (int i = 0; i < n; i++) {
    if (sync) {
      if (pwrite(log, record, RECORD, (off_t)(i % (PREALLOC / RECORD - 1)) * RECORD) != RECORD) die("pwrite log");
      if (fdatasync(log) != 0) die("fdatasync");
    }
    double t0 = now_us();
    for (int k = 0; k < WORK_ROUNDS; k++) sink += commit_work((unsigned long)(i * WORK_ROUNDS + k) * 2654435761UL);
    lat[i] = now_us() - t0;
  }
  double secs = (now_us() - start) / 1e6;
  long long requests = device_requests() - before;
  qsort(lat, n, sizeof(double), cmp);
  printf("{\"case\":\"%s\",\"commits\":%d,\"commits_per_sec\":%.0f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"requests_per_sync\":%.2f}\n", sync ? "commit's CPU work, right after each fdatasync" : "commit's CPU work, back to back", n, n / secs, lat[n / 2], lat[(int)(n * 0.99)], (double)requests / n);
  fflush(stdout);
  free(lat);
  close(log);
  unlink(log_path);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: sync_floor DIR N\n");
    return 2;
  }
  const char *dir = argv[1];
  int n = atoi(argv[2]);
  find_device(dir);
  int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus > 16) cpus = 16;
  // Device requests per sync: what grows the log, and what reads the data file's change time.
  run(dir, n, "append", 0, 1, NONE, 0, 0);
  run(dir, n, "prealloc", 1, 1, NONE, 0, 0);
  run(dir, n, "prealloc + fstat(data)", 1, 1, FSTAT_DATA, 0, 0);
  run(dir, n, "prealloc + lseek(data)", 1, 1, LSEEK_DATA, 0, 0);
  // The writer ratio's floor: the same commits with every CPU kept busy by spinning threads.
  run(dir, n, "alone", 1, 1, NONE, 0, 0);
  run(dir, n, "every CPU busy", 1, 1, NONE, cpus, 0);
  run(dir, n, "every CPU busy at SCHED_IDLE", 1, 1, NONE, cpus, 1);
  // What a sync costs the CPU work after it (the 1-put commit's floor is the sync alone).
  work_after_sync(dir, n, 0);
  work_after_sync(dir, n, 1);
  return 0;
}
