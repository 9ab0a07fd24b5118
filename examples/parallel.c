/*
 * parallel.c - hash every file under a directory on a relay pool, with a
 * live view: one line per running task, updated in place, and an overall
 * bar. Ctrl-C cancels everything cleanly and prints what finished.
 *
 *     parallel [DIR] [--threads N]
 *
 * What it shows of relay:
 *   - a pool of its own ("hash", one thread per CPU unless --threads) and
 *     one task per file, submitted with RELAY_TASK_DEFINE's checked kind;
 *   - each task reports progress as the latest value (a read loop reports
 *     after every 64 KiB: a copy each time, not an event) and its SHA-256
 *     as its result, to a view object living in the main thread;
 *   - Ctrl-C: the signal handler writes a byte to a pipe (all a handler
 *     may do), a relay_watcher in the main loop reads it and cancels every
 *     task: queued ones end at once without running, running ones see
 *     relay_task_cancelled() between two reads;
 *   - the main thread only draws: its loop runs the callbacks and a 20 Hz
 *     redraw timer.
 *
 * Output: "<sha256>  <path>" for each file hashed, in path order, on
 * stdout (as sha256sum prints them: `sha256sum` can check them); the live
 * view and the summary on stderr (the view only when stderr is a
 * terminal). Exit status 0, 1 if a file could not be read, 130 (as a
 * shell reports SIGINT) if cancelled.
 *
 * SHA-256 is written here (FIPS 180-4) so the example needs nothing but
 * relay.
 */
#define _GNU_SOURCE /* nftw, sigaction, pipe, pthread_getname_np */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <relay.h>

/* ---- SHA-256 ---- */

typedef struct sha256 {
	uint32_t h[8];
	uint64_t bytes;
	unsigned char block[64];
	size_t used;
} sha256;

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void sha256_block(sha256 *s, const unsigned char *p)
{
	uint32_t w[64], v[8];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, s->h, sizeof v);
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
			      ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i];
		uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
			      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		memmove(v + 1, v, 7 * sizeof *v);
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		s->h[i] += v[i];
}

static void sha256_init(sha256 *s)
{
	static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	memcpy(s->h, h0, sizeof h0);
	s->bytes = 0;
	s->used = 0;
}

static void sha256_update(sha256 *s, const unsigned char *p, size_t n)
{
	s->bytes += n;
	while (n) {
		size_t take = 64 - s->used < n ? 64 - s->used : n;
		memcpy(s->block + s->used, p, take);
		s->used += take;
		p += take;
		n -= take;
		if (s->used == 64) {
			sha256_block(s, s->block);
			s->used = 0;
		}
	}
}

static void sha256_final(sha256 *s, unsigned char out[32])
{
	uint64_t bits = s->bytes * 8;
	unsigned char pad = 0x80, zero = 0, len[8];
	sha256_update(s, &pad, 1);
	while (s->used != 56)
		sha256_update(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)(bits >> (56 - 8 * i));
	sha256_update(s, len, 8);
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 4; j++)
			out[4 * i + j] = (unsigned char)(s->h[i] >> (24 - 8 * j));
}

/* ---- the files ---- */

typedef struct digest { unsigned char bytes[32]; } digest;
typedef struct hash_progress {
	uint64_t done, total;
	char thread[16];       /* the pool thread hashing it */
} hash_progress;

typedef struct file {
	char *path;
	uint64_t size;
	relay_task *task;      /* until its end */
	int status;            /* 1: not ended yet; else the task's status */
	bool running;          /* has reported: it is on a thread */
	hash_progress progress;
	digest sum;
} file;

static file *files;
static size_t nfiles, cap;
static volatile sig_atomic_t interrupted;   /* Ctrl-C: also stops the directory walk */

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (interrupted)
		return 1;   /* Ctrl-C while walking: hash nothing more */
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	if (nfiles == cap) {
		cap = cap ? 2 * cap : 256;
		file *grown = realloc(files, cap * sizeof *files);
		if (!grown)
			return -1;
		files = grown;
	}
	files[nfiles++] = (file){ .path = strdup(path), .size = (uint64_t)st->st_size, .status = 1 };
	return files[nfiles - 1].path ? 0 : -1;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const file *)a)->path, ((const file *)b)->path);
}

