/* libFuzzer target: the YAML config loader must reject or accept, never crash or leak. */
#include <stdint.h>
#include <string.h>

#include "cfg.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct collector_config cfg;
	char err[512];
	memset(&cfg, 0, sizeof cfg);
	cfg_load_string(collector_keys, &cfg, "fuzz", (const char *)data, size, err, sizeof err);
	collector_config_free(&cfg);
	return 0;
}
