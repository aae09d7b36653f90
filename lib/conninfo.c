#include "conninfo.h"

#include <libpq-fe.h>
#include <string.h>

int conninfo_has_password(const char *conninfo)
{
	if (!conninfo || !*conninfo)
		return 0;
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		PQfreemem(perr);
		return 0;
	}
	int has = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, "password") && o->val && *o->val)
			has = 1;
	PQconninfoFree(opts);
	return has;
}
