/*
 * conninfo.h - checks on a libpq connection string given on the command line.
 */
#ifndef CDRFLOW_CONNINFO_H
#define CDRFLOW_CONNINFO_H

/* 1 if the conninfo (key=value or postgresql:// URI) carries a password,
 * which would show in ps for the life of the process; else 0 (also when it
 * does not parse: connecting will say what is wrong). */
int conninfo_has_password(const char *conninfo);

/* The message every program gives when it refuses one. */
#define CONNINFO_PASSWORD_REFUSED \
	"--db must not carry a password (it would show in ps): use PGPASSWORD, PGPASSFILE/~/.pgpass or the config file"

#endif