/* ---- the view: an object in the main thread ---- */

typedef struct view {
	relay_object base;
	size_t ended, ok, failed, cancelled;
	uint64_t bytes_done, bytes_total;
	bool tty, cancelling;
	int drawn;             /* lines drawn last time */
	int sigfd;             /* the pipe's read end */
	uint64_t start_ns;
} view;
static const relay_class view_class = { .name = "view", .size = sizeof(view) };

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bar(char *out, size_t width, double fraction)
{
	size_t fill = (size_t)(fraction * (double)width + 0.5);
	for (size_t i = 0; i < width; i++)
		out[i] = i < fill ? '#' : '.';
	out[width] = '\0';
}

static void redraw(view *v)
{
	if (!v->tty)
		return;
	if (v->drawn)
		fprintf(stderr, "\033[%dA", v->drawn);
	int lines = 0;
	char b[41];
	for (size_t i = 0; i < nfiles; i++) {
		file *f = &files[i];
		if (f->status != 1 || !f->running)
			continue;
		double fr = f->size ? (double)f->progress.done / (double)f->size : 1.0;
		bar(b, 20, fr);
		const char *name = f->path;
		size_t len = strlen(name);
		if (len > 40)
			name += len - 40;
		fprintf(stderr, "\r\033[2K  %-14s [%s] %3.0f%%  %s\n", f->progress.thread, b,
			fr * 100, name);
		lines++;
	}
	double all = v->bytes_total ? (double)v->bytes_done / (double)v->bytes_total : 1.0;
	bar(b, 40, all);
	fprintf(stderr, "\r\033[2K[%s] %3.0f%%  %zu/%zu files  %.1f MiB%s\n", b, all * 100,
		v->ended, nfiles, (double)v->bytes_done / 1048576.0,
		v->cancelling ? "  cancelling..." : "");
	lines++;
	/* lines left over from a longer frame are cleared */
	for (int i = lines; i < v->drawn; i++)
		fprintf(stderr, "\r\033[2K\n");
	if (v->drawn > lines)
		fprintf(stderr, "\033[%dA", v->drawn - lines);
	v->drawn = lines;
	fflush(stderr);
}

static void on_tick(view *v)
{
	redraw(v);
}

/* ---- the task: runs on a pool thread ---- */

static int hash_run(relay_task *task, file *f)
{
	hash_progress p = { 0, f->size, "" };
	pthread_getname_np(pthread_self(), p.thread, sizeof p.thread);
	relay_task_progress(task, &p);
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	sha256 s;
	sha256_init(&s);
	unsigned char buf[1 << 16];
	int rc = 0;
	for (;;) {
		if (relay_task_cancelled(task)) {   /* a relaxed load: cheap */
			rc = -ECANCELED;
			break;
		}
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		sha256_update(&s, buf, (size_t)n);
		p.done += (uint64_t)n;
		relay_task_progress(task, &p);   /* the latest value wins */
	}
	close(fd);
	if (rc == 0) {
		digest d;
		sha256_final(&s, d.bytes);
		relay_task_set_result(task, &d);
	}
	return rc;
}

/* ---- its reports: the main thread ---- */

static void hash_progress_cb(view *v, file *f, const hash_progress *p)
{
	v->bytes_done += p->done - f->progress.done;
	f->progress = *p;
	f->running = true;
}

static void hash_finished(view *v, file *f, int status, const digest *d)
{
	if (status == 0 && d) {
		f->sum = *d;
		v->ok++;
		v->bytes_done += f->size - f->progress.done;   /* grown files aside */
		f->progress.done = f->size;
	} else if (status == -ECANCELED) {
		v->cancelled++;
	} else {
		v->failed++;
		if (v->tty)
			redraw(v);
		fprintf(stderr, "\r\033[2K%s: %s\n", f->path, strerror(-status));
		v->drawn = 0;
	}
	f->status = status;
	relay_task_release(f->task);
	f->task = NULL;
	if (++v->ended == nfiles) {
		redraw(v);
		relay_main_quit();
	}
}

