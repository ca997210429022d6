/* scan.c: does any other process map or hold the protected file? Read from /proc at the moment of
 * recovery (a vhost-user backend may have mapped the memfd long after Protect).
 *
 *   /proc/PID/maps : a line naming the file prints " MAJ:MIN INO " after the offset (show_map_vma(),
 *                    fs/proc/task_mmu.c: "%08llx %02x:%02x %lu "); region->pattern holds that text.
 *   /proc/PID/fd/N : newfstatat() follows the magic link to the open file; same st_dev and st_ino.
 * A process whose entries cannot be read (another user, no CAP_SYS_PTRACE) is counted, not assumed
 * to share; HF_STRICT_SCAN makes the agent refuse then.
 */
#include "hf.h"

#define SYS(c, nr, a, b, cc, d, e, f) ((c)->sys((nr), (s64)(a), (s64)(b), (s64)(cc), (s64)(d), (s64)(e), (s64)(f)))

/* x86-64 struct stat: st_dev +0, st_ino +8, 144 bytes. linux_dirent64: d_reclen +16, d_name +19. */
#define DIRENT_RECLEN(p) (*(u16 *)((p) + 16))
#define DIRENT_NAME(p) ((p) + 19)

static u32 put_str(char *d, u32 at, const char *s)
{
  while (*s) d[at++] = *s++;
  d[at] = 0;
  return at;
}

static u32 put_dec(char *d, u32 at, u64 v)
{
  char tmp[24];
  u32 n = 0;
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) d[at++] = tmp[--n];
  d[at] = 0;
  return at;
}

static s64 parse_pid(const char *s)
{
  s64 v = 0;
  if (!*s) return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    v = v * 10 + (*s - '0');
  }
  return v;
}

/* Does buf[0..n) contain the pattern? */
static int contains(const char *buf, u64 n, const char *pat, u32 m)
{
  if (n < m) return 0;
  for (u64 i = 0; i + m <= n; i++) {
    u32 k = 0;
    while (k < m && buf[i + k] == pat[k]) k++;
    if (k == m) return 1;
  }
  return 0;
}

/* 1: /proc/PID/maps names the file; 0: it does not (or the process is gone); -1: cannot read it. */
static int maps_name_file(struct hf_ctl *c, struct hf_region *r, const char *path, char *buf, u64 cap)
{
  s64 fd = SYS(c, __NR_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
  if (fd == -ENOENT || fd == -ESRCH) return 0;
  if (fd < 0) return -1;
  u64 keep = 0;
  int found = 0, bad = 0;
  for (;;) {
    s64 n = SYS(c, __NR_read, fd, buf + keep, cap - keep, 0, 0, 0);
    if (n < 0) { bad = n != -ESRCH; break; }
    if (n == 0) break;
    u64 len = keep + (u64)n;
    if (contains(buf, len, r->pattern, r->patlen)) { found = 1; break; }
    /* a match may straddle two reads: keep the tail */
    keep = r->patlen - 1 < len ? r->patlen - 1 : len;
    for (u64 k = 0; k < keep; k++) buf[k] = buf[len - keep + k];
  }
  SYS(c, __NR_close, fd, 0, 0, 0, 0, 0);
  return found ? 1 : bad ? -1 : 0;
}

/* 1: some /proc/PID/fd/N is the file; 0: none; -1: cannot read the directory. */
static int fds_hold_file(struct hf_ctl *c, struct hf_region *r, const char *path, char *buf, u64 cap)
{
  s64 dfd = SYS(c, __NR_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
  if (dfd == -ENOENT || dfd == -ESRCH) return 0;
  if (dfd < 0) return -1;
  int res = 0;
  u64 st[18];
  for (;;) {
    s64 n = SYS(c, __NR_getdents64, dfd, buf, cap, 0, 0, 0);
    if (n < 0) { res = n == -ENOENT || n == -ESRCH ? 0 : -1; break; }
    if (n == 0) break;
    for (s64 off = 0; off < n; off += DIRENT_RECLEN(buf + off)) {
      const char *name = DIRENT_NAME(buf + off);
      if (name[0] == '.') continue;
      if (SYS(c, __NR_newfstatat, dfd, name, st, 0, 0, 0) == 0 && st[0] == r->dev && st[1] == r->ino) {
        res = 1;
        break;
      }
    }
    if (res) break;
  }
  SYS(c, __NR_close, dfd, 0, 0, 0, 0, 0);
  return res;
}

s64 hf_find_sharer(struct hf_ctl *c, struct hf_region *r, s32 *other, u32 *uninspected)
{
  char *dents = (char *)c->scan_buf;               /* 16 KiB: /proc entries */
  char *fdbuf = dents + 16 * 1024;                 /* 16 KiB: /proc/PID/fd entries */
  char *mbuf = dents + 32 * 1024;                  /* 32 KiB - 64: /proc/PID/maps text */
  char *path = (char *)c->scan_buf + HF_SCAN_BUF - 64;
  s64 dfd = SYS(c, __NR_openat, AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
  if (dfd < 0) return dfd;
  s64 n, err = 0;
  while ((n = SYS(c, __NR_getdents64, dfd, dents, 16 * 1024, 0, 0, 0)) > 0) {
    for (s64 off = 0; off < n; off += DIRENT_RECLEN(dents + off)) {
      s64 pid = parse_pid(DIRENT_NAME(dents + off));
      if (pid <= 0 || pid == c->pid) continue;
      u32 at = put_dec(path, put_str(path, 0, "/proc/"), (u64)pid);
      put_str(path, at, "/maps");
      int m = maps_name_file(c, r, path, mbuf, 32 * 1024 - 64);
      put_str(path, at, "/fd");
      int f = m == 1 ? 1 : fds_hold_file(c, r, path, fdbuf, 16 * 1024);
      if (m == 1 || f == 1) { *other = (s32)pid; goto out; }
      if (m < 0 || f < 0) (*uninspected)++;
    }
  }
  if (n < 0) err = n;
out:
  SYS(c, __NR_close, dfd, 0, 0, 0, 0, 0);
  return err;
}
