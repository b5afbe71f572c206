/* outbox.h: mail leaves through the outbox (SMTP with libcurl, DKIM) */
#ifndef TD_OUTBOX_H
#define TD_OUTBOX_H

struct config;

/* tallydesk outbox-send [--once]: the exit status. */
int outbox_send_main(const struct config *conf, int argc, char **argv);

/* tallydesk mail-domain add|show: sending domains, DKIM keys, DNS records */
int outbox_domain_main(const struct config *conf, int argc, char **argv);

/* tallydesk dkim-verify --key-file FILE < message (exit 0: it verifies) */
int outbox_dkim_verify_main(int argc, char **argv);

#endif