RELAY_TASK_DEFINE(hash_task, view, file, hash_progress, digest, hash_run, hash_progress_cb,
		  hash_finished, NULL);

/* ---- Ctrl-C ---- */

static int sig_pipe[2] = { -1, -1 };

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
	int saved = errno;
	char c = 1;
	if (write(sig_pipe[1], &c, 1) < 0) {   /* all a handler may do */
	}
	errno = saved;
}

static void on_sigint_byte(view *v, const int *fd)
{
	char c;
	while (read(*fd, &c, 1) < 0 && errno == EINTR)
		;
	if (v->cancelling)
		return;
	v->cancelling = true;
	for (size_t i = 0; i < nfiles; i++)
		if (files[i].task)
			relay_task_cancel(files[i].task);   /* queued: ends now; running: flagged */
	redraw(v);
}

static int usage(void)
{
	fprintf(stderr, "usage: parallel [DIR] [--threads N]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *dir = ".";
	int threads = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (argv[i][0] == '-')
			return usage();
		else
			dir = argv[i];
	}
	if (threads < 0)
		return usage();
	/* The handler first: a Ctrl-C during the walk counts too. */
	if (pipe(sig_pipe) == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_sigint;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
	}
	if (nftw(dir, collect, 32, FTW_PHYS) < 0) {
		fprintf(stderr, "parallel: cannot walk %s: %s\n", dir, strerror(errno));
		return 1;
	}
	qsort(files, nfiles, sizeof *files, by_path);
	fprintf(stderr, "parallel: %zu files to hash under %s\n", nfiles, dir);

	view *v;
	if (relay_object_new(&v, &view_class, NULL) < 0)
		return 1;
	v->tty = isatty(STDERR_FILENO);
	v->start_ns = now_ns();
	for (size_t i = 0; i < nfiles; i++)
		v->bytes_total += files[i].size;

	/* Ctrl-C: the handler writes the pipe, watched by the main loop (a
	 * Ctrl-C during the walk is read there at once). */
	relay_watcher *sigw = NULL;
	if (sig_pipe[0] >= 0 && relay_watcher_create(sig_pipe[0], RELAY_WATCH_READ, v, &sigw) == 0)
		relay_connect(sigw, activated, v, on_sigint_byte);
	relay_timer *tick = NULL;
	if (v->tty && relay_timer_create(v, &tick) == 0) {
		relay_connect(tick, timeout, v, on_tick);
		relay_timer_start(tick, 50);
	}

	relay_pool *pool;
	relay_pool_config cfg = { .name = "hash", .max_threads = threads };
	if (relay_pool_create(&cfg, &pool) < 0)
		return 1;
	for (size_t i = 0; i < nfiles; i++)
		if (relay_task_submit(pool, &hash_task, v, &files[i], 0, &files[i].task) < 0) {
			files[i].status = -ENOMEM;
			v->failed++;
			v->ended++;
		}
	relay_pool_stats ps;
	relay_pool_stats_get(pool, &ps);
	if (v->ended < nfiles)
		relay_main_run(5000);   /* until the last file's end */

	double secs = (double)(now_ns() - v->start_ns) / 1e9;
	relay_pool_stats_get(pool, &ps);
	relay_pool_destroy(pool);   /* nothing runs any more: returns at once */
	for (size_t i = 0; i < nfiles; i++) {
		if (files[i].status == 0) {
			for (int j = 0; j < 32; j++)
				printf("%02x", files[i].sum.bytes[j]);
			printf("  %s\n", files[i].path);
		}
		free(files[i].path);
	}
	fprintf(stderr, "parallel: %zu of %zu files hashed (%.1f MiB) in %.2f s on %d threads; "
		"%zu failed, %zu cancelled\n", v->ok, nfiles, (double)v->bytes_done / 1048576.0, secs,
		ps.peak_threads, v->failed, v->cancelled);
	bool cancelled = v->cancelling || interrupted;
	size_t failed = v->failed;
	relay_object_destroy(v);   /* its watcher and timer with it */
	if (sig_pipe[0] >= 0) {
		close(sig_pipe[0]);
		close(sig_pipe[1]);
	}
	free(files);
	relay_release_caches();
	return cancelled ? 130 : failed ? 1 : 0;
}
