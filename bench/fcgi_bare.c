/* fcgi_bare.c: the ceiling — a bare libfcgi responder that answers every
 * request with the bytes of one file, with the same pre-fork shape as
 * tallydesk serve. usage: fcgi_bare SOCKET FILE WORKERS */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

static char *slurp(const char *path, long *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0)
		return NULL;
	*len = ftell(f);
	rewind(f);
	buf = malloc((size_t)*len);
	if (buf == NULL || fread(buf, 1, (size_t)*len, f) != (size_t)*len)
		return NULL;
	fclose(f);
	return buf;
}

static void serve(int fd, const char *body, long len)
{
	FCGX_Request r;

	FCGX_InitRequest(&r, fd, 0);
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_FPrintF(r.out,
			     "Status: 200 OK\r\nContent-Type: text/html; "
			     "charset=utf-8\r\nContent-Length: %ld\r\n\r\n",
			     len);
		FCGX_PutStr(body, (int)len, r.out);
		FCGX_Finish_r(&r);
	}
}

int main(int argc, char **argv)
{
	long len = 0;
	char *body;
	int fd, i, n;

	if (argc != 4) {
		fprintf(stderr, "usage: fcgi_bare SOCKET FILE WORKERS\n");
		return 2;
	}
	body = slurp(argv[2], &len);
	if (body == NULL) {
		perror(argv[2]);
		return 1;
	}
	n = atoi(argv[3]);
	FCGX_Init();
	unlink(argv[1]);
	umask(0);
	fd = FCGX_OpenSocket(argv[1], 1024);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	for (i = 0; i < n; i++) {
		if (fork() == 0) {
			serve(fd, body, len);
			_exit(0);
		}
	}
	signal(SIGTERM, SIG_DFL);
	while (wait(NULL) > 0)
		;
	return 0;
}
