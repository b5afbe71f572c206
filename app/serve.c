/* serve.c: pre-fork master and the FastCGI accept loop of a worker */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "arena.h"
#include "conf.h"
#include "db.h"
#include "log.h"
#include "mustache.h"
#include "req.h"
#include "serve.h"
#include "view.h"
#include "banned.h"

#define SERVE_MAX_WORKERS   256
#define SERVE_DRAIN_SECONDS 30

static volatile sig_atomic_t got_term, got_hup, got_chld;

static void on_signal(int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		got_term = 1;
		break;
	case SIGHUP:
		got_hup = 1;
		break;
	case SIGCHLD:
		got_chld = 1;
		break;
	default:
		break;
	}
}

/* No SA_RESTART: a signal must interrupt accept() and sigsuspend(). */
static void catch (int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The listening socket: inherited from systemd, or our own unix socket. */
static int open_socket(const struct config *conf, bool *owned)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	mode_t old;
	int fd;

	*owned = false;
	if (pid != NULL && fds != NULL && strtol(pid, NULL, 10) == getpid() &&
	    strtol(fds, NULL, 10) >= 1) {
		log_info("using the socket systemd passed (fd 3)");
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		return 3;
	}
	if (unlink(conf->socket) != 0 && errno != ENOENT) {
		log_error("cannot remove stale socket '%s': %s", conf->socket,
			  strerror(errno));
		return -1;
	}
	old = umask(0777 & ~conf->socket_mode);
	fd = FCGX_OpenSocket(conf->socket, 1024);
	umask(old);
	if (fd < 0) {
		log_error("cannot listen on '%s': %s", conf->socket,
			  strerror(errno));
		return -1;
	}
	if (chmod(conf->socket, conf->socket_mode) != 0)
		log_warn("cannot chmod '%s': %s", conf->socket,
			 strerror(errno));
	*owned = true;
	log_info("listening on %s", conf->socket);
	return fd;
}

/* Workers wait in pselect(); accept() must not block one that lost the race. */
static bool set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL, 0);

	return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

/*
 * Ends the request. When its input has been read to the end (a GET's is an
 * empty record that came with the parameters), the connection is simply
 * closed: libfcgi would otherwise shut it down and then read until nginx
 * closes its side, three system calls and a wait on nginx each request.
 * That drain exists for input left unread, which would reset nginx's end
 * of the socket before it read the response; a request whose input is not
 * all read within a few KB still gets it.
 */
static void finish(FCGX_Request *fr)
{
	char rest[4096];
	int i;

	for (i = 0; i < 4 && FCGX_HasSeenEOF(fr->in) != EOF; i++)
		if (FCGX_GetStr(rest, (int)sizeof(rest), fr->in) <= 0)
			break;
	if (FCGX_HasSeenEOF(fr->in) == EOF && FCGX_GetError(fr->in) == 0)
		FCGX_Detach(fr);
	FCGX_Finish_r(fr);
}

/*
 * A worker: accept and serve until SIGTERM, finishing the request in hand.
 * SIGTERM stays blocked except while the worker waits in epoll_pwait()
 * for a connection: libfcgi drops a connection it has accepted when a
 * signal interrupts it (its AF_UNIX readiness check gives up on EINTR), so
 * a signal must never reach it inside FCGX_Accept_r. EPOLLEXCLUSIVE wakes
 * one idle worker per connection rather than all of them; the listening
 * socket is non-blocking, so a worker that still loses the race gets
 * EAGAIN and goes back to waiting instead of blocking in accept().
 */
static int worker_main(const struct config *conf, int fd, int no)
{
	struct worker_ctx ctx;
	struct db db;
	struct arena *views_arena = arena_new();
	struct mustache_set *views = NULL;
	FCGX_Request fr;
	sigset_t block, waitmask;
	struct epoll_event ev;
	char err[512];
	int rc, ep;

	signal(SIGCHLD, SIG_DFL);
	signal(SIGHUP, SIG_IGN); /* the master replaces workers on reload */
	signal(SIGINT, SIG_IGN); /* a terminal's ^C goes to the master */
	catch (SIGTERM);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_SETMASK, &block, NULL);
	sigemptyset(&waitmask);
	if (view_load(conf->views_dir, views_arena, &views, err, sizeof(err)) !=
	    TD_OK) {
		log_error("worker %d: %s", no, err);
		arena_free(views_arena);
		return 1;
	}
	db_init(&db, conf->database_url, conf->db_timeout);
	if (db_ensure(&db) != TD_OK)
		log_warn("worker %d: database not reachable yet: %s", no,
			 db.errmsg);
	memset(&ctx, 0, sizeof(ctx));
	ctx.conf = conf;
	ctx.db = &db;
	ctx.views = views;
	ctx.worker_no = no;
	ctx.arena = arena_new();
	req_json_in_arena();
	req_new_process();
	ep = epoll_create1(EPOLL_CLOEXEC);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		log_error("worker %d: cannot watch the socket: %s", no,
			  strerror(errno));
		got_term = 1;
	}
	FCGX_InitRequest(&fr, fd, FCGI_FAIL_ACCEPT_ON_INTR);
	while (!got_term) {
		if (epoll_pwait(ep, &ev, 1, -1, &waitmask) < 0) {
			if (errno == EINTR)
				continue;
			log_error("worker %d: cannot wait for connections: %s",
				  no, strerror(errno));
			break;
		}
		rc = FCGX_Accept_r(&fr);
		if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR)
			continue; /* another worker took it */
		if (rc < 0) {
			log_error("worker %d: accept failed: %s", no,
				  strerror(-rc));
			break;
		}
		req_run(&ctx, &fr);
		finish(&fr);
	}
	FCGX_Free(&fr, 0);
	arena_free(ctx.arena);
	if (ep >= 0)
		close(ep);
	db_release(&db);
	arena_free(views_arena);
	return 0;
}

