/* mailingest.h: inbound mail becomes tickets and replies (one pipeline) */
#ifndef TD_MAILINGEST_H
#define TD_MAILINGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct config;
struct mailauth_env;
struct req;

/* sendmail's exit statuses (sysexits.h), for an MTA pipe. */
#define MAIL_EX_OK	 0
#define MAIL_EX_DATAERR	 65 /* can never be accepted (kept for review) */
#define MAIL_EX_NOUSER	 67 /* no such tenant */
#define MAIL_EX_TEMPFAIL 75 /* try again later: nothing was kept */

struct mail_result {
	const char *outcome; /* mail_messages.outcome, or "duplicate" */
	int64_t message_row; /* mail_messages.id */
	int64_t ticket_id;   /* 0 when none */
	int64_t ticket_number;
	bool rejected; /* stored, but never to be accepted */
};

/*
 * Runs one message through the pipeline inside the request's open,
 * tenant-bound transaction: dedupe by Message-ID, loop and storm
 * protection, threading, routing, the ticket or comment, attachments,
 * the raw copy. A database error is returned (the caller rolls back and
 * the MTA retries); every message that parses at all is TD_OK.
 */
enum td_err mail_ingest(struct req *r, const unsigned char *raw, size_t len,
			struct mail_result *res);

/*
 * mail_ingest with what the SMTP transaction said (the connecting
 * address, envelope sender, HELO) for our own SPF check; env NULL or its
 * fields NULL: read from the topmost Received header and Return-Path.
 */
enum td_err mail_ingest_env(struct req *r, const unsigned char *raw,
			    size_t len, const struct mailauth_env *env,
			    struct mail_result *res);

/* tallydesk mail-ingest --tenant SLUG [--batch DIR] [--dry-run]
 * [--client-ip IP] [--sender ADDR] [--helo NAME] */
int mail_ingest_main(const struct config *conf, int argc, char **argv);

#endif
