/*
 * exitcode.h - the one exit-code table shared by every cdrflow program.
 *
 * Values follow <sysexits.h> so cron wrappers and monitoring can act on them.
 * The split that matters: EXIT_TEMPFAIL/EXIT_UNAVAILABLE mean "retry later,
 * nothing is wrong with you"; USAGE/CONFIG/DATAERR/NOPERM mean "fix something
 * first".  Keep docs/exit-codes.md in sync (tests/t/t0100 checks it).
 */
#ifndef CDRFLOW_EXITCODE_H
#define CDRFLOW_EXITCODE_H

enum cdrflow_exit {
	EXIT_OK = 0,
	EXIT_USAGE = 64,       /* bad command line */
	EXIT_DATAERR = 65,     /* corrupt or malformed input data */
	EXIT_NOINPUT = 66,     /* an input file does not exist or is unreadable */
	EXIT_UNAVAILABLE = 69, /* a peer (AMI, PostgreSQL, SMTP) is unreachable: retry later */
	EXIT_SOFTWARE = 70,    /* internal error: a bug */
	EXIT_CANTCREAT = 73,   /* cannot create an output file or directory */
	EXIT_IOERR = 74,       /* I/O error while writing (disk full, EIO) */
	EXIT_TEMPFAIL = 75,    /* temporary failure (lock held by another run): retry later */
	EXIT_NOPERM = 77,      /* authentication refused by a peer */
	EXIT_CONFIG = 78,      /* bad configuration file or setting */
	EXIT_DEGRADED = 79,    /* doctor: the PBX does not send an input that changes the CDR rows */
};

#endif