struct pool {
	pid_t pids[SERVE_MAX_WORKERS];
	time_t started[SERVE_MAX_WORKERS];
	int n;
};

static pid_t spawn(const struct config *conf, int fd, int no)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("cannot fork worker %d: %s", no, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int rc = worker_main(conf, fd, no);

		fflush(NULL);
		_exit(rc);
	}
	return pid;
}

static void fill_pool(struct pool *p, const struct config *conf, int fd)
{
	int i;

	for (i = 0; i < p->n; i++) {
		if (p->pids[i] > 0)
			continue;
		p->pids[i] = spawn(conf, fd, i);
		p->started[i] = time(NULL);
	}
}

/*
 * Reaps exited workers. Unless stopping, an exit is a crash: it is logged,
 * and a worker that died young makes the master pause before restarting.
 */
static void reap(struct pool *p, struct pool *retired, bool stopping)
{
	pid_t pid;
	int status, i;
	bool crashloop = false;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < retired->n; i++)
			if (retired->pids[i] == pid)
				retired->pids[i] = 0;
		for (i = 0; i < p->n; i++) {
			if (p->pids[i] != pid)
				continue;
			p->pids[i] = 0;
			if (stopping)
				continue;
			if (WIFSIGNALED(status))
				log_warn(
					"worker %d (pid %ld) killed by signal %d; restarting",
					i, (long)pid, WTERMSIG(status));
			else
				log_warn(
					"worker %d (pid %ld) exited with %d; restarting",
					i, (long)pid, WEXITSTATUS(status));
			if (time(NULL) - p->started[i] < 1)
				crashloop = true;
		}
	}
	if (crashloop)
		sleep_ms(500);
}

static int live(const struct pool *p)
{
	int i, n = 0;

	for (i = 0; i < p->n; i++)
		n += p->pids[i] > 0;
	return n;
}

static void signal_all(const struct pool *p, int sig)
{
	int i;

	for (i = 0; i < p->n; i++)
		if (p->pids[i] > 0)
			kill(p->pids[i], sig);
}

/* Waits up to SERVE_DRAIN_SECONDS for workers to finish, then kills them. */
static void drain(struct pool *p, struct pool *retired)
{
	struct pool none = { .n = 0 };
	time_t deadline = time(NULL) + SERVE_DRAIN_SECONDS;

	signal_all(p, SIGTERM);
	signal_all(retired, SIGTERM);
	while ((live(p) > 0 || live(retired) > 0) && time(NULL) < deadline) {
		reap(p, retired, true);
		reap(retired, &none, true);
		if (live(p) > 0 || live(retired) > 0)
			sleep_ms(10);
	}
	signal_all(p, SIGKILL);
	signal_all(retired, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
}

/*
 * SIGHUP: re-read the config (keeping the old one if the new is invalid),
 * then start fresh workers and ask the old ones to finish what they hold.
 * Both generations accept on the same socket, so nothing is dropped.
 */
static void reload(struct config *conf, const char *path, bool required,
		   struct pool *p, struct pool *retired, int fd)
{
	struct config fresh;
	char err[512];
	int i;

	if (!conf_load(&fresh, path, required, err, sizeof(err))) {
		log_error("reload refused, keeping the running config: %s",
			  err);
		return;
	}
	if (strcmp(fresh.socket, conf->socket) != 0)
		log_warn("reload: 'socket' changes need a restart; keeping %s",
			 conf->socket);
	signal_all(retired, SIGTERM);
	*retired = *p;
	conf_release(conf);
	*conf = fresh;
	log_set_level(conf->log_level);
	memset(p, 0, sizeof(*p));
	p->n = conf->workers;
	fill_pool(p, conf, fd);
	for (i = 0; i < retired->n; i++)
		if (retired->pids[i] > 0)
			kill(retired->pids[i], SIGTERM);
	log_info("reloaded: %d workers", p->n);
}

int serve_run(struct config *conf, const char *config_path, bool required)
{
	struct pool p, retired;
	sigset_t mask, old;
	bool owned;
	int fd;

	/* Ours before FCGX_Init, or libfcgi installs a handler that eats
	 * SIGTERM. */
	catch (SIGTERM);
	catch (SIGINT);
	catch (SIGHUP);
	catch (SIGCHLD);
	signal(SIGPIPE, SIG_IGN);
	if (FCGX_Init() != 0) {
		log_error("cannot initialise libfcgi");
		return 1;
	}
	fd = open_socket(conf, &owned);
	if (fd < 0)
		return 1;
	if (!set_nonblocking(fd)) {
		log_error("cannot make the socket non-blocking: %s",
			  strerror(errno));
		return 1;
	}
	memset(&p, 0, sizeof(p));
	memset(&retired, 0, sizeof(retired));
	p.n = conf->workers;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &old);
	fill_pool(&p, conf, fd);
	log_info("tallydesk %s serving with %d workers", PACKAGE_VERSION, p.n);
	while (!got_term) {
		sigsuspend(&old);
		if (got_chld) {
			got_chld = 0;
			reap(&p, &retired, false);
		}
		if (got_hup) {
			got_hup = 0;
			reload(conf, config_path, required, &p, &retired, fd);
		}
		if (!got_term)
			fill_pool(&p, conf, fd);
	}
	log_info("shutting down: draining %d workers", live(&p));
	drain(&p, &retired);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (owned)
		unlink(conf->socket);
	close(fd);
	log_info("stopped");
	return 0;
}
