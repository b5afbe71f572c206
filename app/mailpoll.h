/* mailpoll.h: mail-poll drains IMAP mailboxes into the mail pipeline */
#ifndef TD_MAILPOLL_H
#define TD_MAILPOLL_H

struct config;

/* tallydesk mail-poll: every enabled mailbox of every tenant, once. */
int mail_poll_main(const struct config *conf, int argc, char **argv);

#endif
